"""The align must-shows, measured from the output audio of a synthetic session built here.

Sloppy human timing (spread 24 ms), 8 stems with bleed, overheads and a
reverberant room; --bpm given, strength 100, and the grid pinned to the
session's bar 1 (--grid-offset), as an engineer with a click-synced DAW
session would. Nothing here reads beatfix's own report.
"""

from __future__ import annotations

import numpy as np
import pytest

from beatfix import evaluation as ev
from beatfix.align import align_session
from beatfix.analyse import analyse_session
from beatfix.engine import choose_engine
from beatfix.synth import SessionSpec, procedural_kit, render_session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def performed():
    spec = SessionSpec(seed=4242, sample_rate=44100, bpm=126.0, style="rock", duration_s=10.0, spread_ms=24.0,
                       n_channels=8, n_toms=1, mics=("kick", "snare", "hh", "tom1", "overheads", "room"))
    return render_session(spec, procedural_kit(44100, seed=5))


@pytest.fixture(scope="module", params=["neural", "classic"])
def edited(request, performed):
    truth, session = performed.truth, performed.as_session()
    choice = choose_engine(request.param, "cpu")
    analysis = analyse_session(session, bpm=truth["bpm"], grid_offset_s=truth["grid_offset_s"], judge=choice.judge)
    result = align_session(session, analysis, strength_pct=100.0)
    return request.param, {s.name: s.audio for s in result.stems}


@pytest.fixture(scope="module")
def locator(performed):
    return ev.Locator(performed.stems, performed.truth, performed.hit_shots)


def test_input_is_really_sloppy(performed, locator):
    summary = ev.residual_summary(locator.locate(performed.stems))
    assert summary["all"]["p95_ms"] > 12.0


# The default (neural) engine meets the 5 ms target; classic is held to what it does today.
P95_LIMIT_MS = {"neural": 5.0, "classic": 6.0}


def test_every_close_mic_hit_lands_within_5_ms_and_none_is_lost(edited, locator):
    engine, edited = edited
    summary = ev.residual_summary(locator.locate(edited))
    assert summary["lost_pct"] <= 1.0, summary
    assert summary["all"]["p95_ms"] <= P95_LIMIT_MS[engine], summary


def test_close_to_overhead_lag_is_unchanged(edited, performed, locator):
    _, edited = edited
    truth, sr = performed.truth, performed.sample_rate
    before = ev.overhead_lags(performed.stems, truth, ev.input_positions(truth))
    after = ev.overhead_lags(edited, truth, ev.landed_positions(locator.locate(edited), sr))
    change = np.abs(ev.lag_changes_ms(before, after, sr))
    assert change.size > 20
    assert np.percentile(change, 95) <= 0.1


def test_no_clicks_or_double_attacks(edited, performed, locator):
    _, edited = edited
    truth, sr = performed.truth, performed.sample_rate
    landings = locator.locate(edited)
    reference = ev.render_landed(performed, ev.landed_onsets_s(landings, truth))
    art = ev.seam_artifacts(edited, reference, sr, landings=landings, source=performed.stems,
                            source_s=ev.source_time_map(landings, truth))
    assert art.clicks_s == () and art.double_attacks_s == (), art


def test_outputs_keep_exact_length_and_shape(edited, performed):
    _, edited = edited
    for name, audio in performed.stems.items():
        assert edited[name].shape == audio.shape and edited[name].dtype == audio.dtype


def test_flams_the_analysis_misses_are_neither_doubled_nor_chopped():
    """Soft flam grace notes that no hit accounts for, planned as ``beatfix align`` plans (hearing the audio).

    The truth's own hits, each cut at its main stroke as if the grace had gone
    undetected; half the loud snare and tom strokes are flams. Planned without
    the audio, seams replay or chop graces (the check below can fail); planned
    with it, none.
    """
    from dataclasses import replace

    from beatfix.align import render_stems
    from beatfix.plan import plan_edits

    spec = SessionSpec(seed=6, sample_rate=44100, bpm=100.0, style="funk", duration_s=10.0, spread_ms=25.0,
                       n_channels=8, n_toms=1, flam_rate=0.5, mics=("kick", "snare", "hh", "tom1", "overheads", "room"))
    performed = render_session(spec, procedural_kit(44100, seed=5))
    truth, session, sr = performed.truth, performed.as_session(), performed.sample_rate
    oracle = ev.oracle_analysis(truth)
    graces_unseen = replace(oracle, hits=tuple(
        replace(h, earliest_s=min(t - oracle.delay_s(s) for s, t in h.onsets.items())) for h in oracle.hits))
    locator = ev.Locator(performed.stems, truth, performed.hit_shots)

    def artifacts(audio):
        plan = plan_edits(graces_unseen, n_samples=session.n_samples, audio=audio)
        out = {s.name: s.audio for s in render_stems(session, plan)}
        landings = locator.locate(out)
        reference = ev.render_landed(performed, ev.landed_onsets_s(landings, truth))
        art = ev.seam_artifacts(out, reference, sr, landings=landings, source=performed.stems,
                                source_s=ev.source_time_map(landings, truth))
        return art.clicks_s + art.double_attacks_s + art.bumps_s

    assert sum(h["grace"] for h in truth["hits"]) >= 4
    assert artifacts(None) != ()  # deaf to the audio, this session's seams do go wrong
    assert artifacts([s.audio for s in session.stems]) == ()
