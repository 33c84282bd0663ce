"""The classic bleed judge and the grouping of accepted onsets into hits."""

from __future__ import annotations

import numpy as np
import pytest
from session_fixtures import OWN_DRUM, Spec, make_session, match_times

from beatfix.delays import measure_delays
from beatfix.grid import Grid
from beatfix.hits import classic_judge, group_hits
from beatfix.onsets import detect_candidates
from beatfix.types import Onset


def _judged(spec: Spec):
    synth = make_session(spec)
    cands = detect_candidates(synth.session)
    delays = measure_delays(synth.session, cands)
    flat = sorted((c for v in cands.values() for c in v), key=lambda o: (o.time_s, o.stem))
    return synth, flat, classic_judge(flat, synth.session, delays)


@pytest.fixture(scope="module", params=[(120, 31, 0.0), (90, 32, 4.0)], ids=["bleed-20..-35dB", "bleed-16..-31dB"])
def judged(request):
    bpm, seed, boost = request.param
    return _judged(Spec(bpm=bpm, bars=3, seed=seed, bleed_boost_db=boost, followers=("oh_l",)))


def test_precision_and_recall_at_5_ms(judged):
    synth, _, (accepted, rejected) = judged
    tp = fp = fn = 0
    for stem in OWN_DRUM:
        _, t, f, n = match_times([o.time_s for o in accepted if o.stem == stem], synth.truth.onsets(stem), 0.005)
        tp, fp, fn = tp + t, fp + f, fn + n
    assert tp / (tp + fp) >= 0.95 and tp / (tp + fn) >= 0.95, (tp, fp, fn)
    assert len(rejected) > len(accepted) / 2  # there was plenty of bleed to reject


def test_no_snare_in_kick_false_triggers(judged):
    synth, flat, (accepted, _) = judged
    snare = synth.truth.onsets("snare_top", "snare")
    kick = synth.truth.onsets("kick")
    kick_accepted = np.array([o.time_s for o in accepted if o.stem == "kick"])
    snare_only = [t for t in snare if np.min(np.abs(kick - t)) > 0.02]
    # the kick mic hears every snare stroke (there is a candidate) but never takes it for a kick
    flat_kick = np.array([c.time_s for c in flat if c.stem == "kick"])
    assert sum(np.min(np.abs(flat_kick - t)) < 0.006 for t in snare_only) >= len(snare_only) // 2
    assert all(np.min(np.abs(kick_accepted - t)) > 0.006 for t in snare_only)


def test_ghost_notes_survive(judged):
    synth, _, (accepted, _) = judged
    ghosts = [e.time_s for e in synth.truth.events if e.kind == "ghost"]
    top = np.array([o.time_s for o in accepted if o.stem == "snare_top"])
    assert ghosts and all(np.min(np.abs(top - t)) < 1e-3 for t in ghosts)


def test_judge_sets_confidence_and_keeps_times(judged):
    _, flat, (accepted, rejected) = judged
    assert len(accepted) + len(rejected) == len(flat)
    assert all(o.confidence >= 0.5 for o in accepted) and all(o.confidence < 0.5 for o in rejected)
    assert {o.time_s for o in accepted} | {o.time_s for o in rejected} == {c.time_s for c in flat}


# ----------------------------------------------------------------------------- grouping

GRID = Grid(120.0, 0.1, 4.0)  # 125 ms steps


def test_group_hits_centre_spread_and_deviation():
    onsets = [Onset("kick", 0.1010, -3.0), Onset("snare", 0.1040, -5.0)]
    hits, extras = group_hits(onsets, [0, 0], GRID, {"kick": 0.0, "snare": 0.0})
    (hit,) = hits
    assert hit.slot == 0 and extras == {}
    assert hit.time_s == pytest.approx(0.1025) and hit.earliest_s == pytest.approx(0.1010)
    assert hit.spread_ms == pytest.approx(3.0) and hit.deviation_ms == pytest.approx(2.5)
    assert dict(hit.onsets) == {"kick": 0.1010, "snare": 0.1040}


def test_group_hits_compensates_delays_but_reports_raw_onsets():
    onsets = [Onset("snare_top", 0.2260, -5.0), Onset("snare_bottom", 0.2265, -7.0)]
    (hit,), _ = group_hits(onsets, [1, 1], GRID, {"snare_bottom": 0.0005})
    assert hit.spread_ms == pytest.approx(0.0, abs=1e-9)
    assert hit.onsets["snare_bottom"] == 0.2265


def test_two_onsets_of_one_stem_in_a_slot_keep_the_louder_and_a_grace_moves_the_cut():
    grace, main = Onset("snare", 0.330, -20.0), Onset("snare", 0.355, -4.0)
    hat = Onset("hh", 0.356, -12.0)
    (hit,), extras = group_hits([grace, main, hat], [2, 2, 2], GRID, {})
    assert hit.onsets["snare"] == 0.355 and extras == {2: [grace]}
    assert hit.earliest_s == pytest.approx(0.330)  # a cut never separates a flam
    assert hit.time_s == pytest.approx(0.3555)
