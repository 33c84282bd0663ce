"""The benchmark's yardstick: measurements of output audio against the synthetic truth.

Each test builds a short session in code and checks that a known edit is
measured as what it is: the ideal render lands on the grid, the untouched
input keeps its humanization, a hit moved by a slot is lost, an overhead
shifted alone changes its lag, an inserted click or repeated attack is found
and a clean output has none.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from beatfix import evaluation as ev
from beatfix.align import align_session
from beatfix.synth import SessionSpec, procedural_kit, render_pair
from beatfix.types import Onset

SR = 44100


@pytest.fixture(scope="module")
def pair():
    # Rock at 110 BPM, sloppy (20 ms), with a flam or two; close mics, split overheads and a room.
    spec = SessionSpec(seed=3, sample_rate=SR, bpm=110.0, style="rock", duration_s=6.0, spread_ms=20.0,
                       mics=("kick", "snare", "hh", "tom1", "ft", "overheads", "room"), n_toms=2, flam_rate=0.2)
    return render_pair(spec, procedural_kit(SR, 0))


@pytest.fixture(scope="module")
def performed(pair):
    return pair[0]


@pytest.fixture(scope="module")
def locator(performed):
    return ev.Locator(performed.stems, performed.truth, performed.hit_shots)


def _close(landings):
    return [l for l in landings if l.close and not l.grace and not l.weak]


def _played_at(performed, onset_s):
    return ev.render_landed(performed, onset_s)


def test_rerendering_the_performed_onsets_gives_the_input_exactly(performed):
    again = _played_at(performed, [h["performed_time_s"] for h in performed.truth["hits"]])
    for name, audio in performed.stems.items():
        np.testing.assert_array_equal(again[name], audio)


def test_ideal_render_lands_on_the_grid(pair, locator):
    performed, ideal = pair
    landings = locator.locate(ideal.stems)
    summary = ev.residual_summary(landings)
    assert summary["n_hits"] >= 25 and summary["lost"] == 0
    assert summary["all"]["p95_ms"] < 0.05


def test_untouched_input_keeps_its_humanization(performed, locator):
    truth = performed.truth
    expected = ev.expected_times_s(truth)
    landings = _close(locator.locate(performed.stems))
    assert landings and not any(l.lost for l in landings)
    for l in landings:
        hit = truth["hits"][l.hit]
        humanization_ms = (hit["performed_time_s"] - expected[l.hit]) * 1000.0
        assert l.residual_ms == pytest.approx(humanization_ms, abs=0.05)
    assert max(abs(l.residual_ms) for l in landings) > 5.0  # the session is really sloppy


def test_a_hit_moved_by_one_slot_is_lost(performed, locator):
    truth = performed.truth
    step_s = 60.0 / truth["bpm"] / truth["steps_per_beat"]
    hits = truth["hits"]
    # A kick or snare stroke with no stroke of its drum within three steps: nothing else can stand in for it.
    lonely = next(h for h in hits if h["drum"] in ("kick", "snare") and not h["grace"] and all(
        abs(o["performed_time_s"] - h["performed_time_s"]) > 3 * step_s
        for o in hits if o["drum"] == h["drum"] and o["index"] != h["index"]))
    onsets = [h["performed_time_s"] for h in hits]
    onsets[lonely["index"]] += step_s
    landings = {l.hit: l for l in locator.locate(_played_at(performed, onsets))}
    assert landings[lonely["index"]].lost
    assert sum(l.lost for l in _close(landings.values())) == 1
    assert ev.residual_summary(list(landings.values()))["lost"] == 1


def test_lag_change_is_zero_for_a_copy_and_the_shift_for_an_overhead_moved_alone(performed, locator):
    truth, stems = performed.truth, performed.stems
    before = ev.overhead_lags(stems, truth, ev.input_positions(truth))
    assert len(before) > 20
    same = ev.overhead_lags({k: v.copy() for k, v in stems.items()}, truth,
                            ev.landed_positions(locator.locate(stems), SR))
    assert np.all(ev.lag_changes_ms(before, same, SR) == 0.0)

    shift = 22  # samples, 0.5 ms
    moved = dict(stems)
    moved["oh_l"] = np.pad(stems["oh_l"], ((0, 0), (shift, 0)))[:, :-shift]
    after = ev.overhead_lags(moved, truth, ev.input_positions(truth))
    keys = sorted(set(before) & set(after))
    change = {k: (after[k] - before[k]) * 1000.0 / SR for k in keys}
    left = [v for k, v in change.items() if k[1].startswith("oh_l")]
    right = [v for k, v in change.items() if k[1].startswith("oh_r")]
    assert left and right
    assert np.median(left) == pytest.approx(shift * 1000.0 / SR, abs=0.01)
    assert max(abs(v) for v in right) < 1e-9


def _artifacts(performed, locator, output):
    landings = locator.locate(output)
    reference = _played_at(performed, ev.landed_onsets_s(landings, performed.truth))
    return ev.seam_artifacts(output, reference, SR, landings=landings, source=performed.stems,
                             source_s=ev.source_time_map(landings, performed.truth))


def _quiet_moment_s(performed, stem):
    """A time in the middle of the session at least 60 ms after and before any stroke."""
    times = np.array(sorted(h["onset_sample"] / SR for h in performed.truth["hits"]))
    gaps = [(b - a, a) for a, b in zip(times, times[1:]) if a > 1.0]
    width, start = max(gaps)
    assert width > 0.12
    return start + 0.5 * width


def test_a_clean_output_has_no_artifacts(performed, locator):
    art = _artifacts(performed, locator, {k: v.copy() for k, v in performed.stems.items()})
    assert (art.clicks_s, art.double_attacks_s, art.bumps_s) == ((), (), ())


def test_an_inserted_click_is_found(performed, locator):
    t = _quiet_moment_s(performed, "snare")
    output = {k: v.copy() for k, v in performed.stems.items()}
    n = int(round(t * SR))
    # A seam that joins without a crossfade: a step of 2 % of full scale on every channel.
    for audio in output.values():
        audio[:, n:] += np.float32(0.02) * np.exp(-np.arange(audio.shape[1] - n) / (0.002 * SR)).astype(np.float32)
    art = _artifacts(performed, locator, output)
    assert len(art.clicks_s) == 1 and abs(art.clicks_s[0] - t) < 0.003
    assert art.double_attacks_s == ()


def test_an_attack_heard_twice_is_a_double_attack(performed, locator):
    truth = performed.truth
    snare = next(h for h in truth["hits"] if h["drum"] == "snare" and h["velocity"] > 0.7 and h["onset_sample"] > SR)
    start, length, gap = snare["onset_sample"], int(0.02 * SR), int(0.03 * SR)
    output = {k: v.copy() for k, v in performed.stems.items()}
    # What a fill through an attack does: the same 20 ms of every channel played again 30 ms later.
    for audio in output.values():
        audio[:, start + gap:start + gap + length] += audio[:, start:start + length]
    art = _artifacts(performed, locator, output)
    assert len(art.double_attacks_s) == 1
    assert abs(art.double_attacks_s[0] - (start + gap) / SR) < 0.005  # a hi-hat just before came again too


def test_oracle_edit_is_phase_coherent_and_tighter_than_the_input(performed, locator):
    truth = performed.truth
    result = align_session(performed.as_session(), ev.oracle_analysis(truth))
    output = {s.name: s.audio for s in result.stems}
    landings = locator.locate(output)
    before = ev.residual_summary(locator.locate(performed.stems))
    after = ev.residual_summary(landings)
    assert after["lost"] == 0
    assert after["all"]["p50_ms"] < 0.5 * before["all"]["p50_ms"]
    lags_in = ev.overhead_lags(performed.stems, truth, ev.input_positions(truth))
    lags_out = ev.overhead_lags(output, truth, ev.landed_positions(landings, SR))
    change = ev.lag_changes_ms(lags_in, lags_out, SR)
    assert change.size > 20 and np.max(np.abs(change)) < 0.01


def test_analysis_quality_counts_hits_bleed_and_missed_ghosts(performed):
    truth = performed.truth
    oracle = ev.oracle_analysis(truth)
    perfect = ev.analysis_quality(oracle, truth)
    assert perfect["fp"] == 0 and perfect["fn"] == 0 and perfect["bleed_false"] == 0
    assert max(abs(e) for e in perfect["errors_ms"]) < 1e-6

    # One bleed trigger: the snare's arrival in the kick mic; one own hit dropped.
    snare = next(h for h in truth["hits"] if h["drum"] == "snare" and not h["grace"])
    kick_ch = next(ch for ch in truth["channels"] if ch["stem"] == "kick")
    bleed_s = (snare["onset_sample"] + kick_ch["drums"]["snare"]["delay_samples"][0]) / SR
    dropped = next(o for o in oracle.onsets if o.stem == "hh")
    onsets = [o for o in oracle.onsets if o is not dropped] + [Onset("kick", bleed_s + 0.001, -40.0)]
    counts = ev.analysis_quality(replace(oracle, onsets=tuple(onsets)), truth)
    assert (counts["fp"], counts["fn"], counts["bleed_false"]) == (1, 1, 1)
    rates = ev.quality_rates([counts])
    assert rates["bleed_false_rate"] == pytest.approx(1 / counts["n_truth"])
    assert rates["f1"] < 1.0


def test_spectral_distance_is_zero_for_a_copy_and_grows_with_a_change(pair):
    performed, ideal = pair
    a = [ev.log_spectrogram(performed.stems["snare"])[0]]
    assert ev.spectral_distance_db(a, a) == 0.0
    b = [ev.log_spectrogram(ideal.stems["snare"])[0]]
    assert ev.spectral_distance_db(a, b) > 1.0
