"""Sections: span syntax, locked spans kept bit for bit, --range, a grid per section, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from beatfix.errors import ParameterError
from beatfix.grid import Grid
from beatfix.plan import plan_edits
from beatfix.render import render
from beatfix.sections import Section, parse_span, resolve
from beatfix.sections_file import parse_sections
from render_fixtures import SR, analysis, session

GRID = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=4.0)  # 16ths every 125 ms; a bar is 2 s
BAR = 2.0
N_BARS = 4
N_SAMPLES = int((0.1 + N_BARS * BAR + 0.4) * SR)
XFADE = round(0.004 * SR)
PAD = round(0.003 * SR)


def _played(slots, seed=3, spread_ms=14.0, grid=GRID):
    """Attack samples of hits on ``slots`` of ``grid``, each off by up to ``spread_ms``, seeded."""
    rng = np.random.default_rng(seed)
    dev = rng.uniform(-spread_ms, spread_ms, len(slots))
    dev = np.where(np.abs(dev) < 4.0, np.sign(dev + 1e-9) * 6.0, dev)  # every hit really off its slot
    return [int(round((grid.slot_time(s) + d / 1000.0) * SR)) for s, d in zip(slots, dev)]


def _session(slots, attacks):
    kinds = ["kick" if s % 8 == 0 else "snare" for s in slots]
    audio = session(attacks, kinds, N_SAMPLES, seed=5)
    return audio, analysis(attacks, slots, GRID, N_SAMPLES)


# Eighth notes over four bars: 32 hits, slot 0 on bar 1's downbeat.
SLOTS = list(range(0, 16 * N_BARS, 2))


def _render(audio, an, rules):
    plan = plan_edits(an, n_samples=N_SAMPLES, audio=[audio], rules=rules)
    return plan, render(audio, plan)


def _lock_audio_span(plan, k):
    """The locked piece ``k``'s audio in the output: from its cut to where the next piece starts."""
    edits = plan.edits
    start = edits[k].cut_sample
    if k + 1 == len(edits):
        return start, plan.n_samples, None
    nxt = edits[k + 1]
    return start, nxt.cut_sample + min(nxt.shift_samples, 0), nxt


def test_span_syntax():
    assert parse_span("12.5-20").start == (12.5,) and parse_span("12.5s - 20s").end == (20.0,)
    assert parse_span("bar 9-12").kind == "bars" and parse_span("Bars 9-12").end == (12,)
    assert parse_span("9|1-13|1").start == (9, 1, 0) and parse_span("9|3|480-10|1").start == (9, 3, 480)
    tm = GRID.tempo_map
    # bars inclusive: bar 2 through bar 3 is bar 2's start to bar 4's start
    assert parse_span("bar 2-3").seconds(tm, 20.0) == pytest.approx((0.1 + BAR, 0.1 + 3 * BAR))
    assert parse_span("2|1-4|1").seconds(tm, 20.0) == pytest.approx((0.1 + BAR, 0.1 + 3 * BAR))
    assert parse_span("2|3-2|4").seconds(tm, 20.0) == pytest.approx((0.1 + BAR + 1.0, 0.1 + BAR + 1.5))


@pytest.mark.parametrize("text, message", [
    ("20-12.5", "must come after the start"),
    ("bar 12-9", "comes before the first"),
    ("13|1-9|1", "must come after the start"),
    ("verse", "use seconds"),
    ("bar 0-2", "counted from 1"),
    ("9|5-10|1", None),  # 4/4 has no fifth beat: found when resolved
])
def test_bad_spans_are_one_line_errors(text, message):
    if message is None:
        with pytest.raises(ParameterError, match="has 4 beats"):
            parse_span(text).seconds(GRID.tempo_map, 60.0)
        return
    with pytest.raises(ParameterError, match=message) as err:
        parse_span(text, flag="--lock")
    assert "\n" not in str(err.value) and str(err.value).startswith("--lock")


def test_spans_past_the_end_and_overlapping_sections_are_refused():
    attacks = _played(SLOTS)
    _, an = _session(SLOTS, attacks)
    with pytest.raises(ParameterError, match="bar 9 starts at .* after the audio's end"):
        resolve(an, locks=["bar 2-9"])
    with pytest.raises(ParameterError, match="past the audio's end"):
        resolve(an, edit_range="1-30")
    with pytest.raises(ParameterError, match="overlap"):
        resolve(an, sections=[Section("bar 1-2", name="verse"), Section("bar 2-3", name="fill")])
    with pytest.raises(ParameterError, match="strength 120"):
        Section("bar 1-2", strength_pct=120)


def test_a_locked_span_is_the_input_sample_for_sample_but_its_border_crossfades():
    attacks = _played(SLOTS)
    audio, an = _session(SLOTS, attacks)
    rules = resolve(an, locks=["bar 2-3"])
    a, b = rules.lock_spans_samples[0]
    assert (a, b) == (round((0.1 + BAR) * SR), round((0.1 + 3 * BAR) * SR))
    plan, out = _render(audio, an, rules)
    locked = [k for k, e in enumerate(plan.edits) if e.locked]
    assert len(locked) == 1
    k = locked[0]
    lock = plan.edits[k]
    in_span = [i for i, s in enumerate(sorted(SLOTS)) if 0.1 + BAR <= GRID.slot_time(s) < 0.1 + 3 * BAR]
    assert sorted((lock.hit_index, *lock.merged_hit_indices)) == in_span  # one piece, never cut inside
    assert lock.shift_samples == 0 and lock.status == "locked"
    start, end, nxt = _lock_audio_span(plan, k)
    assert start <= a  # the span starts at or after the piece's cut: its seam lies before it
    # the next hit was played off its slot and moves: its seam reaches into the span by at most a pad
    assert nxt is not None and nxt.shift_samples != 0
    assert end >= min(nxt.cut_sample, b - PAD)
    differs = np.flatnonzero(np.any(out[:, start:end] != audio[:, start:end], axis=0)) + start
    assert differs.size > 0
    assert differs.min() >= end - XFADE  # only the border crossfade, no longer than xfade
    assert np.array_equal(out[:, start:end - XFADE], audio[:, start:end - XFADE])  # bit for bit
    # and every hit outside the span still lands on its slot (to the sample)
    outside = [e for e in plan.edits if not e.locked]
    for e in outside:
        target = GRID.slot_time(e.slot) * SR
        assert abs(e.attack_sample + e.shift_samples - target) <= 0.5 + 1e-9, e


def test_lock_next_to_a_late_hit_caps_the_hit_rather_than_the_lock():
    # the hit right before the span is 20 ms late and its decay runs into the span: it gives way
    slots = SLOTS
    attacks = _played(slots)
    before = max(i for i, s in enumerate(slots) if GRID.slot_time(s) < 0.1 + BAR)
    attacks[before] = int(round((0.1 + BAR - 0.004) * SR))  # 121 ms late, 4 ms before the span
    audio, an = _session(slots, attacks)
    rules = resolve(an, locks=["bar 2-3"])
    plan, out = _render(audio, an, rules)
    k = next(k for k, e in enumerate(plan.edits) if e.locked)
    prev = plan.edits[k - 1]
    assert prev.status == "capped" and prev.shift_samples == 0
    start, end, _ = _lock_audio_span(plan, k)
    assert np.array_equal(out[:, start:end - XFADE], audio[:, start:end - XFADE])


def test_range_edits_only_within():
    attacks = _played(SLOTS, seed=11)
    audio, an = _session(SLOTS, attacks)
    rules = resolve(an, edit_range="bar 2-3")
    lo, hi = 0.1 + BAR, 0.1 + 3 * BAR
    plan, out = _render(audio, an, rules)
    moved = [e for e in plan.edits if e.shift_samples != 0]
    assert moved and all(lo <= GRID.slot_time(e.slot) < hi for e in moved)
    for e in plan.edits:
        if not e.locked:  # inside the range: on the slot
            assert abs(e.attack_sample + e.shift_samples - GRID.slot_time(e.slot) * SR) <= 0.5 + 1e-9
    first, last = plan.edits[0], plan.edits[-1]
    assert first.locked and last.locked and len([e for e in plan.edits if e.locked]) == 2
    # before the range: the input, up to the first edited piece's seam
    k = 1
    head_end = plan.edits[k].cut_sample + min(plan.edits[k].shift_samples, 0)
    assert np.array_equal(out[:, :head_end - XFADE], audio[:, :head_end - XFADE])
    assert head_end >= round(lo * SR) - PAD - round(0.02 * SR)  # the range's first hit is within 14 ms early
    # after the range: the input from the locked piece's cut, which is at or before the range's end
    tail = plan.edits[-1].cut_sample
    assert tail <= round(hi * SR)
    assert np.array_equal(out[:, tail:], audio[:, tail:])


def test_sections_file_with_two_grids_puts_each_sections_hits_on_its_own_grid():
    # bars 1-2 straight 16ths, bars 3-4 eighth-note triplets: played loosely, each on its own grid
    sixteenths = list(range(0, 32, 1))
    triplet_grid = Grid(bpm=120.0, offset_s=0.1, steps_per_beat=3.0)
    triplets = list(range(24, 48, 1))  # triplet slots of bars 3-4 (6 a beat... 3 a beat, 12 a bar)
    a1 = _played(sixteenths, seed=21, spread_ms=12.0)
    a2 = _played(triplets, seed=22, spread_ms=12.0, grid=triplet_grid)
    attacks = a1 + a2
    # the analysis (at 1/16) gives triplet hits their nearest 16th
    slots = sixteenths + [int(GRID.nearest_slot(triplet_grid.slot_time(s))) for s in triplets]
    audio, an = _session(slots, attacks)
    sections = parse_sections('[[section]]\nname = "verse"\nspan = "bar 1-2"\ngrid = "1/16"\n\n'
                              '[[section]]\nname = "shuffle"\nspan = "bar 3-4"\ngrid = "1/8T"\n', name="song.toml")
    rules = resolve(an, sections=sections)
    plan = plan_edits(an, n_samples=N_SAMPLES, audio=[audio], rules=rules)
    order = np.argsort(attacks, kind="stable")
    landed = {}
    for e in plan.edits:
        landed[e.hit_index] = e.attack_sample + e.shift_samples
    assert len(landed) == len(attacks)  # nothing merged: every hit its own piece
    for rank, i in enumerate(order):
        section_grid = GRID if i < len(a1) else triplet_grid
        slot = sixteenths[i] if i < len(a1) else triplets[i - len(a1)]
        assert abs(landed[rank] - section_grid.slot_time(slot) * SR) <= 0.5 + 1e-9, (i, slot)
    assert rules.section_of[len(a1)] == "shuffle" and rules.section_of[0] == "verse"
    # without the sections the triplets are pulled onto 16ths: the test can fail
    plain = plan_edits(an, n_samples=N_SAMPLES, audio=[audio])
    off = [abs(e.attack_sample + e.shift_samples - triplet_grid.slot_time(triplets[e.hit_index - len(a1)]) * SR)
           for e in plain.edits if e.hit_index >= len(a1)]
    assert max(off) > 0.02 * SR


def test_section_strength_and_exclude_apply_only_inside():
    attacks = _played(SLOTS, seed=4)
    audio, an = _session(SLOTS, attacks)
    rules = resolve(an, sections=[Section("bar 3-4", strength_pct=0.0)], strength_pct=100.0)
    plan = plan_edits(an, n_samples=N_SAMPLES, audio=[audio], rules=rules)
    for e in plan.edits:
        if GRID.slot_time(e.slot) >= 0.1 + 2 * BAR:
            assert e.shift_samples == 0
        else:
            assert abs(e.attack_sample + e.shift_samples - GRID.slot_time(e.slot) * SR) <= 0.5 + 1e-9


def test_sections_follow_a_tempo_map_and_its_bars():
    from dataclasses import replace

    from beatfix.grid import MapGrid
    from beatfix.tempomap import TempoMap

    # a ramp from 100 to 130 BPM over 8 bars, bar 1 at 0.2 s
    beats = [0.2]
    for k in range(40):
        beats.append(beats[-1] + 60.0 / (100.0 + 30.0 * k / 40))
    tm = TempoMap.from_beats(beats)
    grid = MapGrid(tm, 4.0, 50.0, (0.0, beats[-1]))
    triplets = MapGrid(tm, 3.0, 50.0, (0.0, beats[-1]))
    slots = list(range(0, 64, 2))  # bars 1-4 in eighths
    attacks = [int(round((grid.slot_time(s) + 0.006 * (-1) ** s) * SR)) for s in slots]
    tslots = list(range(48, 72))  # triplet eighths of bars 5-6
    attacks += [int(round((triplets.slot_time(s) - 0.005) * SR)) for s in tslots]
    slots += [int(grid.nearest_slot(triplets.slot_time(s))) for s in tslots]
    n = int((beats[-1] + 0.5) * SR)
    an = replace(analysis(attacks, slots, GRID, n), grid=grid)
    rules = resolve(an, sections=[Section("bar 5-6", grid="1/8T")], locks=["2|1-3|1"])
    bar2 = float(tm.time_at(4.0))
    assert rules.lock_spans_samples[0] == (round(bar2 * SR), round(float(tm.time_at(8.0)) * SR))
    for i, h in enumerate(an.hits):
        if i >= 32:
            assert rules.target_s[i] == pytest.approx(triplets.slot_time(tslots[i - 32]), abs=1e-9)
        else:
            assert rules.target_s[i] == pytest.approx(grid.slot_time(h.slot), abs=1e-9)
            assert rules.locked(i) == (bar2 - 1e-9 <= grid.slot_time(h.slot) < float(tm.time_at(8.0)) - 1e-9)
