"""Follow the drummer: a smooth tempo map fitted to the playing itself (no click, no --bpm).

madmom's DBN beat tracker gives a first beat per beat; the hits then pull a
smooth curve of beat times through themselves:

* every accepted onset is given its slot on the current map (drift-aware, as
  the fixed grid does), and each slot is one point, the weighted median of
  its onsets, so a grace note or a stray stroke does not pull;
* the beat times ``T_b`` minimise the squared distance of those points to
  their slots plus ``lambda`` times the squared second difference of ``T``
  (a tempo that changes smoothly), with ``lambda`` set so that the curve
  follows what happens over about a bar and leaves what happens within a
  beat (the sloppy stroke, the flam) to the edit;
* a sudden tempo change (120 -> 100 at bar 9) is a beat where that penalty
  is lifted: candidates are beats where the tempo before and after differs
  by more than CHANGE_MIN, kept when lifting it explains the hits clearly
  better (CHANGE_GAIN);
* bar 1 is the first beat, at or after the first hit, whose beats carry the
  kick and whose second and fourth beats carry the snare (4/4 assumed).

Pure: arrays in, a :class:`TempoMap` out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from .grid import Grid
from .tempo import assign_slots, per_slot
from .tempomap import TempoMap

WINDOW_BEATS = 6.0  # the curve follows tempo changes slower than about this many beats (its cut-off period)
CHANGE_MIN = 0.04  # a candidate tempo change: the tempo differs by 4 % across a beat
CHANGE_GAIN = 1.5  # kept when the residual falls by this factor around it
MAX_CHANGES = 16
CHANGE_REACH_BEATS = 6.0
CHANGE_WINDOW_BEATS = 16
INLIER_STEPS = 0.3
VARYING = 0.03  # a map whose tempo leaves +-3 % of its median is followed (else the fixed grid is kept)
PASSES = 4


@dataclass(frozen=True)
class DrummerMap:
    tempo_map: TempoMap
    changes_s: tuple[float, ...]  # times of sudden tempo changes
    variation: float  # largest relative distance of the tempo from its median
    rms_ms: float  # residual of the slot points to the map's slots

    @property
    def varies(self) -> bool:
        return self.variation > VARYING or bool(self.changes_s)


def _position_grid(steps_per_beat: float, swing_pct: float) -> Grid:
    """A grid in beat units: at 60 BPM a slot's 'time' is its position in beats."""
    return Grid(60.0, 0.0, steps_per_beat, swing_pct)


def _slot_points(times: np.ndarray, weights: np.ndarray, positions_b: np.ndarray, pos_grid: Grid
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slot position in beats, time, weight) of each occupied slot: its weighted median onset."""
    slots = assign_slots(positions_b, pos_grid)
    target = np.asarray(pos_grid.slot_time(slots), dtype=float)
    inlier = np.abs(positions_b - target) <= INLIER_STEPS / pos_grid.steps_per_beat
    if not inlier.any():
        return np.zeros(0), np.zeros(0), np.zeros(0)
    # one point per slot, as the fixed grid's fit takes them (tempo.per_slot)
    slot_t, slot_w, uniq = per_slot(times[inlier], weights[inlier], slots[inlier])
    return np.asarray(pos_grid.slot_time(uniq), dtype=float), slot_t, np.sqrt(slot_w)


def _solve(points_b: np.ndarray, times: np.ndarray, weights: np.ndarray, b0: int, n_beats: int,
           lam: float, breaks: frozenset[int]) -> tuple[np.ndarray, np.ndarray]:
    """Beat times ``T[b0 .. b0 + n_beats)`` of the smoothing fit, and each point's weighted squared residual."""
    rel = points_b - b0
    i = np.clip(np.floor(rel).astype(int), 0, n_beats - 2)
    f = rel - i
    rows = np.arange(points_b.size)
    a = sparse.csr_matrix((np.concatenate([1 - f, f]), (np.concatenate([rows, rows]), np.concatenate([i, i + 1]))),
                          shape=(points_b.size, n_beats))
    w = sparse.diags(weights)
    inner = [b for b in range(1, n_beats - 1) if (b + b0) not in breaks]
    r = np.arange(len(inner))
    d = sparse.csr_matrix((np.tile([1.0, -2.0, 1.0], len(inner)),
                           (np.repeat(r, 3), np.concatenate([[b - 1, b, b + 1] for b in inner]) if inner else [])),
                          shape=(len(inner), n_beats))
    lhs = (a.T @ w @ a + lam * (d.T @ d) + 1e-9 * sparse.identity(n_beats)).tocsc()
    beat_times = spsolve(lhs, a.T @ (weights * times))
    resid = a @ beat_times - times
    return np.asarray(beat_times), weights * resid**2


def _changes(points_b, times, weights, b0, n_beats, lam) -> frozenset[int]:
    """Beats where the tempo changes at once: kept only where lifting the smoothness explains the hits.

    Each candidate (the tempo before and after differs by CHANGE_MIN) is judged on
    its own neighbourhood, CHANGE_WINDOW_BEATS either side, so the cost stays
    linear in the length of the song; of candidates closer than 4 beats the best wins.
    """
    loose, _ = _solve(points_b, times, weights, b0, n_beats, lam / 64.0, frozenset())
    ibi = np.diff(loose)
    gains: list[tuple[float, int]] = []
    for b in range(3, n_beats - 3):
        before, after = np.median(ibi[max(0, b - 4): b]), np.median(ibi[b: b + 4])
        if abs(np.log(after / before)) < CHANGE_MIN:
            continue
        beat = b + b0
        lo, hi = max(b0, beat - CHANGE_WINDOW_BEATS), min(b0 + n_beats - 1, beat + CHANGE_WINDOW_BEATS)
        inside = (points_b >= lo) & (points_b < hi)
        if inside.sum() < 4:
            continue
        p, t, w = points_b[inside], times[inside], weights[inside]
        _, smooth = _solve(p, t, w, lo, hi - lo + 1, lam, frozenset())
        _, broken = _solve(p, t, w, lo, hi - lo + 1, lam, frozenset({beat}))
        near = np.abs(p - beat) <= CHANGE_REACH_BEATS  # the change only matters around it
        gain = float(smooth[near].sum()) / max(float(broken[near].sum()), 1e-12)
        if gain > CHANGE_GAIN:
            gains.append((gain, beat))
    breaks: list[int] = []
    for _, beat in sorted(gains, reverse=True):
        if len(breaks) < MAX_CHANGES and all(abs(beat - x) >= 4 for x in breaks):
            breaks.append(beat)
    return frozenset(breaks)


def fit_drummer_map(times_s: np.ndarray, weights: np.ndarray, *, beat_times_s: np.ndarray | None,
                    fallback: Grid, steps_per_beat: float, swing_pct: float = 50.0,
                    kick_s: np.ndarray | None = None, snare_s: np.ndarray | None = None) -> DrummerMap:
    """The drummer's own smooth tempo map through delay-compensated onset ``times_s`` (level ``weights``).

    ``beat_times_s`` (madmom's tracked beats) start the fit; without them, ``fallback``
    (the fixed grid) does. ``kick_s``/``snare_s`` (loud strokes) place bar 1.
    """
    times = np.asarray(times_s, float)
    weights = np.asarray(weights, float)
    if beat_times_s is not None and len(beat_times_s) >= 8:
        current = TempoMap.from_beats(np.asarray(beat_times_s, float))
    else:
        current = TempoMap.constant(fallback.bpm, offset_s=fallback.offset_s)
    pos_grid = _position_grid(steps_per_beat, swing_pct)
    breaks: frozenset[int] = frozenset()
    n_per_beat = 1.0
    for p in range(PASSES):
        points_b, pt_times, pt_w = _slot_points(times, weights, np.asarray(current.position_at(times)), pos_grid)
        if points_b.size < 8:
            break
        b0 = int(np.floor(points_b.min())) - 1
        n_beats = int(np.ceil(points_b.max())) + 2 - b0
        n_per_beat = points_b.size / max(1.0, points_b.max() - points_b.min())
        # a smoothing fit halves a sinusoid of period 2 pi (lam / (n w)) ** (1/4) beats
        lam = n_per_beat * np.mean(pt_w) * (WINDOW_BEATS / (2 * np.pi)) ** 4
        if p == PASSES - 2:
            breaks = _changes(points_b, pt_times, pt_w, b0, n_beats, lam)
        beat_times, sq = _solve(points_b, pt_times, pt_w, b0, n_beats, lam, breaks)
        sse = float(sq.sum())
        if np.any(np.diff(beat_times) <= 0):
            break
        current = TempoMap(np.arange(b0, b0 + n_beats, dtype=float), beat_times)
    rms_ms = float(np.sqrt(sse / max(np.sum(pt_w), 1e-9))) * 1000.0 if points_b.size >= 8 else float("nan")
    changes = tuple(float(current.time_at(float(b))) for b in sorted(breaks))
    current = _bar_one(current, times, kick_s, snare_s)
    span = (float(times.min()), float(times.max())) if times.size else (0.0, 1.0)
    tt = np.linspace(*span, 512)
    bpm = np.asarray(current.bpm_at(tt))
    variation = float(np.max(np.abs(bpm / np.median(bpm) - 1.0))) if bpm.size else 0.0
    return DrummerMap(current, changes, variation, rms_ms)


def _bar_one(tempo_map: TempoMap, times: np.ndarray, kick_s, snare_s) -> TempoMap:
    """Renumber the beats so that bar 1 starts on a kick-led downbeat at or after the first hit."""
    q = tempo_map.positions_q
    if times.size == 0:
        return tempo_map
    first_beat = int(np.ceil(float(tempo_map.position_at(times.min())) - 0.25))

    def on_beats(stroke_s):
        if stroke_s is None or len(stroke_s) == 0:
            return np.zeros(4)
        pos = np.asarray(tempo_map.position_at(np.asarray(stroke_s, float)))
        near = np.abs(pos - np.round(pos)) < 0.15
        beats = np.round(pos[near]).astype(int)
        return np.bincount((beats - first_beat) % 4, minlength=4).astype(float)

    kick, snare = on_beats(kick_s), on_beats(snare_s)
    score = [kick[r] + 0.5 * kick[(r + 2) % 4] + snare[(r + 1) % 4] + snare[(r + 3) % 4] - snare[r]
             for r in range(4)]
    downbeat = first_beat + int(np.argmax(score))
    if float(tempo_map.time_at(downbeat)) < 0.0:
        downbeat += 4
    return TempoMap(q - downbeat, tempo_map.times_s, tempo_map.meters)
