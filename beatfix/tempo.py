"""Tempo, grid phase and slot assignment.

* Tempo: madmom's RNN beat activation on a mix of the close mics and its
  comb-filter tempo histogram give candidates with strengths; the chosen one
  (the strongest in 60-200 BPM) is listed with its half and double, which are
  the usual ambiguity for drums (half-time feel, double-time hats). Between
  those three, the level at which the loud snare strokes fall two beats
  apart (the backbeat) is preferred.
* Triplet relatives: a tempo 3/2 or 2/3 of the chosen one (a shuffle's
  triplet eighths heard as straight eighths, or the reverse) is not a
  metrical level of it, and grids of one resolution at the two tempos are
  not nested. Between them, the one whose grid (phase fitted) the onsets
  fit clearly better, by the 75th percentile of their distances to the
  nearest slot in ms, wins (not the median: in a shuffle most strokes fall
  on the slots the two grids share, every second triplet).
* Grid: the phase is the mode of the onset phases weighted by level (a
  kernel-density "circular mean" that ignores the stray hits), then a
  weighted least-squares fit of onset times against their slot indices gives
  tempo and offset to a fraction of a percent. The fit grows from the start
  of the session outwards so that a 1 % error in the first tempo guess cannot
  push the slots of later bars off by one.
* Slots: the nearest slot after removing a smoothed local timing offset (the
  median deviation of the neighbours within +-2 beats), so that a passage the
  drummer plays consistently late keeps its slots.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .errors import InputError
from .grid import AnyGrid, Grid, check_bpm
from .types import TempoCandidate

SEARCH_BPM = (40.0, 250.0)  # madmom's histogram range: wide, so half and double are visible
CHOOSE_BPM = (60.0, 200.0)  # the tempo picked automatically lies here
SAME_TEMPO = 0.04  # histogram peaks within 4 % are one candidate
MIN_LISTED = 0.03  # candidates weaker than this are left out (half and double always listed)
BACKBEAT_BONUS = 3.0
BACKBEAT_TOLERANCE = 0.25  # beats
PHASE_SIGMA_MS = 8.0  # width of the kernel that finds the grid phase
PHASE_STEP_MS = 0.25
PHASE_CHUNK_VALUES = 2_000_000
FIT_START_S = 4.0  # first window of the growing fit
FIT_GROWTH = 1.6
OUTLIER_STEPS = 0.3  # hits this far (in steps) from their slot do not pull the fit
DRIFT_BEATS = 2.0  # neighbours within this many beats set the local timing offset
TRIPLET_RATIOS = (1.5, 2.0 / 3.0)  # tempos whose grids are not nested in the chosen one's
GRID_FIT_QUANTILE = 75.0  # percentile of the onsets' distances to their slots that scores a grid
GRID_FIT_MARGIN = 0.4  # a triplet relative wins when its score is below this share of the chosen tempo's
GRID_FIT_MIN_ONSETS = 8


def estimate_tempo(mix: np.ndarray, sample_rate: int) -> list[TempoCandidate]:
    """Tempo candidates (strongest first, strengths summing to 1) of a mono mix ``(n_samples,)``."""
    return estimate_tempo_activation(mix, sample_rate)[0]


def estimate_tempo_activation(mix: np.ndarray, sample_rate: int) -> tuple[list[TempoCandidate], np.ndarray]:
    """:func:`estimate_tempo`, and the beat activation it came from (for the beat tracker)."""
    from . import madmom_adapter

    if len(mix) < 3 * sample_rate or not np.any(mix):
        raise InputError("too little audio to estimate the tempo (under 3 s or silent): pass --bpm")
    activation = madmom_adapter.beat_activation(mix, sample_rate)
    hist = madmom_adapter.tempo_histogram(activation, min_bpm=SEARCH_BPM[0], max_bpm=SEARCH_BPM[1])
    if hist.size == 0:
        raise InputError("no beat found to estimate the tempo from: pass --bpm")
    return tempo_candidates(hist[:, 0], hist[:, 1]), activation


def _strength_near(bpms: np.ndarray, strengths: np.ndarray, bpm: float) -> float:
    return float(strengths[np.abs(bpms / bpm - 1.0) <= SAME_TEMPO].sum())


def tempo_candidates(bpms: ArrayLike, strengths: ArrayLike) -> list[TempoCandidate]:
    """Merge histogram peaks into candidates; the chosen tempo first, its half and double always listed."""
    bpms, strengths = np.asarray(bpms, float), np.asarray(strengths, float)
    inside = [(s, b) for b, s in zip(bpms, strengths) if CHOOSE_BPM[0] <= b <= CHOOSE_BPM[1]]
    if inside:
        chosen = float(max(inside)[1])
    else:  # fold the strongest into range by octaves
        chosen = float(bpms[int(np.argmax(strengths))])
        while chosen > CHOOSE_BPM[1]:
            chosen /= 2.0
        while chosen < CHOOSE_BPM[0]:
            chosen *= 2.0
    listed = [chosen, chosen / 2.0, chosen * 2.0]
    for b in bpms[np.argsort(-strengths)]:
        if all(abs(b / x - 1.0) > SAME_TEMPO for x in listed) and _strength_near(bpms, strengths, b) >= MIN_LISTED:
            listed.append(float(b))
    listed = [b for b in listed if 20.0 <= b <= 400.0]
    raw = np.array([_strength_near(bpms, strengths, b) for b in listed])
    raw = raw / raw.sum() if raw.sum() > 0 else np.full(len(listed), 1.0 / len(listed))
    first = TempoCandidate(listed[0], float(raw[0]))
    rest = sorted((TempoCandidate(b, float(s)) for b, s in zip(listed[1:], raw[1:])), key=lambda c: -c.strength)
    return [first, *rest]


def prefer_backbeat(candidates: Sequence[TempoCandidate], backbeat_s: ArrayLike) -> list[TempoCandidate]:
    """Re-choose between the chosen tempo, its half and its double using the snare's backbeat.

    In most drum grooves the loud snare strokes fall two beats apart (2 and 4):
    the metrical level at which that holds is worth BACKBEAT_BONUS times its
    histogram strength. ``backbeat_s`` are the loud snare onsets (no ghost notes).
    """
    candidates = list(candidates)
    times = np.sort(np.asarray(backbeat_s, float))
    if len(candidates) < 2 or times.size < 3:
        return candidates
    ioi_s = float(np.median(np.diff(times)))
    chosen = candidates[0].bpm

    def score(c: TempoCandidate) -> float:
        beats = ioi_s * c.bpm / 60.0
        return c.strength * (BACKBEAT_BONUS if abs(beats - 2.0) <= BACKBEAT_TOLERANCE else 1.0)

    octaves = [c for c in candidates
               if any(math.isclose(c.bpm, chosen * r, rel_tol=1e-9) for r in (0.5, 1.0, 2.0))
               and CHOOSE_BPM[0] * (1 - SAME_TEMPO) <= c.bpm <= CHOOSE_BPM[1] * (1 + SAME_TEMPO)]
    best = max(octaves, key=score) if octaves else candidates[0]
    if best is candidates[0]:
        return candidates
    return [best, *sorted((c for c in candidates if c is not best), key=lambda c: -c.strength)]


def grid_distances_ms(times_s: ArrayLike, weights: ArrayLike, *, bpm: float, steps_per_beat: float,
                      swing_pct: float = 50.0) -> tuple[Grid, np.ndarray]:
    """A grid fitted at ``bpm`` and each onset's distance (ms) to its nearest slot."""
    times = np.asarray(times_s, float)
    grid = fit_grid(times, weights, bpm=bpm, steps_per_beat=steps_per_beat, swing_pct=swing_pct)
    slots = np.asarray(grid.nearest_slot(times)).reshape(-1)
    return grid, np.abs(times - grid.slot_time(slots)) * 1000.0


def grid_deviation_ms(times_s: ArrayLike, weights: ArrayLike, *, bpm: float, steps_per_beat: float,
                      swing_pct: float = 50.0) -> float:
    """GRID_FIT_QUANTILE-th percentile of the onsets' distances (ms) to the nearest slot of a grid fitted at ``bpm``."""
    _, dist = grid_distances_ms(times_s, weights, bpm=bpm, steps_per_beat=steps_per_beat, swing_pct=swing_pct)
    return float(np.percentile(dist, GRID_FIT_QUANTILE))


def prefer_grid_fit(candidates: Sequence[TempoCandidate], times_s: ArrayLike, weights: ArrayLike, *,
                    steps_per_beat: float, swing_pct: float = 50.0) -> list[TempoCandidate]:
    """Re-choose between the chosen tempo and its 3/2 and 2/3 by how well the onsets fit the grid.

    Those grids are not nested, so the onsets of a groove fit one of them
    clearly better: the relative (a listed candidate, else added with strength
    0) wins when its deviation (:func:`grid_deviation_ms`) is under
    GRID_FIT_MARGIN of the chosen tempo's. Half and double are left to :func:`prefer_backbeat`.
    """
    candidates = list(candidates)
    times = np.asarray(times_s, float)
    if len(candidates) < 2 or times.size < GRID_FIT_MIN_ONSETS:
        return candidates
    chosen = candidates[0]
    relatives = []
    for ratio in TRIPLET_RATIOS:
        bpm = chosen.bpm * ratio
        if not CHOOSE_BPM[0] * (1 - SAME_TEMPO) <= bpm <= CHOOSE_BPM[1] * (1 + SAME_TEMPO):
            continue
        near = [c for c in candidates[1:] if abs(c.bpm / bpm - 1.0) <= SAME_TEMPO]
        relatives.append(max(near, key=lambda c: c.strength) if near else TempoCandidate(bpm, 0.0))
    if not relatives:
        return candidates

    def deviation(c: TempoCandidate) -> float:
        return grid_deviation_ms(times, weights, bpm=c.bpm, steps_per_beat=steps_per_beat, swing_pct=swing_pct)

    own = deviation(chosen)
    best, best_dev = chosen, own * GRID_FIT_MARGIN
    for c in relatives:
        d = deviation(c)
        if d < best_dev:
            best, best_dev = c, d
    if best is chosen:
        return candidates
    return [best, *sorted((c for c in candidates if c is not best), key=lambda c: -c.strength)]


def _positions(slots: np.ndarray, swing_pct: float) -> np.ndarray:
    """Slot index -> position in steps, swing included (odd slots move later)."""
    return slots + (slots % 2 == 1) * (2.0 * swing_pct / 100.0 - 1.0)


def _phase_scan(times: np.ndarray, weights: np.ndarray, grid: Grid, period_s: float) -> float:
    """Offset in [0, period_s) that puts the most weight on the grid (mode of the phases)."""
    sigma = PHASE_SIGMA_MS / 1000.0
    offsets = np.arange(0.0, period_s, PHASE_STEP_MS / 1000.0)
    best, best_score = 0.0, -1.0
    per_chunk = max(1, int(PHASE_CHUNK_VALUES // (3 * max(times.size, 1))))  # bounds memory on long songs
    for chunk in np.array_split(offsets, max(1, int(np.ceil(len(offsets) / per_chunk)))):
        # distance of every time to the nearest slot of every candidate grid
        rel = times[None, :] - chunk[:, None]
        k = np.floor(rel / grid.step_s)
        cands = np.stack([k - 1, k, k + 1])
        dist = np.min(np.abs(rel[None] - _positions(cands, grid.swing_pct) * grid.step_s), axis=0)
        score = (weights[None, :] * np.exp(-0.5 * (dist / sigma) ** 2)).sum(axis=1)
        i = int(np.argmax(score))
        if score[i] > best_score:
            best, best_score = float(chunk[i]), float(score[i])
    return best


def per_slot(times, weights, slots) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One point per slot: the weighted median of its onsets (a grace note or a stray
    onset does not pull), weighted like its strongest onset."""
    order = np.lexsort((times, slots))
    t, w, s = times[order], weights[order], slots[order]
    uniq, start, counts = np.unique(s, return_index=True, return_counts=True)
    group = np.repeat(np.arange(uniq.size), counts)
    cum = np.cumsum(w)
    before = np.concatenate([[0.0], cum])[start][group]
    total = np.add.reduceat(w, start)
    # within each slot the key runs from just above g to g + 1: the median is where it passes g + 0.5
    key = group + (cum - before) / total[group]
    median_at = np.searchsorted(key, np.arange(uniq.size) + 0.5)
    return t[median_at], np.maximum.reduceat(w, start), uniq


def _lsq(times, weights, slots, swing_pct, step_s, fix_step: bool) -> tuple[float, float]:
    """Weighted least squares of time = offset + position(slot) * step; returns (offset, step)."""
    times, weights, slots = per_slot(times, weights, slots)
    pos = _positions(slots, swing_pct)
    w = np.sqrt(weights)  # soft strokes count, a little less
    if fix_step:
        return float(np.sum(w * (times - pos * step_s)) / np.sum(w)), step_s
    a = np.stack([np.ones_like(pos), pos], axis=1) * np.sqrt(w)[:, None]
    (offset, step), *_ = np.linalg.lstsq(a, times * np.sqrt(w), rcond=None)
    return float(offset), float(step)


def fit_grid(times_s: ArrayLike, weights: ArrayLike, *, bpm: float, steps_per_beat: float,
             swing_pct: float = 50.0, fixed_bpm: bool = False, accents: ArrayLike | None = None) -> Grid:
    """Fit the phase (and, unless ``fixed_bpm``, the tempo) of a grid to onset times.

    ``weights`` scale each onset's pull on the fit (its level); ``accents``
    (default: the weights) decide which step of the beat is the beat itself.
    Returns a grid whose ``offset_s`` lies within the first beat, ``[0, 60/bpm)``
    (within the first two beats for a grid such as 1/4T that has a slot on
    every other beat only).
    """
    times = np.asarray(times_s, float)
    weights = np.asarray(weights, float)
    accents = weights if accents is None else np.asarray(accents, float)
    grid = Grid(check_bpm(bpm), 0.0, steps_per_beat, swing_pct)
    if times.size == 0:
        return grid
    period = grid.step_s * (2 if swing_pct != 50.0 else 1)
    start = float(times.min())
    offset = _phase_scan(times - start, weights, grid, period) + start
    step = grid.step_s
    horizon = start + FIT_START_S
    while True:
        use = times <= horizon
        for _ in range(3):
            g = Grid(60.0 / (step * steps_per_beat), offset, steps_per_beat, swing_pct)
            slots = np.asarray(g.nearest_slot(times[use]))
            resid = np.abs(times[use] - g.slot_time(slots)) / step
            keep = resid <= OUTLIER_STEPS
            if keep.sum() < 2:
                break
            offset, new_step = _lsq(times[use][keep], weights[use][keep], slots[keep], swing_pct, step,
                                    fixed_bpm or len(np.unique(slots[keep])) < 4)
            if abs(new_step / step - 1.0) < 0.1:  # never leave the tempo the estimate found
                step = new_step
        if horizon >= times.max():
            break
        horizon = start + (horizon - start) * FIT_GROWTH
    grid = Grid(grid.bpm if fixed_bpm else 60.0 / (step * steps_per_beat), offset, steps_per_beat, swing_pct)
    return _on_the_beat(grid, times, accents)


def _on_the_beat(grid: Grid, times: np.ndarray, accents: np.ndarray) -> Grid:
    """Move slot 0 to the step of the beat that carries the most accent, then into the first beat."""
    beat_s = 60.0 / grid.bpm
    n_steps = int(round(grid.steps_per_beat))
    slots = np.asarray(grid.nearest_slot(times))
    close = np.abs(times - grid.slot_time(slots)) <= OUTLIER_STEPS * grid.step_s
    if n_steps > 1 and math.isclose(grid.steps_per_beat, n_steps):
        weight_per_step = [accents[close & (slots % n_steps == r)].sum() for r in range(n_steps)]
        # swing keeps slot parity: only even steps can become slot 0 of a swung grid
        allowed = [r for r in range(n_steps) if grid.swing_pct == 50.0 or r % 2 == 0]
        shift = max(allowed, key=lambda r: weight_per_step[r])
    else:
        shift = 0
    offset = float(grid.slot_time(shift))
    # Back to the first beat by whole grid periods: the fewest beats holding a
    # whole (and, when swung, even) number of steps. One beat for 1/8 and 1/16;
    # two for 1/4T, whose slots fall on every other beat only.
    period = next((m for m in range(1, 9) if _whole(m * grid.steps_per_beat, grid.swing_pct != 50.0)), 1)
    periods = math.floor(offset / (period * beat_s))
    return Grid(grid.bpm, offset - periods * period * beat_s, grid.steps_per_beat, grid.swing_pct)


def _whole(steps: float, even: bool) -> bool:
    n = round(steps)
    return math.isclose(steps, n, abs_tol=1e-9) and (not even or n % 2 == 0)


def assign_slots(times_s: ArrayLike, grid: "AnyGrid", *, passes: int = 2) -> np.ndarray:
    """Slot of each time: nearest slot after removing the local timing drift of the neighbours."""
    times = np.asarray(times_s, float)
    if times.size == 0:
        return np.zeros(0, dtype=int)
    slots = np.asarray(grid.nearest_slot(times)).reshape(-1)
    window = DRIFT_BEATS * 60.0 / grid.bpm
    order = np.argsort(times)
    sorted_t = times[order]
    for _ in range(passes):
        dev = times - grid.slot_time(slots)
        dev_sorted = dev[order]
        lo = np.searchsorted(sorted_t, sorted_t - window, side="left")
        hi = np.searchsorted(sorted_t, sorted_t + window, side="right")
        local = np.empty_like(times)
        for j, i in enumerate(order):
            local[i] = np.median(dev_sorted[lo[j] : hi[j]])
        slots = np.asarray(grid.nearest_slot(times - local)).reshape(-1)
    return slots
