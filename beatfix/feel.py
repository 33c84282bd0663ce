"""Feel: is the playing straight, swung (by how much) or in triplets, and which grid fits it.

Every onset's position within its beat (0..1, from the grid's tempo or
tempo map) is scored against the slots of each candidate grid with a
Gaussian of FIT_SIGMA_MS: the score is the level-weighted share of the
playing that sits on that grid. A finer grid always catches more by chance,
so a richer grid must win clearly: triplets over straight by
FAMILY_MARGIN, swing over straight by SWING_MARGIN, and the swing amount is
read from where the off-beat strokes actually fall (their weighted median).

Pure: positions and weights in, a :class:`Feel` out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIT_SIGMA_MS = 10.0
FAMILY_MARGIN = 0.05  # triplets must explain 5 % more of the playing than straight 16ths
SWING_MARGIN = 0.03
MIN_SWING_PCT = 53.0  # a swing below this is straight playing
MAX_SWING_PCT = 75.0
SWING16_WINDOW = (0.16, 0.42)  # where a swung 16th's off-beat falls, in beats (straight: 0.25)
SWING8_WINDOW = (0.55, 0.80)  # a swung 8th's off-beat (straight: 0.5; triplet: 0.667)


@dataclass(frozen=True)
class GridFit:
    grid: str  # "1/16", "1/8T", ...
    steps_per_beat: float
    swing_pct: float
    score: float  # level-weighted share of the playing on this grid (0..1)


@dataclass(frozen=True)
class Feel:
    kind: str  # straight | swing | triplet
    grid: str
    steps_per_beat: float
    swing_pct: float
    score: float
    candidates: tuple[GridFit, ...]

    def as_dict(self) -> dict:
        return {"kind": self.kind, "grid": self.grid, "swing_pct": round(self.swing_pct, 1),
                "fit": round(self.score, 3),
                "candidates": [{"grid": c.grid, "swing_pct": round(c.swing_pct, 1), "fit": round(c.score, 3)}
                               for c in self.candidates]}


def _slots_in_beat(steps_per_beat: float, swing_pct: float) -> np.ndarray:
    n = int(round(steps_per_beat))
    j = np.arange(n + 1)
    pos = (j + (j % 2 == 1) * (2.0 * swing_pct / 100.0 - 1.0)) / steps_per_beat
    return pos[pos <= 1.0 + 1e-9]


def grid_score(positions_q: np.ndarray, weights: np.ndarray, beat_ms: np.ndarray, steps_per_beat: float,
               swing_pct: float) -> float:
    """Level-weighted share of the onsets at ``positions_q`` (quarters) that sit on a grid of
    ``steps_per_beat`` with ``swing_pct`` (a Gaussian of FIT_SIGMA_MS around each slot)."""
    phase = np.asarray(positions_q, float) - np.floor(positions_q)
    slots = _slots_in_beat(steps_per_beat, swing_pct)
    if steps_per_beat % 2 == 1 or swing_pct == 50.0:
        slots = np.union1d(slots, [1.0])
    dist_ms = np.min(np.abs(phase[:, None] - slots[None, :]), axis=1) * beat_ms
    return float(np.sum(weights * np.exp(-0.5 * (dist_ms / FIT_SIGMA_MS) ** 2)) / max(np.sum(weights), 1e-12))


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float | None:
    if x.size == 0 or np.sum(w) <= 0:
        return None
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


def _swing(phase: np.ndarray, weights: np.ndarray, window: tuple[float, float], scale: float,
           base: float = 0.0) -> float:
    """Swing % from the weighted median of the strokes falling in ``window`` (phase = base + pct / scale)."""
    inside = (phase >= window[0]) & (phase <= window[1])
    med = _weighted_median(phase[inside], weights[inside])
    if med is None:
        return 50.0
    return float(np.clip((med - base) * scale, 50.0, MAX_SWING_PCT))


def detect_feel(positions_q: np.ndarray, weights: np.ndarray, beat_ms: np.ndarray) -> Feel:
    """The feel of onsets at quarter-note ``positions_q`` (level ``weights``; ``beat_ms`` the local
    length of a quarter note at each)."""
    positions_q = np.asarray(positions_q, float)
    weights = np.asarray(weights, float)
    beat_ms = np.broadcast_to(np.asarray(beat_ms, float), positions_q.shape)
    phase = positions_q - np.floor(positions_q)
    # 16th swing: the 'e' and the 'a' both move by the same share of an eighth
    e = (phase >= SWING16_WINDOW[0]) & (phase <= SWING16_WINDOW[1])
    a = (phase >= SWING16_WINDOW[0] + 0.5) & (phase <= SWING16_WINDOW[1] + 0.5)
    folded = np.concatenate([phase[e], phase[a] - 0.5])
    med16 = _weighted_median(folded, np.concatenate([weights[e], weights[a]]))
    swing16 = 50.0 if med16 is None else float(np.clip(med16 * 200.0, 50.0, MAX_SWING_PCT))
    swing8 = _swing(phase, weights, SWING8_WINDOW, 100.0)

    def fit(name: str, steps: float, swing: float) -> GridFit:
        return GridFit(name, steps, swing, grid_score(phase, weights, beat_ms, steps, swing))

    straight16 = fit("1/16", 4.0, 50.0)
    fits = [fit("1/8", 2.0, 50.0), straight16, fit("1/8T", 3.0, 50.0), fit("1/16T", 6.0, 50.0)]
    swung16 = fit("1/16", 4.0, swing16) if swing16 >= MIN_SWING_PCT else None
    swung8 = fit("1/8", 2.0, swing8) if swing8 >= MIN_SWING_PCT else None
    fits += [f for f in (swung16, swung8) if f is not None]
    by = {(f.grid, f.swing_pct): f for f in fits}
    t8, t16 = by[("1/8T", 50.0)], by[("1/16T", 50.0)]
    straight_best = max(straight16.score, swung16.score if swung16 else 0.0)

    kind, chosen = "straight", straight16
    triplet = t16 if t16.score > t8.score + SWING_MARGIN else t8
    if triplet.score > straight_best + FAMILY_MARGIN and (swung8 is None or triplet.score >= swung8.score - 0.01):
        kind, chosen = "triplet", triplet
    elif swung8 is not None and swung8.score > max(straight_best, t8.score) + SWING_MARGIN:
        kind, chosen = "swing", swung8
    elif swung16 is not None and swung16.score > straight16.score + SWING_MARGIN:
        kind, chosen = "swing", swung16
    ranked = tuple(sorted(fits, key=lambda f: -f.score))
    return Feel(kind, chosen.grid, chosen.steps_per_beat, chosen.swing_pct, chosen.score, ranked)
