"""Edit planning: targets, strength, exclusion, protection, merging, order, validation, and attacks heard in the audio."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from beatfix.attacks import find_attacks
from beatfix.errors import ParameterError
from beatfix.grid import Grid
from beatfix.plan import EditPlan, decay_room_samples, plan_edits
from beatfix.render import plan_seams
from beatfix.types import Hit
from render_fixtures import SR, analysis, attacks_off_grid, session

GRID = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=2.0)  # a slot every 250 ms
SLOTS = list(range(8))
DEVIATIONS_MS = [12.0, -18.0, 6.0, -25.0, 20.0, -9.0, 15.0, -22.0]
N_SAMPLES = int(2.3 * SR)


def _plan(**kwargs) -> EditPlan:
    attacks = attacks_off_grid(GRID, SLOTS, DEVIATIONS_MS)
    return plan_edits(analysis(attacks, SLOTS, GRID, N_SAMPLES), n_samples=N_SAMPLES, **kwargs)


def _output_attacks(plan: EditPlan) -> np.ndarray:
    return np.array([e.attack_sample + e.shift_samples for e in plan.edits])


def test_no_hits_gives_an_empty_plan():
    plan = plan_edits(analysis([], [], GRID, N_SAMPLES), n_samples=N_SAMPLES)
    assert plan.edits == ()
    assert (plan.sample_rate, plan.n_samples, plan.pad_ms, plan.xfade_ms) == (SR, N_SAMPLES, 3.0, 4.0)


def test_full_strength_puts_every_attack_on_its_slot():
    plan = _plan()
    slot_samples = GRID.slot_time(np.array(SLOTS)) * SR
    assert len(plan.edits) == len(SLOTS)
    assert np.all(np.abs(_output_attacks(plan) - slot_samples) <= 0.5 + 1e-9)
    for edit, dev in zip(plan.edits, DEVIATIONS_MS):
        assert edit.deviation_ms == pytest.approx(dev, abs=1000 / SR)
        assert edit.cut_sample == edit.attack_sample - round(0.003 * SR)


def test_half_strength_moves_half_way():
    plan = _plan(strength_pct=50.0)
    for edit, dev in zip(plan.edits, DEVIATIONS_MS):
        assert abs(edit.shift_samples - (-0.5 * dev / 1000 * SR)) <= 1.0


def test_zero_strength_moves_nothing():
    assert all(e.shift_samples == 0 for e in _plan(strength_pct=0.0).edits)


def test_exclude_within_leaves_near_hits_alone():
    plan = _plan(exclude_within_ms=12.0)  # inclusive: the 12 ms hit stays too
    for edit, dev in zip(plan.edits, DEVIATIONS_MS):
        if abs(dev) <= 12.0:
            assert edit.shift_samples == 0
        else:
            assert abs(edit.shift_samples + dev / 1000 * SR) <= 1.0


def test_default_protection_covers_the_latest_mic():
    assert _plan().protect_ms == pytest.approx(30.0 + 12.0)
    assert _plan(protect_ms=10.0).protect_ms == 10.0


def test_hits_too_close_to_cut_apart_are_merged():
    grid = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=4.0)
    attacks = [4800, 4800 + 240, 4800 + 6000]  # 5 ms apart (< pad + xfade), then 125 ms
    plan = plan_edits(analysis(attacks, [0, 0, 1], grid, N_SAMPLES), n_samples=N_SAMPLES)
    first, second = plan.edits
    assert first.hit_index == 0 and first.merged_hit_indices == (1,)
    assert first.last_attack_sample == 5040 and first.protect_from_sample == 5040
    assert first.cut_sample == 4800 - 144
    # One shift for the merged piece: the mean of both hits' moves.
    assert first.shift_samples == round(-(4800 + 120 - 4800))
    assert second.merged_hit_indices == () and second.protect_from_sample == second.attack_sample


def test_colliding_hits_keep_their_order_and_the_later_move_gives_way():
    grid = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=4.0)  # slot 1 at 225 ms
    # Both hits claim slot 1, B 25 ms early and A 35 ms late: moved fully they would collide.
    attacks = [int(0.200 * SR), int(0.260 * SR)]
    plan = plan_edits(analysis(attacks, [1, 1], grid, N_SAMPLES), n_samples=N_SAMPLES)
    b, a = plan.edits
    assert b.shift_samples == round(0.025 * SR)  # the earlier hit keeps its move
    assert round(-0.035 * SR) < a.shift_samples < b.shift_samples  # the later one gives way
    out_b, out_a = _output_attacks(plan)
    # As close as the seam rules allow, and no closer.
    assert out_a - out_b == plan.pad_samples + plan.xfade_samples + plan.protect_samples
    assert decay_room_samples(b, a.cut_sample, plan.protect_samples) >= 0


def test_output_order_holds_for_dense_uneven_hits():
    rng = np.random.default_rng(3)
    grid = Grid(bpm=180.0, offset_s=0.05, steps_per_beat=4.0)  # 83 ms slots
    slots = list(range(40))
    attacks = attacks_off_grid(grid, slots, list(rng.uniform(-30, 30, len(slots))))
    n = max(attacks) + SR
    plan = plan_edits(analysis(attacks, slots, grid, n), n_samples=n)
    outs = _output_attacks(plan)
    assert np.all(np.diff(outs) > 0)
    assert np.all(np.diff([e.cut_sample for e in plan.edits]) > 0)


def test_hits_out_of_attack_order_are_planned_by_attack():
    # Sorted by anchor, but the second hit's earliest attack comes first (a wide spread).
    a = analysis([4800], [0], GRID, N_SAMPLES)
    a = replace(a, hits=(Hit(0.100, 0.099, 0, 0.0, {}), Hit(0.101, 0.0985, 0, 1.0, {}),
                         Hit(0.350, 0.350, 1, 0.0, {})))
    plan = plan_edits(a, n_samples=N_SAMPLES)
    assert [e.hit_index for e in plan.edits] == [1, 2]
    assert plan.edits[0].merged_hit_indices == (0,)
    assert plan.edits[0].cut_sample == round(0.0985 * SR) - 144


def test_hit_at_the_very_start_keeps_its_cut_in_the_output():
    grid = Grid(bpm=120.0, offset_s=0.0, steps_per_beat=2.0)
    attacks = [60, 12000]  # the first is 1.25 ms late for slot 0 at t = 0
    plan = plan_edits(analysis(attacks, [0, 1], grid, N_SAMPLES), n_samples=N_SAMPLES)
    first = plan.edits[0]
    assert first.cut_sample == 0 and first.shift_samples == 0
    assert first.attack_sample + first.shift_samples >= 0


def test_negative_time_from_delay_compensation_clamps_to_the_first_sample():
    a = analysis([100], [0], GRID, N_SAMPLES)
    a = replace(a, hits=(Hit(-0.0004, -0.0004, 0, -100.4, {}),))
    plan = plan_edits(a, n_samples=N_SAMPLES)
    assert plan.edits[0].attack_sample == 0 and plan.edits[0].cut_sample == 0


def test_hit_at_the_very_end_stays_inside_the_output():
    grid = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=2.0)
    n = int(0.1 * SR + 0.25 * SR) + 200  # slot 1 lies 200 samples before the end
    attacks = [int(0.1 * SR), n - 300]  # hit 2 is 500 samples early: its move would leave
    plan = plan_edits(analysis(attacks, [0, 2], grid, n), n_samples=n)
    last = plan.edits[-1]
    assert last.attack_sample + last.shift_samples == n - 1


@pytest.mark.parametrize("kwargs", [
    {"strength_pct": -1.0}, {"strength_pct": 100.5}, {"strength_pct": math.nan},
    {"strength_pct": "lots"}, {"exclude_within_ms": -1.0}, {"exclude_within_ms": math.inf},
    {"pad_ms": -0.1}, {"pad_ms": 500.0}, {"xfade_ms": math.nan}, {"xfade_ms": -4.0},
    {"protect_ms": -5.0}, {"protect_ms": math.inf}, {"n_samples": -1}, {"n_samples": 1.5},
    {"n_samples": True},
])
def test_invalid_parameters_raise(kwargs):
    args = {"n_samples": N_SAMPLES, **kwargs}
    with pytest.raises(ParameterError):
        plan_edits(analysis([4800], [0], GRID, N_SAMPLES), **args)


def test_hit_beyond_the_audio_raises():
    with pytest.raises(ParameterError, match="beyond the audio"):
        plan_edits(analysis([N_SAMPLES + 10], [9], GRID, N_SAMPLES), n_samples=N_SAMPLES)


def test_non_finite_hit_time_raises():
    a = analysis([4800], [0], GRID, N_SAMPLES)
    a = replace(a, hits=(Hit(math.nan, math.nan, 0, 0.0, {}),))
    with pytest.raises(ParameterError, match="non-finite"):
        plan_edits(a, n_samples=N_SAMPLES)


# --- Hearing the audio: attacks the analysis missed, and how alike a crossfade's sides are ---


def test_attacks_are_heard_where_strokes_start_and_not_in_a_reverb_tail():
    n = 4 * SR // 10
    rng = np.random.default_rng(11)
    wash = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.15 * SR))  # a room's tail, no stroke in it
    assert [a for a in find_attacks([wash], SR).start_samples if a > SR // 200] == []
    audio = session([4800, 12000], ["snare", "snare"], n, gains=[0.8, 0.08])  # the second one soft
    found = find_attacks([audio[1]], SR).start_samples
    assert found.size == 2
    for start, stroke in zip(found, (4800, 12000)):  # each stroke is heard just before it starts
        assert stroke - SR // 1000 <= start <= stroke


def test_a_cut_moves_before_an_undetected_attack_just_ahead_of_its_hit():
    grid = GRID
    kick, snare = attacks_off_grid(grid, [0, 1], [8.0, -10.0])
    grace = snare - 20 * SR // 1000
    audio = session([kick, grace, snare], ["kick", "snare", "snare"], N_SAMPLES, gains=[0.8, 0.1, 0.8])
    a = analysis([kick, snare], [0, 1], grid, N_SAMPLES)
    deaf = plan_edits(a, n_samples=N_SAMPLES)
    heard = plan_edits(a, n_samples=N_SAMPLES, audio=[audio])
    pad = heard.pad_samples
    assert deaf.edits[1].cut_sample == snare - pad
    # The grace joins the snare's piece, a pad ahead of it; the moves are the analysis's as before.
    assert grace - pad - SR // 1000 <= heard.edits[1].cut_sample <= grace - pad
    assert [e.shift_samples for e in heard.edits] == [e.shift_samples for e in deaf.edits]
    assert [e.attack_sample for e in heard.edits] == [kick, snare]
    # Precomputed attacks plan the same.
    again = plan_edits(a, n_samples=N_SAMPLES, audio=[audio], attacks=find_attacks([audio], SR))
    assert again.edits == heard.edits


def test_no_seam_reaches_back_into_an_undetected_attack_further_back():
    # A kick 35 ms late, then a stroke the analysis missed 70 ms before a kick 40 ms early:
    # filling the 75 ms gap from decay would replay the stroke. It is too far ahead of the kick
    # to join its piece, so the seam must stay after it (and its 30 ms), and the move gives way.
    grid = GRID
    first, second = attacks_off_grid(grid, [0, 1], [35.0, -40.0])
    stray = second - 70 * SR // 1000
    audio = session([first, stray, second], ["kick", "snare", "kick"], N_SAMPLES, gains=[0.8, 0.5, 0.8])
    a = analysis([first, second], [0, 1], grid, N_SAMPLES)
    deaf = plan_edits(a, n_samples=N_SAMPLES)
    old_seam = plan_seams(deaf)[1]
    replayed_from = deaf.edits[1].cut_sample - (old_seam.shift_samples - old_seam.prev_shift_samples) - deaf.xfade_samples
    assert old_seam.kind == "fill" and replayed_from < stray  # without hearing, the fill replays the stroke
    heard = plan_edits(a, n_samples=N_SAMPLES, audio=[audio])
    edit = heard.edits[1]
    assert second - heard.pad_samples - SR // 1000 <= edit.cut_sample <= second - heard.pad_samples
    assert edit.room_from_sample >= stray + 30 * SR // 1000
    seam = plan_seams(heard)[1]
    touched_from = seam.stretch_src_start if seam.kind == "stretch" else (
        edit.cut_sample - (seam.shift_samples - seam.prev_shift_samples) - heard.xfade_samples)
    assert touched_from >= edit.room_from_sample
    assert 0 < seam.shift_samples - seam.prev_shift_samples < old_seam.shift_samples - old_seam.prev_shift_samples


def test_crossfade_correlation_is_measured_on_every_channel():
    grid = GRID
    kick, snare = attacks_off_grid(grid, [0, 1], [0.0, 0.0])
    audio = session([kick, snare - 1], ["kick", "snare"], N_SAMPLES)
    a = analysis([kick, snare - 1], [0, 1], grid, N_SAMPLES)
    alike = plan_edits(a, n_samples=N_SAMPLES, audio=[audio[:2], audio[2:]]).edits[1]
    assert alike.shift_samples == 1 and alike.xfade_correlation > 0.9  # a kick's decay, one sample apart
    assert plan_edits(a, n_samples=N_SAMPLES).edits[1].xfade_correlation is None
    noise = np.random.default_rng(2).standard_normal((1, N_SAMPLES)).astype(np.float32)
    assert plan_edits(a, n_samples=N_SAMPLES, audio=[noise]).edits[1].xfade_correlation < 0.2


def test_audio_of_another_length_is_refused():
    with pytest.raises(ParameterError, match="samples"):
        plan_edits(analysis([4800], [0], GRID, N_SAMPLES), n_samples=N_SAMPLES,
                   audio=[np.zeros((2, N_SAMPLES - 1), dtype=np.float32)])


def test_each_edit_says_whether_it_moved_was_capped_excluded_or_already_on_its_slot():
    assert [e.status for e in _plan().edits] == ["moved"] * len(SLOTS)
    assert {e.status for e in _plan(strength_pct=0.0).edits} == {"zero"}
    plan = _plan(exclude_within_ms=12.0)
    assert [e.status for e in plan.edits] == ["excluded" if abs(d) <= 12.0 else "moved" for d in DEVIATIONS_MS]
    grid = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=4.0)
    b, a = plan_edits(analysis([int(0.200 * SR), int(0.260 * SR)], [1, 1], grid, N_SAMPLES),
                      n_samples=N_SAMPLES).edits
    assert (b.status, a.status) == ("moved", "capped")  # the later hit gave way: its move was reduced
    assert a.wanted_shift_samples == round(-0.035 * SR) != a.shift_samples
    assert b.wanted_shift_samples == b.shift_samples
