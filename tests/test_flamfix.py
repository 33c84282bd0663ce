"""--flams fix: each drum on its own slot, its part of the overheads and room moved with it.

Sessions are rendered in the test with known strokes, mic gains and delays
(beatfix.synth), drums of one beat several ms apart. Everything is measured
from the output audio with beatfix.evaluation, as the benchmark does: each
close-mic hit's residual to its slot, each moved drum's close-to-overhead
lag, the overheads' spectral distance to the ideal render, clicks and double
attacks. Each check has a counterpart that fails it (collection mode, or the
close mics moved without their part of the overheads).
"""

from __future__ import annotations

import json
import numpy as np
import pytest
from session_fixtures import Spec, make_session

from beatfix import evaluation as ev
from beatfix.align import align_session, edits_document, flam_rows
from beatfix.analyse import analyse_session
from beatfix.errors import ParameterError
from beatfix.evaluation.phase import drum_lags
from beatfix.flamfix import check_flam_mode, group_drums
from beatfix.render import render
from beatfix.synth import SessionSpec, procedural_kit, render_pair

SR = 44100


@pytest.fixture(scope="module")
def pair():
    # Sloppy limbs: the drums of one beat land up to ~10 ms apart, so one shift per hit cannot fix them.
    spec = SessionSpec(seed=11, sample_rate=SR, bpm=104.0, style="rock", duration_s=7.0, spread_ms=14.0,
                       limb_ms=4.0, mics=("kick", "snare", "hh", "overheads", "room"), n_toms=0, flam_rate=0.0)
    return render_pair(spec, procedural_kit(SR, 0))


@pytest.fixture(scope="module")
def edits(pair):
    performed, _ = pair
    analysis = ev.oracle_analysis(performed.truth)
    session = performed.as_session()
    out = {}
    for mode in ("keep", "fix"):
        result = align_session(session, analysis, flams=mode)
        out[mode] = (result, {s.name: s.audio for s in result.stems})
    # The naive per-drum edit: close mics moved alone, overheads and room by the collection plan.
    result = out["fix"][0]
    out["close only"] = (result, {s.name: render(s.audio, result.drums.plan_for(s.name, result.plan))
                                  for s in session.stems})
    out["analysis"] = analysis
    return out


@pytest.fixture(scope="module")
def locator(pair):
    performed, _ = pair
    return ev.Locator(performed.stems, performed.truth, performed.hit_shots)


def _residual_p95(locator, output):
    summary = ev.residual_summary(locator.locate(output))
    assert summary["lost"] == 0
    return summary["all"]["p95_ms"], summary


def test_every_close_mic_hit_within_1_ms_of_its_slot(edits, locator):
    keep, _ = _residual_p95(locator, edits["keep"][1])
    fixed, summary = _residual_p95(locator, edits["fix"][1])
    assert keep > 2.0  # one shift per hit cannot do it here
    assert fixed < 1.0, summary
    for drum, stats in summary["per_drum"].items():
        assert stats["p95_ms"] < 1.0, (drum, stats)


def _moved_lag_changes(pair, locator, output, keep_output):
    performed, _ = pair
    truth = performed.truth
    landings_in = locator.locate(performed.stems)
    landings_out, landings_keep = locator.locate(output), locator.locate(keep_output)
    kept = {l.hit: l.landed_s for l in landings_keep if not l.lost}
    moved = {l.hit for l in landings_out if l.close and not l.lost and l.hit in kept
             and abs(l.landed_s - kept[l.hit]) > 0.25e-3}
    before = drum_lags(performed.stems, truth, performed.hit_shots, landings_in)
    after = drum_lags(output, truth, performed.hit_shots, landings_out)
    keys = [k for k in sorted(set(before) & set(after)) if k[0] in moved]
    return np.array([(after[k] - before[k]) * 1000.0 / SR for k in keys]), moved


def test_close_to_overhead_lag_kept_for_every_moved_drum(pair, edits, locator):
    changes, moved = _moved_lag_changes(pair, locator, edits["fix"][1], edits["keep"][1])
    drums = {pair[0].truth["hits"][i]["drum"] for i in moved}
    assert len(moved) >= 10 and {"kick", "snare", "hat"} <= drums
    assert changes.size >= len(moved)  # two overhead channels; a weak match in one is left out
    assert np.max(np.abs(changes)) < 0.1, np.sort(np.abs(changes))[-5:]
    # Moving the close mics alone changes those lags by the drums' own moves.
    naive, _ = _moved_lag_changes(pair, locator, edits["close only"][1], edits["keep"][1])
    assert np.percentile(np.abs(naive), 50) > 0.5


def test_overheads_closer_to_the_ideal_than_collection_mode(pair, edits):
    performed, ideal = pair
    followers = [ch["stem"] for ch in performed.truth["channels"] if ch["role"] == "overhead"]

    def distance(output):
        return ev.spectral_distance_db([c for n in followers for c in ev.log_spectrogram(output[n])],
                                       [c for n in followers for c in ev.log_spectrogram(ideal.stems[n])])

    keep, fixed = distance(edits["keep"][1]), distance(edits["fix"][1])
    assert fixed < keep - 0.1, (fixed, keep)


def test_no_clicks_or_double_attacks(pair, edits, locator):
    performed, _ = pair
    truth = performed.truth
    output = edits["fix"][1]
    landings = locator.locate(output)
    reference = ev.render_landed(performed, ev.landed_onsets_s(landings, truth))
    art = ev.seam_artifacts(output, reference, SR, landings=landings, source=performed.stems,
                            source_s=ev.source_time_map(landings, truth))
    assert (art.clicks_s, art.double_attacks_s) == ((), ()), art.by_stem
    assert not any(l.echoes_s for l in landings)


def test_each_moved_drums_attack_is_heard_once_in_the_overheads(pair, edits, locator):
    """A moved drum's own one-shot matches the overhead where it went, not where the hit's shift would have put it."""
    performed, _ = pair
    truth = performed.truth
    feeds = next(c for c in truth["channels"] if c["stem"] == "oh_l")["drums"]
    kept = {l.hit: l for l in locator.locate(edits["keep"][1]) if l.close and not l.lost}
    signals = {name: ev.highpass(edits[name][1]["oh_l"][0], SR) for name in ("fix", "close only")}
    played = ev.highpass(performed.stems["oh_l"][0], SR)
    heard_once = {name: [] for name in signals}
    for l in locator.locate(edits["fix"][1]):
        if not l.close or l.lost or l.weak or l.hit not in kept:
            continue
        delay = feeds[l.drum]["delay_samples"][0]
        new = (l.landed_s - l.delay_s) * SR + delay  # with its close mic
        old = (kept[l.hit].landed_s - l.delay_s) * SR + delay  # with the hit's other drums
        if abs(new - old) < 0.002 * SR:
            continue
        template = ev.shot_template(performed.hit_shots[l.hit], SR, int(0.008 * SR))
        at = truth["hits"][l.hit]["onset_sample"] + delay
        if ev.find_template(template, played, at - 5, at + 6)[1] < ev.MEASURABLE_MATCH:
            continue  # drowned by louder drums in the overhead even before the edit (a kick's top end)
        for name, x in signals.items():
            _, at_new, _ = ev.find_template(template, x, int(new) - 5, int(new) + 6)
            _, at_old, _ = ev.find_template(template, x, int(old) - 5, int(old) + 6)
            heard_once[name].append(at_new > ev.MIN_MATCH and at_old < 0.5 * at_new)
    assert len(heard_once["fix"]) >= 3 and all(heard_once["fix"]), heard_once
    assert not any(heard_once["close only"])  # the overheads not re-timed: the attack stays where it was


def test_lengths_and_formats_are_kept(pair, edits):
    performed, _ = pair
    for name, audio in edits["fix"][1].items():
        assert audio.shape == performed.stems[name].shape and audio.dtype == np.float32


def test_edits_document_records_each_drums_shift(edits):
    result = edits["fix"][0]
    assert set(result.drums.moved) >= {"kick", "snare", "hh"} and result.drums.fixed_hits
    doc = edits_document(edits["analysis"], result.plan, result.drums)
    assert doc["flams"] == "fix" and doc["drums"]["snare"] == ["snare"]
    sr = result.plan.sample_rate
    for k, row in enumerate(doc["edits"]):
        for drum, samples in row["drum_shifts_samples"].items():
            assert samples == result.drums.plans[drum].edits[k].shift_samples != row["shift_samples"]
            assert row["drum_shifts_ms"][drum] == pytest.approx(samples / sr * 1000.0, abs=1e-4)
    assert sum(len(row["drum_shifts_ms"]) for row in doc["edits"]) >= 10
    assert edits_document(edits["analysis"], edits["keep"][0].plan)["flams"] == "keep"


@pytest.fixture(scope="module")
def flammed():
    # slot 36: snare 9 ms after the hat (a spread flam); slot 20: a grace stroke 25 ms before the snare.
    synth = make_session(Spec(bpm=116, bars=3, seed=41, flams=((36, 9.0),), deliberate=((20, 25.0),),
                              followers=("oh_l",)))
    return synth, analyse_session(synth.session, bpm=116)


def test_deliberate_flams_left_alone_by_fix_and_fixed_by_fix_all(flammed):
    synth, analysis = flammed
    session = synth.session
    (rudiment,) = [f for f in analysis.flams if f.deliberate]
    spread = [f for f in analysis.flams if not f.deliberate]
    assert spread
    rows = {}
    for mode in ("keep", "fix", "fix-all"):
        result = align_session(session, analysis, flams=mode, render_audio=False)
        rows[mode] = {r["slot"]: r for r in flam_rows(analysis, result.plan, result.drums)}
    for mode in ("keep", "fix", "fix-all"):
        r = rows[mode][rudiment.slot]
        assert r["deliberate"] and r["spread_after_ms"] == r["spread_before_ms"]  # grace to main as played
    assert not rows["fix"][rudiment.slot]["fixed"]
    assert rows["fix"][rudiment.slot]["drums_spread_after_ms"] == rows["fix"][rudiment.slot]["drums_spread_before_ms"]
    assert rows["fix-all"][rudiment.slot]["fixed"]
    for f in spread:  # a sloppy flam is tightened by both fix modes, kept by keep
        assert rows["keep"][f.slot]["spread_after_ms"] == pytest.approx(f.spread_ms, abs=0.05)
        for mode in ("fix", "fix-all"):
            assert rows[mode][f.slot]["fixed"] and rows[mode][f.slot]["spread_after_ms"] < 0.5


def test_a_fixed_rudiment_moves_grace_and_main_stroke_as_one(flammed):
    synth, analysis = flammed
    session = synth.session
    (rudiment,) = [f for f in analysis.flams if f.deliberate]
    grace = [e.time_s for e in synth.truth.events if e.kind == "grace"][0]
    result = align_session(session, analysis, flams="fix-all")
    out = {s.name: s.audio for s in result.stems}
    k = next(k for k, e in enumerate(result.plan.edits) if analysis.hits[e.hit_index].slot == rudiment.slot)
    shift = result.drums.plan_for("snare_top", result.plan).edits[k].shift_samples
    start, stop = int((grace - 0.002) * session.sample_rate), int((grace + 0.06) * session.sample_rate)
    x = session.stem("snare_top").audio[0, start:stop]
    y = out["snare_top"][0, start + shift:stop + shift]
    # The whole rudiment, grace and main stroke, is the input's, moved by one shift.
    assert np.sum((y - x) ** 2) < 1e-3 * np.sum(x ** 2)


def test_drums_are_grouped_by_mic_pairs(flammed):
    synth, analysis = flammed
    roles = {s.name: s.role for s in synth.session.close_stems}
    groups = group_drums(analysis, roles)
    assert groups["snare_top"] == ("snare_top", "snare_bottom")
    assert all(len(v) == 1 for k, v in groups.items() if k != "snare_top")


def test_unknown_mode_is_refused():
    with pytest.raises(ParameterError):
        check_flam_mode("fix-some")


def test_cli_align_flams_fix(run_cli, small_session, tmp_path):
    folder, truth = small_session
    out = tmp_path / "fixed"
    stems = sorted(folder.glob("*.wav"))
    r = run_cli("align", *stems, "--bpm", truth["bpm"], "-o", out, "--engine", "classic", "--flams", "fix", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["flams_mode"] == "fix" and doc["n_hits_fixed"] > 0
    edits = json.loads((out / "edits.json").read_text())
    assert edits["flams"] == "fix" and edits["drums"]
    assert any(e["drum_shifts_ms"] for e in edits["edits"])
    flams = json.loads((out / "flam_report.json").read_text())["flams"]
    assert all({"deliberate", "fixed", "spread_before_ms", "spread_after_ms"} <= set(f) for f in flams)
    import soundfile as sf

    for src in stems:
        assert sf.info(str(src)).frames == sf.info(str(out / src.name)).frames
    bad = run_cli("align", *stems, "--bpm", truth["bpm"], "-o", tmp_path / "o2", "--flams", "some")
    assert bad.exit_code == 2 and "--flams" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "o2").exists()


def _grid_p95_per_drum(locator, output) -> dict[str, float]:
    """p95 |close-mic attack - its slot| per drum, ms (the close mic's own delay not counted against it)."""
    found = [l for l in locator.locate(output) if l.close and not l.lost and not l.grace and not l.weak]
    out = {}
    for drum in {l.drum for l in found}:
        v = [abs(l.residual_ms + 1000.0 * l.delay_s) for l in found if l.drum == drum]
        out[drum] = float(np.percentile(v, 95))
    return out


def test_drums_are_timed_on_their_cleaned_close_mics(pair, locator, monkeypatch):
    """With the default (neural) analysis: a hi-hat struck a few ms before the kick is heard in the kick mic
    before the kick's own attack, and the raw mic's onset starts there. Timed again on the kick mic with
    the other drums' bleed taken out, every drum lands within 1 ms of its slot."""
    import beatfix.flamfix as flamfix
    from beatfix.engine import choose_engine

    performed, _ = pair
    truth = performed.truth
    session = performed.as_session()
    analysis = analyse_session(session, bpm=truth["bpm"], grid_offset_s=truth["grid_offset_s"],
                               judge=choose_engine("neural", "cpu").judge)
    result = align_session(session, analysis, flams="fix")
    assert result.drums.retimed > 0
    fixed = _grid_p95_per_drum(locator, {s.name: s.audio for s in result.stems})
    # A drum whose part of some channel cannot be estimated keeps its hits' shift (beatfix.coherence, issue 13):
    # here the snare, whose strokes disagree on its level in the kick mic and the room under this analysis.
    kept = set(result.drums.kept or {})
    assert kept <= {"snare"}, result.drums.kept
    assert max(v for d, v in fixed.items() if d not in kept) < 1.0, fixed
    monkeypatch.setattr(flamfix, "_retime", lambda analysis, clean: (analysis, 0))
    raw = align_session(session, analysis, flams="fix")
    before = _grid_p95_per_drum(locator, {s.name: s.audio for s in raw.stems})
    assert before["kick"] > 1.0 > 0.3 > fixed["kick"], (before, fixed)
