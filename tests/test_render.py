"""Rendering: what a listener hears at every seam, on seeded synthetic kits.

Each scenario renders once (module fixtures); the tests measure attacks by
matching the known one-shot, levels and high-frequency energy in short
windows, and compare against the unedited input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beatfix.attacks import find_attacks
from beatfix.errors import ParameterError
from beatfix.grid import Grid
from beatfix.plan import EditPlan, plan_edits
from beatfix.render import Seam, crossfade_gains, plan_seams, render, stretch
from render_fixtures import (
    CHANNELS, OH_DELAY, ROOM_DELAY, SR, analysis, attacks_off_grid, envelope_onsets, highpass,
    locate, rms_db, session, strong_matches,
)

MS = SR // 1000


@dataclass(frozen=True)
class Case:
    grid: Grid
    attacks: list[int]
    kinds: list[str]
    audio: np.ndarray
    plan: EditPlan
    out: np.ndarray

    @property
    def seams(self) -> tuple[Seam, ...]:
        return plan_seams(self.plan)


def _case(grid: Grid, deviations_ms: list[float], n_samples: int, **plan_kwargs) -> Case:
    slots = list(range(len(deviations_ms)))
    attacks = attacks_off_grid(grid, slots, deviations_ms)
    kinds = ["kick", "snare"] * (len(slots) // 2) + ["kick"] * (len(slots) % 2)
    audio = session(attacks, kinds, n_samples)
    plan = plan_edits(analysis(attacks, slots, grid, n_samples), n_samples=n_samples, **plan_kwargs)
    return Case(grid, attacks, kinds, audio, plan, render(audio, plan))


SPREAD_GRID = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=2.0)  # 250 ms slots
SPREAD_DEVIATIONS_MS = [12.0, -18.0, 6.0, -25.0, 20.0, -9.0, 15.0, -22.0]
# 100 ms slots; hit 1 is 28 ms early, more than its predecessor's decay room can fill.
DENSE_GRID = Grid(bpm=150.0, offset_s=0.05, steps_per_beat=4.0)
DENSE_DEVIATIONS_MS = [0.0, -28.0, 0.0, 8.0, -12.0, 0.0]


@pytest.fixture(scope="module")
def spread() -> Case:
    return _case(SPREAD_GRID, SPREAD_DEVIATIONS_MS, int(2.3 * SR))


@pytest.fixture(scope="module")
def dense() -> Case:
    return _case(DENSE_GRID, DENSE_DEVIATIONS_MS, int(0.9 * SR))


@pytest.fixture(scope="module", params=["spread", "dense"])
def case(request) -> Case:
    return request.getfixturevalue(request.param)


def _new_attacks(case: Case) -> list[int]:
    return [e.attack_sample + e.shift_samples for e in case.plan.edits]


def test_output_has_exactly_the_input_shape_and_dtype(case):
    assert case.out.shape == case.audio.shape and case.out.dtype == np.float32
    as64 = render(case.audio.astype(np.float64), case.plan)
    assert as64.dtype == np.float64 and as64.shape == case.audio.shape
    assert np.all(np.isfinite(case.out))


def test_full_strength_puts_every_attack_within_a_sample_of_its_slot(spread):
    for slot, kind in enumerate(spread.kinds):
        target = spread.grid.slot_time(slot) * SR
        found = locate(spread.out[CHANNELS.index(kind)], kind, int(round(target)))
        assert abs(found - target) <= 1.0


def test_half_strength_moves_half_way_and_exclusion_leaves_near_hits():
    half = _case(SPREAD_GRID, SPREAD_DEVIATIONS_MS, int(2.3 * SR), strength_pct=50.0)
    for attack, kind, dev in zip(half.attacks, half.kinds, SPREAD_DEVIATIONS_MS):
        want = attack - 0.5 * dev * MS
        assert abs(locate(half.out[CHANNELS.index(kind)], kind, int(want)) - want) <= 1.0
    near = _case(SPREAD_GRID, SPREAD_DEVIATIONS_MS, int(2.3 * SR), exclude_within_ms=15.0)
    for slot, (attack, kind, dev) in enumerate(zip(near.attacks, near.kinds, SPREAD_DEVIATIONS_MS)):
        want = attack if abs(dev) <= 15.0 else near.grid.slot_time(slot) * SR
        assert abs(locate(near.out[CHANNELS.index(kind)], kind, int(want)) - want) <= 1.0


def test_mics_keep_their_phase_at_every_hit(case):
    for attack, new, kind in zip(case.attacks, _new_attacks(case), case.kinds):
        close = CHANNELS.index(kind)
        for mic, delay in ((2, OH_DELAY), (3, ROOM_DELAY)):
            before = locate(case.audio[mic], kind, attack + delay) - locate(case.audio[close], kind, attack)
            after = locate(case.out[mic], kind, new + delay) - locate(case.out[close], kind, new)
            assert before == delay and after - before == 0


def test_each_hit_moves_as_one_untouched_block_on_every_channel(case):
    protect = case.plan.protect_samples
    for edit in case.plan.edits:
        start, stop = edit.cut_sample, edit.attack_sample + protect
        moved = case.out[:, start + edit.shift_samples:stop + edit.shift_samples]
        assert np.array_equal(moved, case.audio[:, start:stop])


def test_no_attack_sounds_twice_or_stays_behind(case):
    for kind in ("kick", "snare"):
        want = [a for a, k in zip(_new_attacks(case), case.kinds) if k == kind]
        assert strong_matches(case.out[CHANNELS.index(kind)], kind) == want
        assert strong_matches(case.out[2], kind) == [a + OH_DELAY for a in want]
    for ch in range(3):
        heard_in, heard_out = envelope_onsets(case.audio[ch]), envelope_onsets(case.out[ch])
        assert len(heard_out) == len(heard_in)
        for edit in case.plan.edits:
            if abs(edit.shift_samples) > 3 * MS:
                old = edit.attack_sample + (OH_DELAY if ch == 2 else 0)
                assert all(abs(t - old) > 2 * MS for t in heard_out)


def _window_db(x: np.ndarray, start: int, stop: int, width: int) -> list[float]:
    return [rms_db(x[i:i + width]) for i in range(start, max(start + 1, stop - width + 1), MS // 2)]


def _dropout_db(case: Case, out: np.ndarray) -> float:
    """Quietest 5 ms window across any seam, relative to the quietest of the unedited decay
    in the 20 ms before that seam's cut (dB). The decay is quietest there, and every seam
    plays decay from there or earlier, so a fair seam never falls far below it."""
    worst = np.inf
    width = 5 * MS
    for seam in case.seams:
        if seam.kind == "join":
            continue
        edit = case.plan.edits[seam.edit_index]
        piece_start = edit.cut_sample + edit.shift_samples
        for ch in range(4):
            decay_db = min(_window_db(case.audio[ch], edit.cut_sample - 20 * MS, edit.cut_sample, width))
            levels = _window_db(out[ch], seam.out_start - 2 * MS, piece_start, width)
            worst = min(worst, min(levels) - decay_db)
    return worst


def test_no_dropout_across_seams(case):
    assert _dropout_db(case, case.out) > -12.0


def test_dropout_measure_hears_a_silent_gap(spread):
    holed = spread.out.copy()
    seam = next(s for s in spread.seams if s.kind == "fill")
    holed[:, seam.out_stop:seam.out_stop + 5 * MS] = 0.0  # where the gap's fill plays
    assert _dropout_db(spread, holed) < -12.0


def _hf_db(x_hf: np.ndarray, start: int) -> float:
    return rms_db(x_hf[max(0, start):max(0, start) + MS])


def _click_excess_db(case: Case, out: np.ndarray, plan: EditPlan) -> float:
    """Worst 4 kHz+ level at any seam above the louder unedited source it plays (dB)."""
    worst = -np.inf
    for ch in range(4):
        src, dst = highpass(case.audio[ch], 4000.0), highpass(out[ch], 4000.0)
        for seam in plan_seams(plan):
            if seam.kind == "join":
                continue
            span = range(seam.out_start - MS, seam.out_stop + 1, MS // 2)
            if seam.kind == "stretch":
                ref = max(_hf_db(src, s) for s in range(seam.stretch_src_start - MS,
                                                         seam.stretch_src_stop + 1, MS // 2))
            for w in span:
                if seam.kind != "stretch":
                    ref = max(_hf_db(src, w - seam.prev_shift_samples), _hf_db(src, w - seam.shift_samples))
                worst = max(worst, _hf_db(dst, w) - ref)
    return worst


def test_no_clicks_at_seams(case):
    assert _click_excess_db(case, case.out, case.plan) < 6.0


def test_click_measure_hears_a_butt_splice(spread):
    hard = replace(spread.plan, xfade_ms=0.0)
    assert _click_excess_db(spread, render(spread.audio, hard), hard) > 6.0


def test_dense_hits_with_a_big_gap_stretch_the_decay(dense):
    kinds = [s.kind for s in dense.seams]
    assert "stretch" in kinds
    seam = dense.seams[kinds.index("stretch")]
    prev = dense.plan.edits[seam.edit_index - 1]
    # The previous hit's protected zone is left alone; the stretch joins the next piece exactly.
    assert seam.stretch_src_start == prev.attack_sample + dense.plan.protect_samples
    assert seam.stretch_src_stop == dense.plan.edits[seam.edit_index].cut_sample
    assert seam.out_stop - seam.out_start > seam.stretch_src_stop - seam.stretch_src_start


def test_stretch_is_exact_at_ratio_one_and_keeps_a_tone():
    audio = np.random.default_rng(1).standard_normal((2, 12000)).astype(np.float32)
    assert np.allclose(stretch(audio, 1000, 10000, 9000), audio[:, 1000:10000], atol=1e-6)
    t = np.arange(20000) / SR
    tone = np.sin(2 * np.pi * 1000.0 * t)[None, :].astype(np.float32)
    slow = stretch(tone, 5000, 7000, 4000)[0]  # twice as long: 500 Hz
    want = np.sin(2 * np.pi * 500.0 * np.arange(4000) / SR + 2 * np.pi * 1000.0 * 5000 / SR)
    assert np.max(np.abs(slow - want)) < 1e-3


def test_no_hits_and_zero_strength_leave_the_audio_bitwise_unchanged(spread):
    n = spread.audio.shape[1]
    empty = plan_edits(analysis([], [], SPREAD_GRID, n), n_samples=n)
    assert np.array_equal(render(spread.audio, empty), spread.audio)
    still = plan_edits(analysis(spread.attacks, list(range(8)), SPREAD_GRID, n), n_samples=n,
                       strength_pct=0.0)
    assert np.array_equal(render(spread.audio, still), spread.audio)


def test_hits_at_the_very_start_and_end_render_whole():
    grid = Grid(bpm=120.0, offset_s=0.0, steps_per_beat=2.0)
    n = int(0.5 * SR) + 400
    attacks = [40, int(0.25 * SR) - 300, n - 700]  # first late, second early, last early
    audio = session(attacks, ["kick", "snare", "kick"], n)
    plan = plan_edits(analysis(attacks, [0, 1, 2], grid, n), n_samples=n)
    out = render(audio, plan)
    assert out.shape == audio.shape
    new = [e.attack_sample + e.shift_samples for e in plan.edits]
    assert strong_matches(out[0], "kick") == [new[0], new[2]]
    assert strong_matches(out[1], "snare") == [new[1]]


def test_progress_reports_fractions_up_to_one(spread):
    seen: list[float] = []
    render(spread.audio, spread.plan, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and all(0.0 <= f <= 1.0 for f in seen)


def test_render_refuses_what_it_cannot_render(spread):
    with pytest.raises(ParameterError, match="samples"):
        render(spread.audio[:, :-1], spread.plan)
    with pytest.raises(ParameterError):
        render(spread.audio[0], spread.plan)
    edits = spread.plan.edits
    swapped = replace(spread.plan, edits=(edits[1], edits[0]) + edits[2:])
    with pytest.raises(ParameterError, match="increasing"):
        render(spread.audio, swapped)
    crowded = replace(spread.plan, edits=(edits[0], replace(edits[1], shift_samples=-200 * MS)))
    with pytest.raises(ParameterError, match="earlier"):
        render(spread.audio, crowded)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bpm=st.floats(60.0, 240.0),
    n_hits=st.integers(0, 14),
    n_channels=st.integers(1, 3),
    strength_pct=st.floats(0.0, 100.0),
    exclude_within_ms=st.floats(0.0, 20.0),
    xfade_ms=st.floats(0.0, 10.0),
    protect_ms=st.one_of(st.none(), st.floats(0.0, 60.0)),
    hearing=st.booleans(),
)
def test_random_plans_render_exact_length_finite_and_bounded(
    seed, bpm, n_hits, n_channels, strength_pct, exclude_within_ms, xfade_ms, protect_ms, hearing
):
    rng = np.random.default_rng(seed)
    grid = Grid(bpm=bpm, offset_s=float(rng.uniform(0.0, 0.05)), steps_per_beat=4.0)
    slots = list(np.cumsum(rng.integers(1, 4, n_hits)))
    attacks = [max(0, a) for a in attacks_off_grid(grid, slots, list(rng.uniform(-30, 30, n_hits)))]
    n = (max(attacks) if attacks else 0) + int(rng.integers(1, SR // 4))
    audio = (0.01 * rng.standard_normal((n_channels, n))).astype(np.float32)
    burst = rng.standard_normal(SR // 10) * np.exp(-np.arange(SR // 10) / (0.02 * SR))
    for at in [*attacks, *rng.integers(0, n, int(rng.integers(0, 8)))]:  # hits and strokes nobody detected
        stop = min(n, at + burst.size)
        audio[int(rng.integers(n_channels)), at:stop] += burst[:stop - at].astype(np.float32)
    plan = plan_edits(analysis(attacks, slots, grid, n), n_samples=n, strength_pct=strength_pct,
                      exclude_within_ms=exclude_within_ms, xfade_ms=xfade_ms, protect_ms=protect_ms,
                      audio=[audio] if hearing else None)
    if hearing:  # no seam plays twice, drops or stretches any attack heard in the audio
        heard = find_attacks([audio], SR)
        for seam in plan_seams(plan):
            if seam.kind != "join":
                cut = plan.edits[seam.edit_index].cut_sample
                move = abs(seam.shift_samples - seam.prev_shift_samples)
                first = seam.stretch_src_start if seam.kind == "stretch" else cut - move - plan.xfade_samples
                assert heard.between(first, cut).size == 0
    with pytest.MonkeyPatch.context() as patch:
        # Start from NaN instead of whatever memory holds: every sample must be written.
        patch.setattr(np, "empty_like", lambda a: np.full(a.shape, np.nan, dtype=a.dtype))
        out = render(audio, plan)
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() <= 1.5 * np.abs(audio).max()
    assert np.all(np.diff([e.attack_sample + e.shift_samples for e in plan.edits]) > 0)


# --- Attacks the analysis missed, and crossfades over tiny moves ------------------------


def _audio_plan(attacks, slots, grid, n, audio, **kwargs) -> EditPlan:
    """Planned as ``beatfix align`` plans: from the analysis's hits, hearing every channel."""
    return plan_edits(analysis(attacks, slots, grid, n), n_samples=n, audio=[audio], **kwargs)


def test_an_undetected_grace_note_is_carried_by_its_hit_and_never_heard_twice():
    # A kick 8 ms late (moves earlier), then a flam whose soft grace the analysis missed,
    # 20 ms before a snare 10 ms early (moves later): an 18 ms gap to fill right behind the grace.
    grid = SPREAD_GRID
    kick, snare = attacks_off_grid(grid, [0, 1, 2], [8.0, -10.0, 0.0])[:2]
    grace = snare - 20 * MS
    n = int(0.9 * SR)
    attacks = [kick, grace, snare]
    audio = session(attacks, ["kick", "snare", "snare"], n, gains=[0.8, 0.1, 0.8])
    plan = _audio_plan([kick, snare], [0, 1], grid, n, audio)  # the grace is not a hit
    out = render(audio, plan)
    shift = plan.edits[1].shift_samples
    assert shift - plan.edits[0].shift_samples >= 17 * MS  # the gap reaches back past the grace
    # The flam moves whole, as played: grace and stroke each heard once, 20 ms apart.
    assert strong_matches(out[1], "snare") == [grace + shift, snare + shift]
    assert strong_matches(out[2], "snare") == [grace + shift + OH_DELAY, snare + shift + OH_DELAY]
    for ch in range(3):
        assert len(envelope_onsets(out[ch])) == len(envelope_onsets(audio[ch]))


@pytest.mark.parametrize("deviation_ms", [-12.0, 12.0])  # the kick moves later (a fill) or earlier (an overlap)
def test_an_overhead_only_cymbal_just_before_a_cut_is_neither_clicked_nor_chopped(deviation_ms):
    # A cymbal with no close mic struck 8 ms before the kick: the overhead hears it 2 ms before
    # the kick's cut would be (pad 3 ms), a pattern the analysis cannot see.
    grid = SPREAD_GRID
    snare, kick = attacks_off_grid(grid, [0, 1], [0.0, deviation_ms])
    cymbal = kick - 8 * MS
    n = int(0.8 * SR)
    audio = session([snare, cymbal, kick], ["snare", "cymbal", "kick"], n, gains=[0.8, 0.7, 0.8])
    plan = _audio_plan([snare, kick], [0, 1], grid, n, audio)
    out = render(audio, plan)
    shift = plan.edits[1].shift_samples
    assert abs(shift + deviation_ms * MS) <= 1  # the kick still lands on its slot
    heard = cymbal + OH_DELAY
    assert strong_matches(out[2], "cymbal") == [heard + shift]
    # The cymbal's attack plays untouched, moved with the kick: no seam inside it...
    start, stop = heard - 2 * MS, kick + 10 * MS
    assert np.array_equal(out[:, start + shift:stop + shift], audio[:, start:stop])
    # ...and nothing of it sounds before that: no chopped first copy where it was played.
    hf_in, hf_out = highpass(audio[2], 4000.0), highpass(out[2], 4000.0)
    quiet_db = max(_hf_db(hf_in, x) for x in range(heard - 10 * MS, heard - MS, MS // 2))
    for x in range(min(heard, heard + shift) - 10 * MS, heard + shift - MS, MS // 2):
        assert _hf_db(hf_out, x) < quiet_db + 6.0, x
    case = Case(grid, [snare, kick], ["snare", "kick"], audio, plan, out)
    assert _click_excess_db(case, out, plan) < 6.0


@pytest.mark.parametrize("hearing", [True, False])  # correlation measured on the audio, or judged from the move
def test_a_one_sample_move_crossfades_without_a_bump(hearing):
    # The snare lands one sample early, so its piece moves one sample later than the kick's: the
    # crossfade joins the kick's decay to itself one sample apart, where equal power adds 3 dB.
    grid = DENSE_GRID  # 100 ms apart: the decay is still loud where the seam is
    kick, snare = attacks_off_grid(grid, [0, 1], [0.0, 0.0])
    snare -= 1
    n = int(0.5 * SR)
    audio = session([kick, snare], ["kick", "snare"], n, gains=[0.8, 0.8])
    plan = plan_edits(analysis([kick, snare], [0, 1], grid, n), n_samples=n, audio=[audio] if hearing else None)
    out = render(audio, plan)
    (seam,) = [s for s in plan_seams(plan) if s.kind != "join"]
    assert seam.kind == "fill" and seam.shift_samples - seam.prev_shift_samples == 1
    width = 2 * MS  # short enough to hear a bump in the middle of the 4 ms fade
    changes_db = []
    for ch in range(4):
        for x in range(seam.out_start - width, seam.out_stop, MS // 8):
            was = rms_db(audio[ch, x - seam.prev_shift_samples:x - seam.prev_shift_samples + width])
            if was > rms_db(audio[ch]) - 40.0:  # not silence
                changes_db.append(rms_db(out[ch, x:x + width]) - was)
    assert len(changes_db) > 50 and max(np.abs(changes_db)) <= 0.5


@pytest.mark.parametrize("correlation", [0.0, 0.3, 0.7, 1.0])
def test_crossfade_gains_keep_the_level_of_sides_this_alike(correlation):
    rng = np.random.default_rng(5)
    common, own_a, own_b = rng.standard_normal((3, 200_000))
    # Two sides of equal level whose correlation is the given one.
    a = np.sqrt(correlation) * common + np.sqrt(1 - correlation) * own_a
    b = np.sqrt(correlation) * common + np.sqrt(1 - correlation) * own_b
    fade_out, fade_in = crossfade_gains(8, correlation)
    for g_out, g_in in zip(fade_out, fade_in):
        assert rms_db(g_out * a + g_in * b) == pytest.approx(rms_db(a), abs=0.1)
    assert fade_out[0] > 0.9 and fade_in[-1] > 0.9 and np.all(np.diff(fade_in) > 0)


def test_a_last_hit_moved_earlier_fades_out_where_the_input_runs_out():
    # The session ends mid-decay; the last hit moves 15 ms earlier, so its piece runs out of
    # input 15 ms before the output ends. Stopped dead there, the kick's decay would click.
    grid = SPREAD_GRID
    attacks = attacks_off_grid(grid, [0, 1], [0.0, 15.0])
    n = attacks[1] + SR // 5
    audio = session(attacks, ["snare", "kick"], n)
    plan = plan_edits(analysis(attacks, [0, 1], grid, n), n_samples=n)
    out = render(audio, plan)
    shift = plan.edits[-1].shift_samples
    assert shift == -15 * MS
    stop = n + shift
    assert not np.any(out[:, stop:])  # nothing left to play after the input ran out
    assert np.array_equal(out[:, stop - 10 * MS:stop - 5 * MS], audio[:, n - 10 * MS:n - 5 * MS])
    for ch in (0, 2, 3):  # the channels the kick's decay is still ringing in
        assert rms_db(out[ch, stop - MS // 2:stop]) < rms_db(audio[ch, n - MS // 2:n]) - 12.0
