"""Musical time: where every quarter note falls, and the meter of every bar.

A :class:`TempoMap` is a monotone map between positions in quarter notes
(``q``, bar 1 starts at ``q = 0``) and times in seconds, piecewise linear
between anchors (tempo constant between two anchors, as a Standard MIDI File
holds it: a DAW exports a ramp as many small steps). Before the first anchor
and after the last one the map continues at the edge tempo. Meters change at
bar starts; a meter's beat is its denominator's note, except in compound
meters (6/8, 9/8, 12/8), whose beat is the dotted quarter.

Pure: no file access here (see :mod:`beatfix.midi_io`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ParameterError

SUPPORTED_DENOMINATORS = (2, 4, 8, 16)
RAMP_TOLERANCE = 0.004  # a segment's tempi within 0.4 % of a line (constant or ramp) are one segment


@dataclass(frozen=True)
class Meter:
    """A time signature that starts at ``position_q`` (a bar start)."""

    position_q: float
    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if not (1 <= self.numerator <= 32) or self.denominator not in SUPPORTED_DENOMINATORS:
            raise ParameterError(f"meter {self.numerator}/{self.denominator}: use n/2, n/4, n/8 or n/16 with n 1-32")

    @property
    def bar_q(self) -> float:
        """Length of one bar in quarter notes (7/8: 3.5)."""
        return self.numerator * 4.0 / self.denominator

    @property
    def beat_q(self) -> float:
        """The counted beat in quarter notes: dotted quarter in compound meters (6/8, 9/8, 12/8)."""
        if self.denominator == 8 and self.numerator % 3 == 0 and self.numerator > 3:
            return 1.5
        return 4.0 / self.denominator

    @property
    def label(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True, eq=False)
class TempoMap:
    """Anchors ``(positions_q[i], times_s[i])``, both strictly increasing, and the meters."""

    positions_q: np.ndarray
    times_s: np.ndarray
    meters: tuple[Meter, ...] = (Meter(0.0, 4, 4),)

    def __post_init__(self) -> None:
        q = np.asarray(self.positions_q, dtype=float)
        t = np.asarray(self.times_s, dtype=float)
        if q.ndim != 1 or q.shape != t.shape or q.size < 2:
            raise ParameterError("a tempo map needs at least two anchors (positions and times of equal length)")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(t))):
            raise ParameterError("tempo map: positions and times must be finite")
        if np.any(np.diff(q) <= 0) or np.any(np.diff(t) <= 0):
            raise ParameterError("tempo map: beat times must strictly increase")
        bpm = 60.0 * np.diff(q) / np.diff(t)
        if np.any(bpm < 10.0) or np.any(bpm > 1000.0):
            worst = float(bpm[np.argmax(np.abs(np.log(bpm / 120.0)))])
            raise ParameterError(f"tempo map: a tempo of {worst:.1f} BPM is out of range (10-1000)")
        if not self.meters or self.meters[0].position_q != 0.0:
            raise ParameterError("tempo map: the first meter must start at bar 1")
        if any(b.position_q <= a.position_q for a, b in zip(self.meters, self.meters[1:])):
            raise ParameterError("tempo map: meter changes must be in order")
        object.__setattr__(self, "positions_q", q)
        object.__setattr__(self, "times_s", t)

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def constant(cls, bpm: float, *, offset_s: float = 0.0, meter: tuple[int, int] = (4, 4)) -> "TempoMap":
        """One tempo (quarter notes per minute) with bar 1 at ``offset_s``."""
        return cls(np.array([0.0, 1.0]), np.array([offset_s, offset_s + 60.0 / bpm]), (Meter(0.0, *meter),))

    @classmethod
    def from_beats(cls, beat_times_s: Sequence[float] | np.ndarray, *, meters: Sequence[tuple[int, int, int]] = ((0, 4, 4),),
                   first_beat: int = 0) -> "TempoMap":
        """A map through given beat times; ``meters`` are ``(beat_index, numerator, denominator)``
        with beats counted in each meter's own beat unit (a 6/8 bar has 2 beats, a 7/8 bar 7), from
        the first beat of bar 1. ``first_beat`` is the index of bar 1's first beat in the times
        (earlier times are a count-in, at the first meter's beat)."""
        times = np.asarray(beat_times_s, dtype=float)
        changes = sorted((int(b), int(n), int(d)) for b, n, d in meters)
        if not changes or changes[0][0] != 0:
            raise ParameterError("the first meter must start on the first beat of bar 1")
        first = Meter(0.0, changes[0][1], changes[0][2])
        meter_list = [first]
        positions = np.empty(times.size)
        q, current, ci = 0.0, first, 1
        for i in range(times.size):
            b = i - first_beat
            if b < 0:
                positions[i] = b * first.beat_q
                continue
            while ci < len(changes) and changes[ci][0] <= b:
                current = Meter(q, changes[ci][1], changes[ci][2])
                meter_list.append(current)
                ci += 1
            positions[i] = q
            q += current.beat_q
        return cls(positions, times, tuple(meter_list))

    # -- the map ------------------------------------------------------------------------------

    def _edge_rates(self) -> tuple[float, float]:
        q, t = self.positions_q, self.times_s
        return (t[1] - t[0]) / (q[1] - q[0]), (t[-1] - t[-2]) / (q[-1] - q[-2])

    def time_at(self, position_q):
        """Time in seconds of quarter-note positions (scalar or array)."""
        x = np.asarray(position_q, dtype=float)
        q, t = self.positions_q, self.times_s
        first, last = self._edge_rates()
        out = np.interp(x, q, t)
        out = np.where(x < q[0], t[0] + (x - q[0]) * first, out)
        out = np.where(x > q[-1], t[-1] + (x - q[-1]) * last, out)
        return float(out) if out.ndim == 0 else out

    def position_at(self, time_s):
        """Quarter-note position of times in seconds (scalar or array)."""
        x = np.asarray(time_s, dtype=float)
        q, t = self.positions_q, self.times_s
        first, last = self._edge_rates()
        out = np.interp(x, t, q)
        out = np.where(x < t[0], q[0] + (x - t[0]) / first, out)
        out = np.where(x > t[-1], q[-1] + (x - t[-1]) / last, out)
        return float(out) if out.ndim == 0 else out

    def bpm_at(self, time_s):
        """Quarter notes per minute at given times (the tempo of the segment holding each)."""
        x = np.asarray(time_s, dtype=float)
        seg_bpm = 60.0 * np.diff(self.positions_q) / np.diff(self.times_s)
        i = np.clip(np.searchsorted(self.times_s, x, side="right") - 1, 0, seg_bpm.size - 1)
        out = seg_bpm[i]
        return float(out) if out.ndim == 0 else out

    # -- bars ---------------------------------------------------------------------------------

    def meter_at(self, position_q: float) -> Meter:
        current = self.meters[0]
        for m in self.meters:
            if m.position_q <= position_q + 1e-9:
                current = m
        return current

    def _segment_bars(self) -> list[tuple[Meter, float, int]]:
        """``(meter, end_q, first bar number)`` of each meter segment."""
        out, bar = [], 1
        for i, m in enumerate(self.meters):
            end = self.meters[i + 1].position_q if i + 1 < len(self.meters) else math.inf
            out.append((m, end, bar))
            if math.isfinite(end):
                bar += math.ceil((end - m.position_q) / m.bar_q - 1e-9)
        return out

    def bar_starts_q(self, start_q: float, end_q: float) -> np.ndarray:
        """Positions of every bar start from the bar holding ``start_q`` up to ``end_q``
        (bars before bar 1, a count-in, repeat the first meter)."""
        starts: list[float] = []
        first = self.meters[0]
        if start_q < 0.0:
            k = math.floor(start_q / first.bar_q)
            starts.extend(float(x) for x in np.arange(k, 0) * first.bar_q)
        for m, end, _ in self._segment_bars():
            q = m.position_q
            while q < end - 1e-9 and q <= end_q + 1e-9:
                if q + m.bar_q > start_q:
                    starts.append(q)
                q += m.bar_q
        return np.array(starts, dtype=float)

    def bar_beat(self, position_q: float) -> tuple[int, int, float]:
        """``(bar, beat, fraction)``: 1-based bar and beat of a position, and how far into that beat.

        Bars before bar 1 (a count-in) are numbered 0, -1, ...
        """
        first = self.meters[0]
        if position_q < 0.0:
            k = math.floor(position_q / first.bar_q + 1e-9)
            meter, bar, bar_start = first, k + 1, k * first.bar_q
        else:
            for meter, end, first_bar in self._segment_bars():
                if position_q < end - 1e-9:
                    k = math.floor((position_q - meter.position_q) / meter.bar_q + 1e-9)
                    bar, bar_start = first_bar + k, meter.position_q + k * meter.bar_q
                    break
        into = (position_q - bar_start) / meter.beat_q
        beat = int(math.floor(into + 1e-9))
        return int(bar), beat + 1, float(max(0.0, into - beat))

    def label(self, position_q: float) -> str:
        """``bar|beat`` with the fraction of the beat in ticks of 960 (``9|3|480``)."""
        bar, beat, frac = self.bar_beat(position_q)
        ticks = int(round(frac * 960))
        if ticks >= 960:
            ticks = 959
        return f"{bar}|{beat}|{ticks:03d}"

    # -- summary ------------------------------------------------------------------------------

    def segments(self, *, start_s: float | None = None, end_s: float | None = None) -> list[dict]:
        """Constant-tempo and ramp segments, as an engineer would enter them on a conductor track."""
        q, t = self.positions_q, self.times_s
        bpm = 60.0 * np.diff(q) / np.diff(t)
        lo = 0 if start_s is None else max(0, int(np.searchsorted(t, start_s, side="right")) - 1)
        hi = bpm.size if end_s is None else min(bpm.size, int(np.searchsorted(t, end_s, side="left")) + 1)
        out: list[dict] = []
        i = lo
        while i < hi:
            j = i + 1
            while j < hi and _fits_line(bpm[i : j + 1], q[i : j + 1]):
                j += 1
            start_bpm, end_bpm = float(bpm[i]), float(bpm[j - 1])
            constant = abs(end_bpm / start_bpm - 1.0) <= RAMP_TOLERANCE and _fits_line(bpm[i:j], q[i:j], flat=True)
            m = self.meter_at(float(q[i]))
            out.append({
                "start_s": round(float(t[i]), 6), "end_s": round(float(t[j]), 6),
                "start": self.label(float(q[i])), "end": self.label(float(q[j])),
                "kind": "constant" if constant else "ramp",
                "bpm_start": round(start_bpm if not constant else float(np.median(bpm[i:j])), 3),
                "bpm_end": round(end_bpm if not constant else float(np.median(bpm[i:j])), 3),
                "meter": m.label,
            })
            i = j
        # the map goes on at its edge tempo: the first and last segments reach the span asked for
        if out and start_s is not None and start_s < out[0]["start_s"]:
            out[0]["start_s"], out[0]["start"] = round(start_s, 6), self.label(float(self.position_at(start_s)))
        if out and end_s is not None and end_s > out[-1]["end_s"]:
            out[-1]["end_s"], out[-1]["end"] = round(end_s, 6), self.label(float(self.position_at(end_s)))
        return _merge_meter_changes(out, self)


def _fits_line(bpm: np.ndarray, q: np.ndarray, *, flat: bool = False) -> bool:
    """Whether these segment tempi lie within RAMP_TOLERANCE of a line in position (or of a constant)."""
    if bpm.size <= 2 and not flat:
        return True  # any two tempi lie on a line
    x = q[: bpm.size]
    if flat or np.ptp(x) == 0:
        ref = np.full(bpm.size, np.median(bpm))
    else:
        a, b = np.polyfit(x, bpm, 1)
        ref = a * x + b
    return bool(np.all(np.abs(bpm / ref - 1.0) <= RAMP_TOLERANCE))


def _merge_meter_changes(segments: list[dict], tempo_map: TempoMap) -> list[dict]:
    """Split segments where the meter changes, so each segment has one meter."""
    out = []
    for seg in segments:
        q0 = float(tempo_map.position_at(seg["start_s"]))
        q1 = float(tempo_map.position_at(seg["end_s"]))
        cuts = [m for m in tempo_map.meters[1:] if q0 + 1e-6 < m.position_q < q1 - 1e-6]
        if not cuts:
            out.append(seg)
            continue
        edges = [q0, *[m.position_q for m in cuts], q1]
        for a, b in zip(edges, edges[1:]):
            part = dict(seg)
            part["start_s"] = round(float(tempo_map.time_at(a)), 6)
            part["end_s"] = round(float(tempo_map.time_at(b)), 6)
            part["start"], part["end"] = tempo_map.label(a), tempo_map.label(b)
            part["meter"] = tempo_map.meter_at(a).label
            out.append(part)
    return out
