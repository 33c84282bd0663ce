"""Does the grid fit the playing? Checked before anything is edited.

A wrong grid (a tempo 3 % off, a tempo change on one fixed tempo, straight
16ths under a shuffle, a tempo 1.5x the real one) does not fail loudly: the
hits still get slots, only the wrong ones, and the edit then drags whole
passages by half a step. Four signs, each measured per hit:

* **far**: the hit would move more than a third of a step;
* **drifting**: its neighbourhood (+-1 beat) sits more than a quarter of a
  step off the grid as a whole: the grid runs away from the band, where a
  sloppy drummer only scatters around it;
* **collisions**: a close mic has two strokes (not a flam's grace) on one slot;
* **order**: a hit that comes later than another lands on an earlier slot;

plus, for an estimated tempo, a metrical relative (x2, /2, x3/2, x2/3, x4/3,
x3/4) that the audio supports much more strongly. What to pass instead is
said in one line.

Pure: an Analysis in, a :class:`FitCheck` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .grid import MAX_BPM, MIN_BPM, Grid
from .types import Hit, Onset, TempoCandidate

FAR_STEPS = 1.0 / 3.0
DRIFT_STEPS = 0.25
DRIFT_BEATS = 1.0
MAX_FAR = 0.25  # share of hits: a sloppy drummer (2 sigma = 60 ms at 16ths, 150 BPM) stays under it
MAX_DRIFTING = 0.10
MAX_CONFLICTS = 0.03  # collisions + order changes
RELATIVE_RATIOS = (2.0, 0.5, 1.5, 2.0 / 3.0, 4.0 / 3.0, 0.75)
STRONGER_BY = 2.0
N_WORST = 5
UNNESTED_RATIOS = (1.5, 2.0 / 3.0, 4.0 / 3.0, 0.75)  # grids at these tempi share few slots with this one
BETTER_BY = 0.35
MIN_FAR_FOR_TEMPO = 0.05
FEEL_TRUSTED_DRIFTING = 0.25
SWING_REFUSED_PCT = 56.0  # a lighter swing may be straightened on purpose: reported, not refused
FEEL_MARGIN = 0.10  # a swung or triplet feel that fits 10 % more of the playing than the grid used


@dataclass(frozen=True)
class Move:
    time_s: float
    slot: int
    label: str  # bar|beat|tick
    shift_ms: float  # slot minus hit: + moves later
    stems: tuple[str, ...]


@dataclass(frozen=True)
class FitCheck:
    n_hits: int
    far: int
    drifting: int
    collisions: int
    order_changes: int
    stronger_relative: TempoCandidate | None
    worst: tuple[Move, ...]
    reasons: tuple[str, ...]  # empty: the grid fits
    suggestion: str

    @property
    def fits(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict:
        return {
            "fits": self.fits, "n_hits": self.n_hits, "far": self.far, "drifting": self.drifting,
            "collisions": self.collisions, "order_changes": self.order_changes,
            "stronger_relative_bpm": None if self.stronger_relative is None else round(self.stronger_relative.bpm, 2),
            "reasons": list(self.reasons), "suggestion": self.suggestion,
            "worst_moves": [{"time_s": round(m.time_s, 4), "bar_beat": m.label, "shift_ms": round(m.shift_ms, 2),
                             "stems": list(m.stems)} for m in self.worst],
        }


def _stronger_relative(candidates: Sequence[TempoCandidate]) -> TempoCandidate | None:
    if len(candidates) < 2:
        return None
    chosen = candidates[0]
    best = None
    for c in candidates[1:]:
        if any(abs(c.bpm / (chosen.bpm * r) - 1.0) <= 0.04 for r in RELATIVE_RATIOS):
            if c.strength > STRONGER_BY * max(chosen.strength, 1e-9) and (best is None or c.strength > best.strength):
                best = c
    return best


def _better_tempo(hits: Sequence[Hit], grid) -> tuple[float, float, float] | None:
    """A tempo related by 3/2, 2/3, 4/3 or 3/4 whose grid (same resolution, phase fitted) puts the hits
    this grid leaves far from their slots on slots, and fits the others as well: ``(bpm, the far hits' mean
    distance ms on it, on this grid)``. Fixed grids only: a tempo map is its own tempo."""
    from .tempo import grid_distances_ms

    if not isinstance(grid, Grid) or len(hits) < 8:
        return None
    times = np.array([h.time_s for h in hits])
    own = np.abs([h.deviation_ms for h in hits])
    far = own > FAR_STEPS * grid.step_s * 1000.0
    if not far.any():
        return None
    weights = np.ones(times.size)
    fits = []
    for ratio in UNNESTED_RATIOS:
        bpm = grid.bpm * ratio
        if not MIN_BPM <= bpm <= MAX_BPM:
            continue
        other, dist = grid_distances_ms(times, weights, bpm=bpm, steps_per_beat=grid.steps_per_beat,
                                        swing_pct=grid.swing_pct)
        explains = float(dist[far].mean()) < BETTER_BY * float(own[far].mean())
        as_good = np.percentile(dist, 75) <= np.percentile(own, 75) + 2.0
        # on its own (finer or coarser) step the relative leaves few hits far: a sloppy drummer's strokes
        # land near some slot of a finer grid by chance, but stay far from its slots as often as from ours
        few_far = np.mean(dist > FAR_STEPS * other.step_s * 1000.0) < BETTER_BY * float(far.mean())
        if explains and as_good and few_far:
            fits.append((bpm, float(dist[far].mean()), float(own[far].mean())))
    if not fits:
        return None
    # of the tempi that fit about as well as the best, the slowest: a finer grid always catches more
    best = min(f[1] for f in fits)
    return min((f for f in fits if f[1] <= max(1.5 * best, best + 3.0)), key=lambda f: f[0])


def _used_grid_score(feel, grid) -> float | None:
    """The feel's score of the grid in use (its resolution and swing), when the feel measured it."""
    if feel is None:
        return None
    for c in feel.candidates:
        if c.steps_per_beat == grid.steps_per_beat and abs(c.swing_pct - grid.swing_pct) < 1.0:
            return c.score
    return None


def check_fit(hits: Sequence[Hit], extras: Mapping[int, Sequence[Onset]], grid, *,
              candidates: Sequence[TempoCandidate], tempo_source: str, feel=None,
              grid_spec: str = "1/16") -> FitCheck:
    """How well ``grid`` fits the ``hits`` (``extras``: onsets left out of each slot's hit, graces removed)."""
    n = len(hits)
    if n == 0:
        return FitCheck(0, 0, 0, 0, 0, None, (), (), "")
    times = np.array([h.time_s for h in hits])
    slots = np.array([h.slot for h in hits])
    dev_s = np.array([h.deviation_ms for h in hits]) / 1000.0
    step = np.asarray(grid.step_at(times), dtype=float)
    far = np.abs(dev_s) > FAR_STEPS * step
    beat_s = step * grid.steps_per_beat
    lo = np.searchsorted(times, times - DRIFT_BEATS * beat_s, side="left")
    hi = np.searchsorted(times, times + DRIFT_BEATS * beat_s, side="right")
    local = np.array([np.median(dev_s[a:b]) for a, b in zip(lo, hi)])
    drifting = np.abs(local) > DRIFT_STEPS * step
    order = int(np.sum(np.diff(slots[np.argsort(times, kind="stable")]) < 0))
    collisions = sum(len(v) for v in extras.values())
    stronger = _stronger_relative(candidates) if tempo_source == "estimated" else None

    reasons = []
    better = _better_tempo(hits, grid) if far.mean() > MIN_FAR_FOR_TEMPO else None
    if better is not None:
        reasons.append(f"a tempo of {better[0]:.1f} BPM fits the playing much better than {grid.bpm:.1f} "
                       f"(the hits far off this grid are {better[1]:.1f} ms from its slots against {better[2]:.1f} ms)")
    if far.mean() > MAX_FAR:
        reasons.append(f"{far.mean():.0%} of the hits would move more than a third of a step")
    if drifting.mean() > MAX_DRIFTING:
        reasons.append(f"the grid drifts away from the playing for {drifting.mean():.0%} of the hits")
    if (collisions + order) > MAX_CONFLICTS * n:
        reasons.append(f"{collisions} strokes would share a slot with another of their drum, "
                       f"{order} hits would change order")
    used = _used_grid_score(feel, grid)
    if (feel is not None and used is not None and feel.score > used + FEEL_MARGIN
            and (feel.kind == "triplet" or feel.swing_pct >= SWING_REFUSED_PCT)):
        reasons.append(f"the playing is {feel.kind} ({feel.grid}" + (f" swing {feel.swing_pct:.0f} %" if
                       feel.swing_pct != 50.0 else "") + f" fits {feel.score:.0%} of it, the grid used {used:.0%})")
    if stronger is not None:
        reasons.append(f"the tempo chosen ({candidates[0].bpm:.1f} BPM) is much weaker in the audio than "
                       f"{stronger.bpm:.1f} BPM")
    order_idx = np.argsort(-np.abs(dev_s))[:N_WORST]
    worst = tuple(Move(float(times[i]), int(slots[i]), grid.label(int(slots[i])), float(-dev_s[i] * 1000.0),
                       tuple(hits[i].onsets)) for i in order_idx)
    suggestion = _suggest(reasons, tempo_source, stronger, feel, grid_spec, drifting.mean(), far.mean(), better)
    return FitCheck(n, int(far.sum()), int(drifting.sum()), int(collisions), order, stronger, worst,
                    tuple(reasons), suggestion)


def _suggest(reasons, source: str, stronger, feel, grid_spec: str, drifting: float, far: float, better) -> str:
    if not reasons:
        return ""
    tips = []
    # a feel measured on a grid that drifts away is noise: only a grid that mostly holds says what the feel is
    if feel is not None and drifting <= FEEL_TRUSTED_DRIFTING and feel.grid != grid_spec and feel.kind != "straight":
        swing = f" --swing {feel.swing_pct:.0f}" if feel.swing_pct != 50.0 else ""
        tips.append(f"the playing is {feel.kind}: pass --grid {feel.grid}{swing} (or --grid auto --swing auto)")
    elif better is not None:
        tips.append(f"pass --bpm {better[0]:.1f}" if source == "given" else
                    f"pass --bpm {better[0]:.1f} if that is the song's tempo")
    if stronger is not None:
        tips.append(f"pass --bpm {stronger.bpm:.1f} if that is the song's tempo")
    if source == "given" and better is None and (drifting > MAX_DRIFTING or far > MAX_FAR):
        tips.append("check --bpm (leave it out to follow the drummer) or pass the song's --tempo-map")
    elif source in ("estimated", "follow") and not tips:
        tips.append("pass --bpm or the song's --tempo-map (a MIDI file from the DAW) or --click")
    elif source == "map" and not tips:
        tips.append("check that --tempo-map belongs to this take and starts at its time 0")
    return "; ".join(tips) + "; --force edits anyway"
