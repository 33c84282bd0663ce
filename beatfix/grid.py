"""The tempo grid: tempo, a fitted phase, a resolution and optional swing.

Slot ``k`` is the k-th grid step after ``offset_s``. Swing moves every odd
step later: at 50 % the grid is straight, at 66.7 % it is a triplet shuffle.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .errors import ParameterError

if TYPE_CHECKING:
    from .tempomap import TempoMap

MIN_BPM = 20.0
MAX_BPM = 400.0

_GRID_RE = re.compile(r"^1/(\d+)(t?)$", re.IGNORECASE)


def parse_grid(spec: str) -> float:
    """Grid steps per beat (a beat is a quarter note) for ``1/4`` ... ``1/32``, ``1/8T`` etc."""
    match = _GRID_RE.match(spec.strip())
    if not match or int(match.group(1)) not in (4, 8, 16, 32, 64):
        raise ParameterError(
            f"unknown grid {spec!r}: use 1/4, 1/8, 1/16, 1/32 or a triplet such as 1/8T"
        )
    steps = int(match.group(1)) / 4.0
    if match.group(2):
        steps *= 1.5
    return steps


def check_bpm(bpm: float) -> float:
    if not math.isfinite(bpm) or not MIN_BPM <= bpm <= MAX_BPM:
        raise ParameterError(f"--bpm {bpm:g} is out of range: use {MIN_BPM:g} to {MAX_BPM:g}")
    return float(bpm)


def check_swing(swing_pct: float) -> float:
    if not math.isfinite(swing_pct) or not 50.0 <= swing_pct <= 75.0:
        raise ParameterError(f"--swing {swing_pct:g} is out of range: use 50 (straight) to 75")
    return float(swing_pct)


@dataclass(frozen=True)
class Grid:
    bpm: float
    offset_s: float  # time of slot 0
    steps_per_beat: float = 4.0
    swing_pct: float = 50.0

    def __post_init__(self) -> None:
        check_bpm(self.bpm)
        check_swing(self.swing_pct)

    @property
    def step_s(self) -> float:
        return 60.0 / self.bpm / self.steps_per_beat

    def slot_time(self, slot):
        """Time in seconds of one slot or an array of slots."""
        slot = np.asarray(slot)
        base = self.offset_s + slot * self.step_s
        if self.swing_pct != 50.0:
            odd = (slot % 2) == 1
            base = base + odd * (2.0 * self.swing_pct / 100.0 - 1.0) * self.step_s
        return base if base.ndim else float(base)

    def nearest_slot(self, time_s):
        """The slot nearest to each time (scalar or array), swing included."""
        t = np.asarray(time_s, dtype=float)
        flat = t.reshape(-1)
        k = np.floor((flat - self.offset_s) / self.step_s).astype(int)
        candidates = np.stack([k - 1, k, k + 1, k + 2])  # swing moves a slot by < 1 step
        dist = np.abs(self.slot_time(candidates) - flat)
        best = candidates[np.argmin(dist, axis=0), np.arange(flat.size)]
        return best.reshape(t.shape) if t.ndim else int(best[0])

    def deviation_ms(self, time_s, slot):
        return (np.asarray(time_s) - self.slot_time(slot)) * 1000.0

    def step_at(self, time_s):
        return np.full(np.shape(time_s), self.step_s) if np.ndim(time_s) else self.step_s

    @property
    def tempo_map(self) -> "TempoMap":
        """The grid as a tempo map (4/4, bar 1 at the first slot that is on a beat)."""
        from .tempomap import TempoMap

        return TempoMap.constant(self.bpm, offset_s=self.offset_s)

    def label(self, slot) -> str:
        swung = float(slot) + (int(slot) % 2 == 1) * (2.0 * self.swing_pct / 100.0 - 1.0)
        return self.tempo_map.label(swung / self.steps_per_beat)


@dataclass(frozen=True, eq=False)
class MapGrid:
    """A grid that follows a tempo map: tempo changes, ramps and meters.

    Slots are laid bar by bar: ``steps_per_beat`` per quarter note from each
    bar's start (a 7/8 bar at 1/8 has 7 slots), swing delaying every odd step
    of the bar. Slot 0 is bar 1's first slot; slots before it are negative.
    Slots are laid over ``span_s`` (the session, with a margin); outside it
    they continue at the edge step. Same interface as :class:`Grid`.
    """

    tempo_map: "TempoMap"
    steps_per_beat: float = 4.0
    swing_pct: float = 50.0
    span_s: tuple[float, float] = (0.0, 60.0)
    # laid in __post_init__: every slot's position (quarters) and time, and the index of slot 0
    _positions_q: np.ndarray = field(init=False, repr=False)
    _times_s: np.ndarray = field(init=False, repr=False)
    _zero: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_swing(self.swing_pct)
        tm = self.tempo_map
        margin_q = 2 * max(m.bar_q for m in tm.meters)
        q_lo = float(tm.position_at(self.span_s[0])) - margin_q
        q_hi = float(tm.position_at(self.span_s[1])) + margin_q
        step_q = 1.0 / self.steps_per_beat
        shift = 2.0 * self.swing_pct / 100.0 - 1.0
        positions = []
        for start in tm.bar_starts_q(q_lo, q_hi):
            bar_q = tm.meter_at(max(float(start), 0.0)).bar_q
            j = np.arange(int(math.ceil(bar_q / step_q - 1e-9)))
            positions.append(start + (j + (j % 2 == 1) * shift) * step_q)
        pos = np.concatenate(positions)
        object.__setattr__(self, "_positions_q", pos)
        object.__setattr__(self, "_times_s", np.asarray(tm.time_at(pos), dtype=float))
        object.__setattr__(self, "_zero", int(np.searchsorted(pos, -1e-9)))

    # -- Grid interface -----------------------------------------------------------------------

    @property
    def offset_s(self) -> float:
        return float(self.tempo_map.time_at(0.0))

    @property
    def bpm(self) -> float:
        """Median quarter-note tempo over the span."""
        t = np.linspace(self.span_s[0], self.span_s[1], 256)
        return float(np.median(self.tempo_map.bpm_at(t)))

    @property
    def step_s(self) -> float:
        """Median step (the grid is not uniform: see :meth:`step_at`)."""
        return 60.0 / self.bpm / self.steps_per_beat

    def step_at(self, time_s):
        return 60.0 / np.asarray(self.tempo_map.bpm_at(time_s)) / self.steps_per_beat

    def slot_time(self, slot):
        idx = np.asarray(slot).astype(np.int64) + self._zero
        times, n = self._times_s, self._times_s.size
        out = times[np.clip(idx, 0, n - 1)].astype(float)
        # beyond the laid slots: whole pairs of steps at the edge (a swung pair is one period)
        k_lo = np.ceil(-idx / 2.0)
        out = np.where(idx < 0, times[np.clip(idx + 2 * k_lo, 0, n - 1).astype(int)] - k_lo * (times[2] - times[0]), out)
        k_hi = np.ceil((idx - n + 1) / 2.0)
        out = np.where(idx >= n, times[np.clip(idx - 2 * k_hi, 0, n - 1).astype(int)] + k_hi * (times[-1] - times[-3]),
                       out)
        return out if out.ndim else float(out)

    def nearest_slot(self, time_s):
        t = np.asarray(time_s, dtype=float)
        flat = t.reshape(-1)
        i = np.searchsorted(self._times_s, flat)
        cand = np.stack([i - 1, i]) - self._zero
        dist = np.abs(np.asarray(self.slot_time(cand)) - flat)
        best = cand[np.argmin(dist, axis=0), np.arange(flat.size)]
        outside = (flat < self._times_s[0]) | (flat > self._times_s[-1])
        if np.any(outside):  # beyond the laid slots: search the continued pairs near an estimate
            step = (self._times_s[-1] - self._times_s[0]) / (self._times_s.size - 1)
            guess = np.round((flat[outside] - self._times_s[0]) / step).astype(np.int64) - self._zero
            near = guess[None, :] + np.arange(-2, 3)[:, None]
            d = np.abs(np.asarray(self.slot_time(near)) - flat[outside])
            best[outside] = near[np.argmin(d, axis=0), np.arange(guess.size)]
        best = best.astype(int)
        return best.reshape(t.shape) if t.ndim else int(best[0])

    def deviation_ms(self, time_s, slot):
        return (np.asarray(time_s) - self.slot_time(slot)) * 1000.0

    def position_q(self, slot) -> float:
        """Quarter-note position of a slot (within the laid span)."""
        idx = int(np.clip(int(slot) + self._zero, 0, self._positions_q.size - 1))
        return float(self._positions_q[idx])

    def label(self, slot) -> str:
        return self.tempo_map.label(self.position_q(slot))


AnyGrid = Grid | MapGrid  # what the analysis puts hits on: one tempo, or a tempo map
