"""The tempo grid: tempo, a fitted phase, a resolution and optional swing.

Slot ``k`` is the k-th grid step after ``offset_s``. Swing moves every odd
step later: at 50 % the grid is straight, at 66.7 % it is a triplet shuffle.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

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
