"""Phase first: --flams fix never moves a drum without all of its sound, and every align checks its output.

The sessions are built in the test (tests/session_fixtures.py). Lags are
measured from the audio alone: a close mic's window around each stroke,
cross-correlated with the overhead, before and after the edit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps
from session_fixtures import FOLLOWERS, Spec, make_session

from beatfix.align import align_session
from beatfix.analyse import analyse_session

SR = 44100


def _peak_lag(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> float:
    """Lag (samples, sub-sample) in [lo, hi] at which ``b`` best matches ``a`` (b later: positive).

    The peak of the cross-correlation's envelope: a bright drum's correlation rings at its own
    frequencies, and its carrier peaks, a tenth of a ms apart, trade places under small interference.
    """
    pad = 64
    lags = np.arange(lo - pad, hi + pad + 1)
    n = a.size
    values = np.array([float(np.dot(a, b[k - lags[0]: k - lags[0] + n])) for k in lags])
    env = np.abs(sps.hilbert(values))[pad: pad + hi - lo + 1]
    i = int(np.argmax(env))
    if 0 < i < env.size - 1:
        y0, y1, y2 = env[i - 1: i + 2]
        den = y0 - 2 * y1 + y2
        return float(lo + i + (0.5 * (y0 - y2) / den if den else 0.0))
    return float(lo + i)


def _locate(x_in: np.ndarray, x_out: np.ndarray, at: int, search: int, n: int) -> int:
    """Where the window of ``x_in`` at ``at`` lies in ``x_out`` (within +-search samples)."""
    ref = x_in[at: at + n]
    best = max(range(-search, search + 1), key=lambda k: float(np.dot(ref, x_out[at + k: at + k + n])))
    return at + best


def close_to_follower_lags_ms(close_in, fol_in, close_out, fol_out, onsets_s, delay_ms, *, highpass_hz=0.0, reach_ms=1.5,
                              sr=SR):
    """Per stroke, (lag in, lag out) in ms from close mic to follower, measured on the audio.

    The peak is sought within ``reach_ms`` of the path's true delay, above ``highpass_hz``: a louder drum
    struck with this one (the snare with the hat) makes other peaks, which its own moves shift.
    """
    if highpass_hz:
        sos = sps.butter(4, highpass_hz, btype="highpass", fs=sr, output="sos")
        close_in, fol_in, close_out, fol_out = (sps.sosfiltfilt(sos, x) for x in (close_in, fol_in, close_out, fol_out))
    n = int(0.012 * sr)
    lo, hi = int((delay_ms - reach_ms) / 1000.0 * sr), int((delay_ms + reach_ms) / 1000.0 * sr)
    out = []
    for t in onsets_s:
        at = int(round(t * sr)) - int(0.001 * sr)
        if at + lo - 64 < 0 or at + hi + n + 64 > close_in.size:
            continue
        moved = _locate(close_in, close_out, at, int(0.02 * sr), n)
        lag_in = _peak_lag(close_in[at: at + n], fol_in[at + lo - 64: at + hi + n + 64], lo, hi)
        lag_out = _peak_lag(close_out[moved: moved + n], fol_out[moved + lo - 64: moved + hi + n + 64], lo, hi)
        out.append((lag_in * 1000.0 / sr, lag_out * 1000.0 / sr))
    return np.array(out)


@pytest.fixture(scope="module")
def hat_session():
    # Every hat stroke reaches the overheads up to 5 dB louder or softer (open, closed, edge, tip):
    # its part of the overheads cannot be estimated from its close mic with a gain its strokes agree on.
    spec = Spec(bpm=100, bars=4, seed=5, close=("kick", "snare_top", "hh"), followers=("oh_l", "oh_r"),
                toms=False, drum_jitter_ms=2.5, flams=((4, 7.0), (12, 8.0), (20, 6.0), (28, 9.0)),
                follower_gain_spread_db=(("hat", 5.0),))
    synth = make_session(spec)
    analysis = analyse_session(synth.session, bpm=spec.bpm)
    return synth, analysis


def test_untrusted_hat_keeps_its_lag_to_the_overheads_on_every_hit(hat_session):
    synth, analysis = hat_session
    session = synth.session
    result = align_session(session, analysis, flams="fix")
    out = {s.name: s.audio[0].astype(float) for s in result.stems}
    inp = {s.name: s.audio[0].astype(float) for s in session.stems}
    hats = [e.time_s for e in synth.truth.events if e.drum == "hat"]
    for oh in ("oh_l", "oh_r"):
        lags = close_to_follower_lags_ms(inp["hh"], inp[oh], out["hh"], out[oh], hats, FOLLOWERS[oh]["hat"][1],
                                         highpass_hz=7000.0)
        assert len(lags) >= len(hats) - 2
        change = np.abs(lags[:, 1] - lags[:, 0])
        assert change.max() <= 0.1, (oh, np.round(change, 3))


def _follower_lead_ms(session, stems_out, drum, follower, onsets_s, delay_ms):
    """Per stroke, how much earlier (ms) the follower hears ``drum`` than its close mic does, in the output."""
    inp = {s.name: s.audio[0].astype(float) for s in session.stems}
    lags = close_to_follower_lags_ms(inp[drum], inp[follower], stems_out[drum], stems_out[follower], onsets_s,
                                     delay_ms, reach_ms=6.0)
    return -lags[:, 1]


@pytest.fixture(scope="module")
def planted(hat_session):
    """--flams fix with one snare stroke moved 4 ms later in its close mic alone: its overhead parts stay."""
    from dataclasses import replace

    from beatfix.flamfix import fit_plan

    synth, analysis = hat_session
    session = synth.session
    result = align_session(session, analysis, flams="fix", render_audio=False)
    plan, drums = result.plan, result.drums
    sr = plan.sample_rate
    snare_edits = [k for k, e in enumerate(plan.edits)
                   if "snare_top" in analysis.hits[e.hit_index].onsets and not e.merged_hit_indices]
    own = drums.plans["snare_top"]
    for k in snare_edits[2:]:
        wanted = [float(e.shift_samples) for e in own.edits]
        wanted[k] = plan.edits[k].shift_samples + 0.004 * sr
        forced = fit_plan(plan, wanted)
        if forced.edits[k].shift_samples - plan.edits[k].shift_samples >= int(0.0038 * sr):
            break
    else:
        pytest.fail("no snare stroke with room to move 4 ms later")
    # No path into the overheads: the snare's part there is left with the hit, as before issue 13.
    paths = dict(drums.paths or {})
    for name in ("oh_l", "oh_r"):
        paths[name] = ({},)
    moved = tuple(sorted(set(drums.moved) | {"snare_top"}))
    bad = replace(drums, plans={**drums.plans, "snare_top": forced}, moved=moved, paths=paths)
    onset = analysis.hits[plan.edits[k].hit_index].onsets["snare_top"]
    return synth, analysis, plan, bad, k, onset


def test_self_check_catches_a_planted_pre_echo_and_reverts_that_hit(planted):
    from beatfix.align import render_stems
    from beatfix.selfcheck import check_and_revert

    synth, analysis, plan, bad, k, onset = planted
    session = synth.session
    delay_ms = FOLLOWERS["oh_l"]["snare"][1]
    # the plant works: in the output the overhead hears this snare stroke before its close mic
    planted_out = {s.name: s.audio[0].astype(float) for s in render_stems(session, plan, drums=bad)}
    assert _follower_lead_ms(session, planted_out, "snare_top", "oh_l", [onset], delay_ms)[0] > 1.0

    new_plan, new_drums, report = check_and_revert(session, analysis, plan, bad)
    reasons = {f.reason for f in report.failures if f.edit == k}
    assert "pre-echo" in reasons, report.failures
    assert report.reverted.get(k) == "one piece"
    assert new_drums.plans["snare_top"].edits[k].shift_samples == new_plan.edits[k].shift_samples
    assert not report.remaining
    out = {s.name: s.audio[0].astype(float) for s in render_stems(session, new_plan, drums=new_drums)}
    for oh in ("oh_l", "oh_r"):
        lead = _follower_lead_ms(session, out, "snare_top", oh, [onset], FOLLOWERS[oh]["snare"][1])[0]
        assert lead < 0.0, (oh, lead)  # the overhead hears it after its close mic again


def test_a_clean_keep_align_passes_the_check_and_is_unchanged(hat_session):
    from beatfix.selfcheck import check_and_revert

    synth, analysis = hat_session
    result = align_session(synth.session, analysis, flams="keep", render_audio=False)
    plan, drums, report = check_and_revert(synth.session, analysis, result.plan, None)
    assert report.n_checked > 20
    assert report.failures == () and report.reverted == {}
    assert plan is result.plan and drums is None
    assert report.renders == 1


def test_align_writes_what_was_checked_and_keep_output_is_bit_identical(small_session, tmp_path):
    import json

    from beatfix.audio_io import load_session
    from beatfix.pipeline import align
    from beatfix.pipeline.options import AlignOptions
    from beatfix.pipeline.session import analyse

    folder, _ = small_session
    files = sorted(p for p in folder.iterdir() if p.suffix in (".wav", ".flac"))
    summary = align(files, tmp_path / "out", AlignOptions(flams="keep"))
    check = summary.summary["self_check"]
    assert check["checked_edits"] > 0 and check["failed_edits"] == 0, check
    doc = json.loads((tmp_path / "out" / "edits.json").read_text())
    assert doc["self_check"]["failed_edits"] == 0
    assert all(e["checked"] and "reverted" not in e for e in doc["edits"])
    # what is written is today's render of the plan, to the file's own resolution (24-bit: one step)
    analysed = analyse(files)
    expected = align_session(analysed.session, analysed.analysis, flams="keep")
    written, _ = load_session(sorted((tmp_path / "out").glob(f"*{files[0].suffix}")))
    got = {s.name: s.audio for s in written.stems}
    for stem in expected.stems:
        assert np.max(np.abs(got[stem.name] - stem.audio)) <= 1.0 / 2 ** 23, stem.name
    assert [e["shift_samples"] for e in doc["edits"]] == [e.shift_samples for e in expected.plan.edits]


def test_a_hit_dragged_a_third_of_a_step_from_its_slot_fails_the_check(hat_session):
    from dataclasses import replace

    import beatfix.selfcheck as sc

    synth, analysis = hat_session
    session = synth.session
    plan = align_session(session, analysis, flams="keep", render_audio=False).plan
    sr = plan.sample_rate
    step_s = 60.0 / analysis.tempo_bpm / analysis.grid.steps_per_beat
    k = len(plan.edits) // 2
    # dragged 40 % of a step later, as a late kick's shift drags the next slot's strokes (issue 13)
    drag = int(0.4 * step_s * sr)
    dragged = replace(plan, edits=tuple(replace(e, shift_samples=e.shift_samples + drag) if i == k else e
                                        for i, e in enumerate(plan.edits)))
    windows = sc._windows(dragged, [k - 1, k], None)
    excerpts = sc._excerpts(session.stems, windows, copy=False)
    found = sc.check(session, analysis, dragged, None, excerpts, excerpts, windows)
    assert any(f.edit == k and f.reason == "far from slot" for f in found), found
    assert not any(f.edit == k - 1 and f.reason == "far from slot" for f in found)


def test_cli_align_reports_the_self_check(run_cli, small_session, tmp_path):
    import json

    folder, truth = small_session
    stems = sorted(folder.glob("*.wav"))
    r = run_cli("align", *stems, "--bpm", truth["bpm"], "-o", tmp_path / "a", "--engine", "classic", "--flams", "fix")
    assert r.exit_code == 0, r.stderr
    assert "self-check:" in r.stdout and "edits checked" in r.stdout
    j = run_cli("align", *stems, "--bpm", truth["bpm"], "-o", tmp_path / "b", "--engine", "classic", "--flams", "fix",
                "--json")
    doc = json.loads(j.stdout)
    check = doc["self_check"]
    assert check["checked_edits"] > 0 and check["renders"] >= 1
    # only an edit that failed is reverted, and each says why
    assert check["reverted_one_piece"] + check["reverted_unmoved"] <= check["failed_edits"]
    edits = json.loads((tmp_path / "b" / "edits.json").read_text())
    assert edits["self_check"] == check
    assert all(e["checked"] for e in edits["edits"])
    failed = [e for e in edits["edits"] if "check_failed" in e]
    assert len(failed) == check["failed_edits"]
    assert all(e["check_failed"] and e["reverted"] in ("one piece", "unmoved", None) for e in failed)
    flams = json.loads((tmp_path / "b" / "flam_report.json").read_text())["flams"]
    assert all("kept_reason" in f for f in flams)
    assert (tmp_path / "b" / "flam_report.csv").read_text().splitlines()[0].endswith(",kept_reason")
