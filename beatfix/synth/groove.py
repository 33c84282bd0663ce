"""Drum performances: a written groove, then a human timing model on top of it.

The score is written on a :class:`beatfix.grid.Grid`: 1/16 steps
(``steps_per_beat = 4``) for rock, funk and half-time, 1/8 triplets
(``steps_per_beat = 3``) for the shuffle. Slot 0 is the first downbeat, at a
non-zero lead-in, so the grid's phase is never 0.

With a :class:`~beatfix.synth.timeline.Timeline` (tempo curve, meters, feel,
count-in) the score is written on a :class:`beatfix.grid.MapGrid` of the true
tempo map instead: the styles' own 4/4 grooves when the meter is 4/4 and the
feel is the style's grid, else :mod:`beatfix.synth.meter_groove`'s grooves for
any meter and subdivision; a count-in sits on negative slots. The timing model
below plays on top of either, its per-beat terms counted in quarter notes.

Timing model (``spread_ms`` is roughly two standard deviations of the total
timing error: 3 ms is tight, 30 ms sloppy):

* a deviation shared by all limbs on each beat (the drummer's sense of time),
* a slow drift, an AR(1) process over beats (rushing and dragging),
* a lean per limb and beat, and a small scatter per stroke, each with a
  standard deviation of at most ``limb_ms``: even a sloppy drummer hits the
  drums of one beat only a few ms apart (bigger gaps are flams),
* per-drum tendencies drawn per session (snare laid back, hats pushed), at
  most ``2 * limb_ms``,
* deliberate flams: a soft grace stroke 15-35 ms before the main stroke.

A note is a ``flam`` when another note of its slot is at least
:data:`FLAM_MIN_MS` away, whether deliberate or not. Performed times are
rounded to whole samples so that truth onsets are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Collection

import numpy as np

from ..errors import ParameterError
from ..grid import Grid, MapGrid
from .kits import TOMS

if TYPE_CHECKING:
    from .timeline import Timeline

STYLES = ("rock", "funk", "halftime", "shuffle")
BEATS_PER_BAR = 4
FLAM_MIN_MS = 10.0
FLAM_GAP_MS = (15.0, 35.0)
_LIMB = {"kick": "right_foot", "snare": "left_hand", "hat": "right_hand", "hat_open": "right_hand",
         "ride": "right_hand", "crash": "right_hand"}


@dataclass(frozen=True)
class Note:
    drum: str
    velocity: float  # 0..1
    slot: int  # grid step after grid.offset_s
    grid_time_s: float
    performed_time_s: float  # a whole number of samples
    flam: bool = False
    deliberate_flam: bool = False
    grace: bool = False  # the soft first stroke of a deliberate flam
    ghost: bool = False


@dataclass(frozen=True)
class Performance:
    notes: tuple[Note, ...]  # sorted by performed time
    grid: Grid | MapGrid  # a MapGrid of the true tempo map when the performance has musical time
    style: str
    n_bars: int
    spread_ms: float
    sample_rate: int

    @property
    def drums(self) -> tuple[str, ...]:
        return tuple(sorted({n.drum for n in self.notes}))

    def on_grid(self, *, keep_deliberate_flams: bool = True) -> Performance:
        """The same strokes, each at its grid time (rounded to a sample).

        Grace strokes of deliberate flams keep their distance to the main
        stroke unless ``keep_deliberate_flams`` is false: a perfect editor keeps them.
        """
        notes = on_grid_notes(self, keep_deliberate_flams=keep_deliberate_flams)
        return replace(self, notes=tuple(sorted(notes, key=_order)), spread_ms=0.0)


def on_grid_notes(performance: Performance, *, keep_deliberate_flams: bool = True) -> list[Note]:
    """:meth:`Performance.on_grid`'s notes in the order of ``performance.notes``, so per-note data lines up."""
    main_s = {(n.slot, n.drum): n.performed_time_s for n in performance.notes if n.deliberate_flam and not n.grace}
    notes = []
    for n in performance.notes:
        t = n.grid_time_s
        if keep_deliberate_flams and n.grace:
            t += n.performed_time_s - main_s[(n.slot, n.drum)]
        notes.append(replace(n, performed_time_s=_to_sample(t, performance.sample_rate)))
    return _mark_flams(notes)


@dataclass
class _Event:
    slot: int
    drum: str
    velocity: float
    ghost: bool = False
    grace: bool = False  # the soft stroke of a deliberate flam
    flam_gap_ms: float = 0.0


def _to_sample(time_s: float, sample_rate: int) -> float:
    return round(time_s * sample_rate) / sample_rate


def _order(note: Note) -> tuple[float, str]:
    return (note.performed_time_s, note.drum)


def perform(rng: np.random.Generator, *, style: str, bpm: float, duration_s: float, spread_ms: float,
            sample_rate: int, drums: Collection[str], lead_in_s: float | None = None,
            flam_rate: float = 0.05, tail_s: float = 0.6, limb_ms: float = 1.5,
            timeline: "Timeline | None" = None) -> Performance:
    """Write and play a groove of ``style`` lasting up to ``duration_s - tail_s``.

    ``drums`` limits the kit pieces used (the kit's drums, minus toms not set up).
    With a ``timeline`` (tempo curve, meters, feel, count-in) the score is
    written on a :class:`~beatfix.grid.MapGrid` of its tempo map and
    ``lead_in_s`` is where the count-in (or bar 1) starts; without one, the
    fixed-tempo 4/4 performance exactly as it always was.
    """
    if style not in STYLES:
        raise ParameterError(f"unknown style {style!r}: use one of {', '.join(STYLES)}")
    if not 0.0 <= spread_ms <= 100.0:
        raise ParameterError(f"spread {spread_ms:g} ms is out of range: use 0 to 100")
    if "kick" not in drums or "snare" not in drums:
        raise ParameterError("a groove needs at least a kick and a snare")
    lead_in_s = float(rng.uniform(0.2, 1.0)) if lead_in_s is None else float(lead_in_s)
    if timeline is not None:
        return _perform_timed(rng, timeline, style=style, duration_s=duration_s, spread_ms=spread_ms,
                              sample_rate=sample_rate, drums=drums, lead_in_s=lead_in_s, flam_rate=flam_rate,
                              tail_s=tail_s, limb_ms=limb_ms)
    steps_per_beat = 3 if style == "shuffle" else 4
    swing_pct = float(rng.uniform(54.0, 62.0)) if style == "funk" and rng.random() < 0.3 else 50.0
    grid = Grid(bpm=float(bpm), offset_s=lead_in_s, steps_per_beat=steps_per_beat, swing_pct=swing_pct)
    bar_s = BEATS_PER_BAR * 60.0 / bpm
    end_s = duration_s - tail_s
    if end_s <= lead_in_s:
        raise ParameterError(f"duration {duration_s:g} s is too short for a {lead_in_s:.2f} s lead-in")
    n_bars = max(1, math.ceil((end_s - lead_in_s) / bar_s))
    events = _Score(rng, style, bpm, set(drums), flam_rate).write(n_bars)
    slot_times = grid.slot_time(np.array([e.slot for e in events]))
    keep = slot_times <= end_s
    events = [e for e, k in zip(events, keep) if k]
    notes = _humanize(rng, events, grid, spread_ms, sample_rate, limb_ms)
    return Performance(notes=tuple(notes), grid=grid, style=style, n_bars=n_bars,
                       spread_ms=float(spread_ms), sample_rate=int(sample_rate))


def _perform_timed(rng: np.random.Generator, timeline: "Timeline", *, style: str, duration_s: float,
                   spread_ms: float, sample_rate: int, drums: Collection[str], lead_in_s: float, flam_rate: float,
                   tail_s: float, limb_ms: float) -> Performance:
    from .meter_groove import MeterScore, count_in_events

    end_s = duration_s - tail_s
    tempo_map = timeline.tempo_map(lead_in_s=lead_in_s, end_s=duration_s)
    spb = timeline.steps_per_beat
    grid = MapGrid(tempo_map, steps_per_beat=spb, swing_pct=timeline.swing_pct, span_s=(0.0, duration_s))
    if end_s <= grid.offset_s:
        raise ParameterError(f"duration {duration_s:g} s is too short for a {lead_in_s:.2f} s lead-in "
                             f"and {timeline.count_in_bars} bar(s) of count-in")
    starts = tempo_map.bar_starts_q(0.0, float(tempo_map.position_at(end_s)))
    starts = starts[(starts >= -1e-9) & (np.asarray(tempo_map.time_at(starts)) < end_s)]
    n_bars = max(1, int(starts.size))
    plain = all((n, d) == (4, 4) for _, n, d in timeline.meters) and spb == (3 if style == "shuffle" else 4)
    if plain:  # the styles' own 4/4 grooves, as on a fixed tempo
        events = _Score(rng, style, timeline.bpm, set(drums), flam_rate).write(n_bars)
    else:
        bars, base = [], 0
        for q in starts[:n_bars]:
            m = tempo_map.meter_at(float(q))
            bars.append((m.numerator, m.denominator, base))
            base += int(round(m.bar_q * spb))
        events = MeterScore(rng, style, timeline.bpm, set(drums), flam_rate, spb).write(bars)
    events = count_in_events(rng, tempo_map.meters[0], spb, timeline.count_in_bars, set(drums)) + events
    slot_times = np.asarray(grid.slot_time(np.array([e.slot for e in events])))
    events = [e for e, t in zip(events, slot_times) if t <= end_s]
    notes = _humanize(rng, events, grid, spread_ms, sample_rate, limb_ms)
    return Performance(notes=tuple(notes), grid=grid, style=style, n_bars=n_bars,
                       spread_ms=float(spread_ms), sample_rate=int(sample_rate))


def walk_down_the_kit(slots: list[int], voices: list[str], rng: np.random.Generator) -> list[_Event]:
    """A fill's strokes on ``slots``, split into runs, snare first then toms high to low, in a crescendo."""
    out = []
    runs = np.array_split(np.arange(len(slots)), min(len(voices), len(slots)))
    for voice, run in zip(voices, runs):
        for i in run:
            crescendo = 0.6 + 0.35 * i / max(1, len(slots) - 1)
            out.append(_Event(slots[i], voice, float(np.clip(crescendo + rng.normal(0, 0.05), 0.4, 1.0))))
    return out



class _Score:
    """Writes bars of one style; the choices that make a song are drawn once."""

    def __init__(self, rng: np.random.Generator, style: str, bpm: float, drums: set[str], flam_rate: float):
        self.rng, self.style, self.drums, self.flam_rate = rng, style, drums, flam_rate
        self.spb = 3 if style == "shuffle" else 4
        self.slots_per_bar = BEATS_PER_BAR * self.spb
        self.phrase_bars = int(rng.choice([4, 8]))
        self.toms = [t for t in TOMS if t in drums]
        keeper = "hat" if "hat" in drums else ("ride" if "ride" in drums else None)
        self.keepers = [keeper, "ride" if "ride" in drums and rng.random() < 0.35 else keeper]
        if self.spb == 3:
            self.keeper_step = 1 if bpm < 80 and rng.random() < 0.3 else None  # None: the shuffle pattern
        elif style == "funk":
            self.keeper_step = 2 if bpm > 130 else 1
        else:
            self.keeper_step = int(rng.choice([1, 2], p=[0.25, 0.75])) if bpm < 110 else (4 if bpm > 170 else 2)
        self.ghost_rate = {"rock": 0.05, "funk": 0.3, "halftime": 0.15, "shuffle": 0.15}[style] * rng.uniform(0.5, 1.5)
        self.open_hat_rate = rng.uniform(0.0, 0.35) if "hat_open" in drums else 0.0
        self.fill_rate = rng.uniform(0.4, 0.9)
        self.kick_patterns = [self._kick_pattern(), self._kick_pattern()]

    def _kick_pattern(self) -> tuple[int, ...]:
        options = {
            "rock": [(0, 8), (0, 8, 10), (0, 6, 8), (0, 7, 8, 10), (0, 3, 8, 11), (0, 2, 8, 10)],
            "funk": [(0, 3, 6, 10), (0, 2, 7, 10, 13), (0, 6, 9, 11), (0, 3, 7, 8, 14), (0, 10, 13)],
            "halftime": [(0, 3, 10, 11), (0, 6, 7, 14), (0, 11), (0, 2, 11, 14)],
            "shuffle": [(0, 6), (0, 5, 6), (0, 6, 11), (0, 2, 6, 8)],
        }[self.style]
        return options[int(self.rng.integers(len(options)))]

    def _backbeats(self) -> tuple[int, ...]:
        if self.style == "halftime":
            return (2 * self.spb,)
        return (self.spb, 3 * self.spb)

    def write(self, n_bars: int) -> list[_Event]:
        events: list[_Event] = []
        for bar in range(n_bars):
            phrase_start = bar % self.phrase_bars == 0
            phrase_end = (bar + 1) % self.phrase_bars == 0
            section = (bar // self.phrase_bars) % 2
            bar_events = self._groove_bar(section, bar)
            # Fills close phrases; short one-beat fills now and then close a pair of bars.
            if phrase_end and self.rng.random() < self.fill_rate:
                bar_events = self._add_fill(bar_events)
            elif bar % 2 == 1 and self.rng.random() < 0.3 * self.fill_rate:
                bar_events = self._add_fill(bar_events, beats=1)
            if phrase_start and "crash" in self.drums:
                bar_events = [e for e in bar_events if not (e.slot == 0 and e.drum in ("hat", "ride", "hat_open"))]
                bar_events.append(_Event(0, "crash", self._vel(0.85, 1.0)))
            base = bar * self.slots_per_bar
            for e in bar_events:
                e.slot += base
            events.extend(bar_events)
        return self._add_flams(events)

    def _vel(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def _groove_bar(self, section: int, bar: int) -> list[_Event]:
        spb, out = self.spb, []
        keeper = self.keepers[section]
        if keeper is not None:
            if self.keeper_step is None:  # shuffle: first and last triplet of each beat
                slots = [b * spb + k for b in range(BEATS_PER_BAR) for k in (0, 2)]
            else:
                slots = list(range(0, self.slots_per_bar, self.keeper_step))
            # The open hat sits on the last offbeat of the bar ("and" of 4, or its last triplet).
            open_slot = self.slots_per_bar - (2 if spb == 4 else 1)
            for s in slots:
                pos = s % spb
                vel = self._vel(0.7, 0.85) if pos == 0 else (self._vel(0.5, 0.68) if pos == 2 else self._vel(0.35, 0.5))
                drum = keeper
                if keeper == "hat" and s == open_slot and self.rng.random() < self.open_hat_rate:
                    drum, vel = "hat_open", self._vel(0.6, 0.8)
                out.append(_Event(s, drum, vel))
        pattern = self.kick_patterns[1 if bar % 4 == 3 else 0]
        out += [_Event(s, "kick", self._vel(0.75, 0.95) if s % spb == 0 else self._vel(0.6, 0.85)) for s in pattern]
        backbeats = self._backbeats()
        out += [_Event(s, "snare", self._vel(0.8, 1.0)) for s in backbeats]
        taken = set(backbeats)
        for s in range(self.slots_per_bar):
            # Ghosts sit between the strokes, never on a backbeat or right before it.
            if s in taken or s + 1 in taken or s % spb == 0:
                continue
            if self.rng.random() < self.ghost_rate:
                out.append(_Event(s, "snare", self._vel(0.1, 0.3), ghost=True))
        return out

    def _add_fill(self, events: list[_Event], beats: int | None = None) -> list[_Event]:
        spb = self.spb
        if beats is None:
            beats = int(self.rng.choice([1, 2, 4], p=[0.45, 0.4, 0.15]))
        start = (BEATS_PER_BAR - beats) * spb
        kept = [e for e in events if e.slot < start or (e.drum == "kick" and e.slot % spb == 0)]
        step = 1 if spb == 3 or self.rng.random() < 0.6 else 2
        slots = list(range(start, self.slots_per_bar, step))
        return kept + walk_down_the_kit(slots, ["snare"] + self.toms, self.rng)


    def _add_flams(self, events: list[_Event]) -> list[_Event]:
        if self.flam_rate <= 0:
            return events
        out = list(events)
        for e in events:
            if e.ghost or e.drum not in ("snare", *TOMS) or e.velocity < 0.6:
                continue
            if self.rng.random() >= self.flam_rate:
                continue
            gap_ms = self._vel(*FLAM_GAP_MS)
            e.flam_gap_ms = gap_ms
            out.append(_Event(e.slot, e.drum, self._vel(0.15, 0.35), grace=True, flam_gap_ms=gap_ms))
        return out


def _limb(drum: str, slot: int) -> str:
    if drum in _LIMB:
        return _LIMB[drum]
    return "right_hand" if slot % 2 == 0 else "left_hand"  # toms: hand to hand


def _humanize(rng: np.random.Generator, events: list[_Event], grid: Grid | MapGrid, spread_ms: float,
              sample_rate: int, limb_ms: float = 1.5) -> list[Note]:
    sigma_s = spread_ms / 2000.0
    # Limb terms are small in absolute terms; the shared terms carry the rest of the variance.
    limb_sigma = min(limb_ms / 1000.0, sigma_s * math.sqrt(0.2))
    shared_sigma = math.sqrt(max(0.0, sigma_s * sigma_s - 2.0 * limb_sigma * limb_sigma))
    spb = int(grid.steps_per_beat)
    # Beats are counted from the first written slot: a count-in's slots are negative.
    first = min(0, min(e.slot for e in events)) if events else 0
    n_beats = (max(e.slot for e in events) - first) // spb + 2 if events else 1
    per_beat = rng.normal(0.0, shared_sigma * math.sqrt(0.58), n_beats)
    corr = math.exp(-1.0 / rng.uniform(8.0, 32.0))  # drift correlation over beats
    drift = np.empty(n_beats)
    drift[0] = rng.normal()
    for b in range(1, n_beats):
        drift[b] = corr * drift[b - 1] + math.sqrt(1 - corr * corr) * rng.normal()
    drift *= shared_sigma * math.sqrt(0.42)
    cap_s = 2.0 * limb_ms / 1000.0
    tendency = {"snare": rng.uniform(0.1, 0.5), "hat": -rng.uniform(0.0, 0.4), "kick": rng.uniform(-0.2, 0.2)}
    tendency = {k: float(np.clip(v * sigma_s, -cap_s, cap_s)) for k, v in tendency.items()}
    tendency["hat_open"] = tendency["ride"] = tendency["hat"]
    # Each limb has its own lean on each beat (a hand rushing while the foot holds),
    # plus the stroke-to-stroke scatter of that limb.
    limbs = ("right_hand", "left_hand", "right_foot")
    per_limb_beat = {limb: rng.normal(0.0, limb_sigma, n_beats) for limb in limbs}
    stroke_sigma = limb_sigma
    grid_times = grid.slot_time(np.array([e.slot for e in events]))
    # A limb can't move a stroke past its neighbours: keep timing errors inside half a step (of the local tempo).
    limits_s = 0.45 * np.asarray(grid.step_at(grid_times))
    mains: dict[tuple[int, str], float] = {}
    notes = []
    for e, t_grid, limit_s in zip(events, grid_times, limits_s):
        if e.grace:
            continue
        beat = (e.slot - first) / spb
        b0 = int(beat)
        drift_s = drift[b0] + (drift[min(b0 + 1, n_beats - 1)] - drift[b0]) * (beat - b0)
        limb = per_limb_beat[_limb(e.drum, e.slot)][b0]
        dev = per_beat[b0] + drift_s + limb + rng.normal(0.0, stroke_sigma) + tendency.get(e.drum, 0.0)
        t = float(t_grid) + float(np.clip(dev, -limit_s, limit_s))
        mains[(e.slot, e.drum)] = t
        notes.append(_note(e, float(t_grid), t, sample_rate, rng))
    for e, t_grid in zip(events, grid_times):
        if e.grace:
            t = mains[(e.slot, e.drum)] - e.flam_gap_ms / 1000.0
            notes.append(_note(e, float(t_grid), t, sample_rate, rng))
    notes = _mark_flams(notes)
    notes.sort(key=_order)
    return notes


def _note(e: _Event, grid_time_s: float, time_s: float, sample_rate: int, rng: np.random.Generator) -> Note:
    velocity = float(np.clip(e.velocity + rng.normal(0.0, 0.04), 0.05, 1.0))
    return Note(drum=e.drum, velocity=round(velocity, 4), slot=int(e.slot), grid_time_s=grid_time_s,
                performed_time_s=_to_sample(max(time_s, 0.0), sample_rate),
                deliberate_flam=e.flam_gap_ms > 0.0, grace=e.grace, ghost=e.ghost)


def _mark_flams(notes: list[Note]) -> list[Note]:
    by_slot: dict[int, list[int]] = {}
    for i, n in enumerate(notes):
        by_slot.setdefault(n.slot, []).append(i)
    out = list(notes)
    for idx in by_slot.values():
        times = np.array([notes[i].performed_time_s for i in idx])
        for i, t in zip(idx, times):
            others = np.abs(np.delete(times, idx.index(i)) - t)
            out[i] = replace(notes[i], flam=bool(others.size and others.max() * 1000.0 >= FLAM_MIN_MS - 1e-9))
    return out
