"""Tempo candidates, grid phase and drift-aware slot assignment."""

from __future__ import annotations

import numpy as np
import pytest
from session_fixtures import Spec, make_events, make_session

from beatfix.analyse import analyse_session
from beatfix.errors import ParameterError
from beatfix.grid import Grid
from beatfix.tempo import assign_slots, fit_grid, prefer_backbeat, prefer_grid_fit, tempo_candidates
from beatfix.types import TempoCandidate


@pytest.mark.parametrize("bpm", [80.0, 120.0, 170.0])
def test_tempo_estimated_within_one_percent_with_half_and_double_listed(bpm):
    synth = make_session(Spec(bpm=bpm, bars=4 if bpm < 150 else 6, seed=int(bpm), ghosts=False,
                              close=("kick", "snare_top", "hh"), followers=()))
    analysis = analyse_session(synth.session)
    assert abs(analysis.tempo_bpm / bpm - 1.0) <= 0.01
    listed = [c.bpm for c in analysis.tempo_candidates]
    assert abs(listed[0] / bpm - 1.0) <= 0.01
    for ratio in (0.5, 2.0):
        assert any(abs(b / (bpm * ratio) - 1.0) <= 0.01 for b in listed)
    assert sum(c.strength for c in analysis.tempo_candidates) == pytest.approx(1.0)


def test_candidates_always_list_half_and_double_and_sum_to_one():
    cands = tempo_candidates([240.0, 120.0, 90.0], [0.5, 0.3, 0.2])
    assert cands[0].bpm == 120.0  # 240 is outside 60-200: the strongest inside is chosen
    assert {60.0, 120.0, 240.0, 90.0} == {c.bpm for c in cands}
    assert sum(c.strength for c in cands) == pytest.approx(1.0)
    assert [c.bpm for c in tempo_candidates([250.0], [1.0])][0] == 125.0  # folded into range


def test_backbeat_picks_the_octave_where_snares_are_two_beats_apart():
    cands = [TempoCandidate(120.0, 0.5), TempoCandidate(60.0, 0.3), TempoCandidate(240.0, 0.2)]
    snares_every_2_s = [1.0, 3.0, 5.0, 7.0]  # beats 2 and 4 at 60 BPM
    assert prefer_backbeat(cands, snares_every_2_s)[0].bpm == 60.0
    assert prefer_backbeat(cands, [1.0, 2.0, 3.0, 4.0])[0].bpm == 120.0
    assert prefer_backbeat(cands, [])[0].bpm == 120.0


def test_grid_fit_picks_the_triplet_relative_the_onsets_fit():
    rng = np.random.default_rng(0)
    triplets = np.arange(60) * 60.0 / 100.0 / 3.0 + 0.31 + rng.normal(0, 0.004, 60)  # 1/8T at 100 BPM
    cands = [TempoCandidate(150.0, 0.5), TempoCandidate(75.0, 0.2), TempoCandidate(100.0, 0.2),
             TempoCandidate(300.0, 0.1)]
    assert prefer_grid_fit(cands, triplets, np.ones(60), steps_per_beat=3)[0].bpm == 100.0
    # not listed: added with strength 0, the strengths still sum to 1
    chosen = prefer_grid_fit(cands[:2], triplets, np.ones(60), steps_per_beat=3)
    assert chosen[0].bpm == pytest.approx(100.0) and sum(c.strength for c in chosen) == pytest.approx(0.7)
    # a finer grid that holds the onsets as well (1/16 at 180 holds 1/8 at 120) does not win
    eighths = np.arange(60) * 0.25 + 0.2 + rng.normal(0, 0.003, 60)
    cands = [TempoCandidate(120.0, 0.5), TempoCandidate(180.0, 0.3), TempoCandidate(60.0, 0.2)]
    assert prefer_grid_fit(cands, eighths, np.ones(60), steps_per_beat=4)[0].bpm == 120.0


def test_shuffle_tempo_not_taken_at_three_halves():
    """A shuffle on a triplet grid: the straight-eighth reading (x 3/2) fits the 1/8T grid badly."""
    from beatfix.synth import SessionSpec, procedural_kit, render_session

    spec = SessionSpec(seed=5019, style="shuffle", bpm=102.0, sample_rate=44100, duration_s=20)
    synth = render_session(spec, procedural_kit(44100, seed=3))
    analysis = analyse_session(synth.as_session(), grid="1/8T")
    assert abs(analysis.tempo_bpm / synth.truth["bpm"] - 1.0) <= 0.01
    assert sum(c.strength for c in analysis.tempo_candidates) == pytest.approx(1.0)


def _times_and_slots(spec: Spec):
    events = [e for e in make_events(spec) if e.kind != "grace"]
    return np.array([e.time_s for e in events]), np.array([e.slot for e in events])


def test_grid_offset_within_a_ms_of_truth_and_tempo_refined():
    spec = Spec(bpm=97.0, bars=8, seed=3, offset_s=0.437, jitter_ms=3.0)
    times, _ = _times_and_slots(spec)
    grid = fit_grid(times, np.ones_like(times), bpm=97.0 * 1.008, steps_per_beat=4)  # start 0.8 % off
    assert abs(grid.bpm / 97.0 - 1.0) < 0.001
    assert abs(grid.offset_s - 0.437) * 1000 <= 1.0
    fixed = fit_grid(times, np.ones_like(times), bpm=97.0, steps_per_beat=4, fixed_bpm=True)
    assert fixed.bpm == 97.0 and abs(fixed.offset_s - 0.437) * 1000 <= 1.0


def test_offset_is_the_beat_within_the_first_beat():
    spec = Spec(bpm=120.0, bars=4, seed=4, offset_s=0.5 + 0.125 * 0 + 0.31, jitter_ms=1.0)  # first hit after a beat
    times, _ = _times_and_slots(spec)
    grid = fit_grid(times, np.ones_like(times), bpm=120.0, steps_per_beat=4, fixed_bpm=True)
    assert 0.0 <= grid.offset_s < 0.5
    assert abs(grid.offset_s - 0.31) * 1000 <= 1.0  # the kick/snare beat, not a hat 16th


def test_sloppy_drifting_timing_keeps_every_slot():
    # +-25 ms sloppiness on top of a +-45 ms slow push and pull: nearest-slot alone flips hits
    spec = Spec(bpm=120.0, bars=8, seed=7, sloppy_ms=25.0, drift_ms=45.0, drift_period_beats=16.0,
                sixteenth_hats=True)
    times, truth = _times_and_slots(spec)
    grid = Grid(120.0, spec.offset_s, 4.0)
    naive = np.asarray(grid.nearest_slot(times))
    slots = assign_slots(times, grid)
    assert np.any(naive != truth)
    np.testing.assert_array_equal(slots, truth)


def test_sloppy_drifting_timing_through_the_fitted_grid():
    spec = Spec(bpm=105.0, bars=8, seed=9, sloppy_ms=25.0, drift_ms=40.0, drift_period_beats=16.0)
    times, truth = _times_and_slots(spec)
    grid = fit_grid(times, np.ones_like(times), bpm=105.0, steps_per_beat=4, fixed_bpm=True)
    slots = assign_slots(times, grid)
    assert len(set(slots - truth)) == 1  # right up to the numbering of slot 0


def test_swing_grid_fit_and_slots():
    swing = 62.0
    step = 60.0 / 110.0 / 4
    pattern = [(s, "hat", 0.0, "normal") for s in range(64)] + [(s, "kick", 0.0, "normal") for s in range(0, 64, 8)]
    spec = Spec(bpm=110.0, offset_s=0.2, jitter_ms=2.0, pattern=pattern)
    events = make_events(spec)
    times = np.array([e.time_s + (e.slot % 2) * (2 * swing / 100 - 1) * step for e in events])
    truth = np.array([e.slot for e in events])
    grid = fit_grid(times, np.ones_like(times), bpm=110.0, steps_per_beat=4, swing_pct=swing, fixed_bpm=True)
    assert abs(grid.offset_s - 0.2) * 1000 <= 1.0
    slots = assign_slots(times, grid)
    assert len(set(slots - truth)) == 1 and (slots - truth)[0] % 2 == 0


def test_bad_bpm_is_a_parameter_error():
    with pytest.raises(ParameterError):
        fit_grid([1.0], [1.0], bpm=1000.0, steps_per_beat=4)
