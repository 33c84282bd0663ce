"""The true musical time of a synthetic performance: tempo curve, meters, feel and count-in.

A :class:`Timeline` is what a spec's musical-time fields resolve to once the
random choices (where the tempo changes, how the tempo breathes, how much
swing) are drawn. It builds the performance's true
:class:`beatfix.tempomap.TempoMap`, whose anchors sit every eighth note (so
every bar line of the supported meters is an anchor, and the map survives a
960-PPQ MIDI file exactly), and it says on which grid the score is written
(``steps_per_beat`` per quarter note, ``swing_pct``).

Tempo curves (``bpm`` is the tempo of bar 1, quarter notes per minute):

* ``steady``: one tempo;
* ``ramp``: tempo linear in position from the start of ``change_bar`` over
  ``ramp_bars`` bars to ``to_bpm``, then held;
* ``change``: ``bpm`` up to ``change_bar``, ``to_bpm`` from its first beat;
* ``breathing``: ``bpm`` times ``1 + depth_pct/100 * s(q)`` where ``s`` is a
  normalised sum of two slow sines (periods of bars), never beyond ``±1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..errors import ParameterError
from ..grid import check_bpm
from ..tempomap import Meter, TempoMap

TEMPO_CURVES = ("steady", "ramp", "breathing", "change")
METERS = ("2/4", "3/4", "4/4", "5/4", "6/8", "7/8", "12/8")
FEELS = ("straight", "swing", "shuffle", "triplet")
SWING_PCT = {"swing": (54.0, 62.0), "shuffle": (60.0, 66.0)}  # swung 16ths; swung ("shuffled") 8ths
STEPS_PER_BEAT = {"straight": 4, "swing": 4, "shuffle": 2, "triplet": 3}  # per quarter note
ANCHOR_Q = 0.5  # an anchor every eighth note: every bar line of METERS falls on one
CHANGE_PCT = (10.0, 20.0)  # a drawn sudden change or ramp moves the tempo this much, up or down


def parse_meter(text: str) -> tuple[int, int]:
    """``"7/8"`` -> ``(7, 8)``; only the meters the groove writer knows (:data:`METERS`)."""
    cleaned = str(text).strip()
    if cleaned not in METERS:
        raise ParameterError(f"meter {text!r}: use one of {', '.join(METERS)}")
    num, den = cleaned.split("/")
    return int(num), int(den)


def grid_resolution(steps_per_beat: int) -> str:
    """The ``--grid`` a user would give for a grid of ``steps_per_beat`` per quarter note."""
    return {2: "1/8", 3: "1/8T", 4: "1/16", 6: "1/16T", 8: "1/32"}[int(steps_per_beat)]


def check_feel(feel: str, meters: list[tuple[int, int]]) -> None:
    """Triplets and swung 8ths need quarter-note beats: a 7/8 bar has no whole number of 1/8T steps,
    and 6/8 or 12/8 is already in threes."""
    if feel not in FEELS:
        raise ParameterError(f"feel {feel!r}: use one of {', '.join(FEELS)}")
    if feel in ("shuffle", "triplet"):
        odd = [f"{n}/{d}" for n, d in meters if d != 4]
        if odd:
            raise ParameterError(f"feel {feel!r} needs quarter-note meters, not {', '.join(odd)}: "
                                 "use straight or swing")


@dataclass(frozen=True)
class Timeline:
    """The resolved musical time of one performance (see the module docstring)."""

    curve: str
    bpm: float
    to_bpm: float
    change_bar: int  # 1-based bar where a change lands or a ramp starts
    ramp_bars: int
    depth_pct: float
    waves: tuple[tuple[float, float, float], ...]  # breathing: (weight, period in quarters, phase)
    meters: tuple[tuple[int, int, int], ...]  # (1-based bar, numerator, denominator), bar 1 first
    steps_per_beat: int
    swing_pct: float
    count_in_bars: int
    feel: str

    def __post_init__(self) -> None:
        if self.curve not in TEMPO_CURVES:
            raise ParameterError(f"tempo curve {self.curve!r}: use one of {', '.join(TEMPO_CURVES)}")
        if not self.meters or self.meters[0][0] != 1:
            raise ParameterError("the first meter must start at bar 1")
        for _bar, num, den in self.meters:
            slots = Meter(0.0, num, den).bar_q * self.steps_per_beat
            if abs(slots - round(slots)) > 1e-9:
                raise ParameterError(f"a {num}/{den} bar has no whole number of grid steps at "
                                     f"{grid_resolution(self.steps_per_beat)}")

    # -- meters -------------------------------------------------------------------------------

    def meter_objects(self) -> tuple[Meter, ...]:
        """The meters with their positions in quarter notes (bar 1 at 0)."""
        out, q, bar = [], 0.0, 1
        current = None
        for b, num, den in self.meters:
            if current is not None:
                q += (b - bar) * current.bar_q
            current = Meter(q, num, den)
            out.append(current)
            bar = b
        return tuple(out)

    def bar_start_q(self, bar: int) -> float:
        """Quarter position of the start of 1-based ``bar`` (bars before 1 repeat the first meter)."""
        meters = self.meter_objects()
        if bar < 1:
            return (bar - 1) * meters[0].bar_q
        q, current_bar, current = 0.0, 1, meters[0]
        for (b, _, _), m in zip(self.meters[1:], meters[1:]):
            if b > bar:
                break
            q, current_bar, current = m.position_q, b, m
        return q + (bar - current_bar) * current.bar_q

    # -- tempo --------------------------------------------------------------------------------

    def bpm_at(self, position_q) -> np.ndarray:
        """The intended tempo (quarter notes per minute) at quarter positions."""
        q = np.asarray(position_q, dtype=float)
        if self.curve == "steady":
            return np.full(q.shape, self.bpm)
        q0 = self.bar_start_q(self.change_bar)
        if self.curve == "change":
            return np.where(q < q0 - 1e-9, self.bpm, self.to_bpm)
        if self.curve == "ramp":
            q1 = self.bar_start_q(self.change_bar + self.ramp_bars)
            frac = np.clip((q - q0) / max(q1 - q0, 1e-9), 0.0, 1.0)
            return self.bpm + (self.to_bpm - self.bpm) * frac
        total = sum(w for w, _, _ in self.waves)
        s = sum(w * np.sin(2.0 * math.pi * q / period + phase) for w, period, phase in self.waves) / total
        return self.bpm * (1.0 + self.depth_pct / 100.0 * s)

    def tempo_map(self, *, lead_in_s: float, end_s: float) -> TempoMap:
        """The true map: the count-in starts at ``lead_in_s``; anchors every eighth note up to past ``end_s``."""
        meters = self.meter_objects()
        q = -self.count_in_bars * meters[0].bar_q
        t = float(lead_in_s)
        qs, ts = [q], [t]
        while t <= end_s + 1.0 or len(qs) < 3:
            # The tempo at the eighth note's middle; a change at a bar line lands on an anchor.
            t += ANCHOR_Q * 60.0 / float(self.bpm_at(q + ANCHOR_Q / 2))
            q += ANCHOR_Q
            qs.append(q)
            ts.append(t)
        return TempoMap(np.array(qs), np.array(ts), meters)


def resolve_timeline(rng: np.random.Generator, *, style: str, bpm: float, duration_s: float, curve: str,
                     to_bpm: float | None, change_bar: int | None, ramp_bars: int | None, depth_pct: float,
                     meter: str, meter_change: str | None, meter_change_bar: int | None, feel: str | None,
                     swing_pct: float | None, count_in_bars: int) -> Timeline:
    """Draw what the spec leaves open, from ``rng`` (the spec's own musical-time generator)."""
    first = parse_meter(meter)
    est_bars = max(2, int(duration_s * bpm / 60.0 / Meter(0.0, *first).bar_q))  # about how many bars are played
    meters = [(1, *first)]
    if meter_change is not None:
        bar = meter_change_bar if meter_change_bar is not None else max(2, est_bars // 2 + 1)
        if bar < 2:
            raise ParameterError(f"meter change at bar {bar}: use bar 2 or later")
        meters.append((int(bar), *parse_meter(meter_change)))
    if feel is None:  # the style's own feel, as before musical time existed
        feel = "triplet" if style == "shuffle" else "straight"
        if style == "funk" and rng.random() < 0.3:
            feel = "swing"
    check_feel(feel, [(n, d) for _, n, d in meters])
    if swing_pct is None:
        swing_pct = round(float(rng.uniform(*SWING_PCT[feel])), 2) if feel in SWING_PCT else 50.0
    elif feel not in SWING_PCT and swing_pct != 50.0:
        raise ParameterError(f"swing {swing_pct:g} % with feel {feel!r}: swing is for the swing and shuffle feels")
    if curve not in TEMPO_CURVES:
        raise ParameterError(f"tempo curve {curve!r}: use one of {', '.join(TEMPO_CURVES)}")
    if change_bar is None:  # a sudden change mid-song; a ramp from early on
        lo, hi = (1, max(1, est_bars // 3)) if curve == "ramp" else (max(2, est_bars // 3), max(3, 2 * est_bars // 3))
        change_bar = int(rng.integers(lo, hi + 1))
    if change_bar < 1:
        raise ParameterError(f"tempo change at bar {change_bar}: use bar 1 or later")
    if to_bpm is None:
        pct = float(rng.uniform(*CHANGE_PCT)) * (1.0 if rng.random() < 0.5 else -1.0)
        to_bpm = round(bpm * (1.0 + pct / 100.0), 2)
    check_bpm(to_bpm)
    if ramp_bars is None:
        ramp_bars = max(1, est_bars - change_bar + 1)
    if ramp_bars < 1:
        raise ParameterError(f"ramp of {ramp_bars} bars: use 1 or more")
    if not (math.isfinite(depth_pct) and 0.0 <= depth_pct <= 20.0):
        raise ParameterError(f"breathing of ±{depth_pct:g} %: use 0 to 20")
    check_bpm(bpm * (1.0 + depth_pct / 100.0))
    check_bpm(bpm * (1.0 - depth_pct / 100.0))
    bar_q = Meter(0.0, *first).bar_q
    # Two slow waves: a phrase-long swell and a shorter push and pull, a few bars long.
    waves = ((1.0, bar_q * float(rng.uniform(8.0, 16.0)), float(rng.uniform(0.0, 2.0 * math.pi))),
             (0.5, bar_q * float(rng.uniform(2.5, 5.0)), float(rng.uniform(0.0, 2.0 * math.pi))))
    if count_in_bars < 0 or count_in_bars > 2:
        raise ParameterError(f"count-in of {count_in_bars} bars: use 0 to 2")
    return Timeline(curve=curve, bpm=float(bpm), to_bpm=float(to_bpm), change_bar=int(change_bar),
                    ramp_bars=int(ramp_bars), depth_pct=float(depth_pct), waves=waves, meters=tuple(meters),
                    steps_per_beat=STEPS_PER_BEAT[feel], swing_pct=float(swing_pct), count_in_bars=int(count_in_bars),
                    feel=feel)


def truth_tempo_map(truth: Mapping) -> TempoMap:
    """The true tempo map of a ``truth.json`` document; a constant 4/4 map at ``bpm`` with bar 1 at
    ``grid_offset_s`` for a truth without one (a fixed-tempo session)."""
    doc = truth.get("tempo_map")
    if doc is None:
        # An anchor on every quarter note through the session, so a MIDI file of it keeps every beat exact.
        bpm, offset_s = float(truth["bpm"]), float(truth["grid_offset_s"])
        q = np.arange(0.0, math.ceil(max(float(truth["duration_s"]) - offset_s, 0.0) * bpm / 60.0) + 3.0)
        return TempoMap(q, offset_s + q * 60.0 / bpm)
    return TempoMap(np.asarray(doc["positions_q"], dtype=float), np.asarray(doc["times_s"], dtype=float),
                    tuple(Meter(float(q), int(n), int(d)) for q, n, d in doc["meters"]))
