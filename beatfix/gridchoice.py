"""Which grid the hits go to: a given tempo, a tempo map, or the drummer's own time; and at which feel.

Order of trust: a tempo map (``--tempo-map``, ``--click``) is the grid
outright; ``--bpm`` is one tempo whose phase is fitted (or pinned); with
neither, madmom's tempo candidates give a fixed grid first, and when the
drummer's own smooth tempo map (:mod:`beatfix.follow`) moves more than that
allows, the grid follows the drummer. The feel (:mod:`beatfix.feel`) is
measured on the beat-level grid; ``grid="auto"`` and ``swing_pct=None``
take it.

Pure: onset times, weights and the beat activation in; a :class:`GridChoice` out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .feel import Feel, detect_feel, grid_score
from .follow import DrummerMap, fit_drummer_map
from .grid import Grid, MapGrid, parse_grid
from .tempo import fit_grid, prefer_grid_fit
from .tempomap import TempoMap
from .types import TempoCandidate

AUTO = "auto"
RIVAL_STRENGTH = 0.15
FEEL_ROUNDS = 3
COARSE_MARGIN = 0.10  # a grid twice as fine catching 10 % more of the playing: the tempo is twice this
MAX_AUTO_BPM = 250.0


@dataclass(frozen=True)
class GridChoice:
    grid: Grid | MapGrid
    candidates: tuple[TempoCandidate, ...]
    feel: Feel | None
    tempo_map: TempoMap | None  # what the grid follows; None for one fixed tempo
    source: str  # map | given | estimated | follow
    changes_s: tuple[float, ...] = ()
    grid_spec: str = "1/16"


@dataclass(frozen=True)
class Playing:
    """Delay-compensated onset times of the accepted hits, their level weights and accents."""

    times_s: np.ndarray
    weights: np.ndarray
    accents: np.ndarray
    kick_s: np.ndarray  # loud kick strokes (bar 1 placement)
    snare_s: np.ndarray


def _positions_q(grid: Grid | MapGrid, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quarter-note positions of times on a grid, and the local quarter length in ms."""
    if isinstance(grid, MapGrid):
        return np.asarray(grid.tempo_map.position_at(times)), 60000.0 / np.asarray(grid.tempo_map.bpm_at(times))
    beat_s = 60.0 / grid.bpm
    return (times - grid.offset_s) / beat_s, np.full(times.shape, beat_s * 1000.0)


def _feel_of(grid: Grid | MapGrid, playing: Playing) -> Feel | None:
    if playing.times_s.size < 8:
        return None
    pos, beat_ms = _positions_q(grid, playing.times_s)
    return detect_feel(pos, playing.weights, beat_ms)


def _resolve(grid_spec: str, swing_pct: float | None, feel: Feel | None) -> tuple[str, float, float]:
    """(grid spec, steps per beat, swing %) once 'auto' is replaced by the measured feel."""
    if grid_spec == AUTO:
        if feel is None:
            return "1/16", 4.0, 50.0 if swing_pct is None else swing_pct
        return feel.grid, feel.steps_per_beat, feel.swing_pct if swing_pct is None else swing_pct
    steps = parse_grid(grid_spec)
    if swing_pct is not None:
        return grid_spec, steps, swing_pct
    if feel is None or steps % 2 == 1 or "t" in grid_spec.lower():
        return grid_spec, steps, 50.0
    # the swing of this resolution that the feel measured (8ths swing at the 'and', 16ths at the 'e')
    same = [c for c in feel.candidates if c.steps_per_beat == steps and c.swing_pct != 50.0]
    return grid_spec, steps, same[0].swing_pct if same else 50.0


def choose_grid(playing: Playing, *, span_s: tuple[float, float], grid_spec: str, swing_pct: float | None,
                bpm: float | None, tempo_map: TempoMap | None, candidates: Sequence[TempoCandidate],
                grid_offset_s: float | None, beat_times_s=None, follow: bool = True) -> GridChoice:
    """The grid for ``playing``; ``candidates`` are madmom's (or ``[bpm]``), ``beat_times_s`` its tracked beats."""
    times, weights = playing.times_s, playing.weights
    auto = grid_spec == AUTO or swing_pct is None
    first_steps = 4.0 if grid_spec == AUTO else parse_grid(grid_spec)
    first_swing = 50.0 if swing_pct is None else swing_pct
    if tempo_map is not None:
        given = MapGrid(tempo_map, first_steps, first_swing, span_s)
        feel = _feel_of(given, playing)
        spec, steps, swing = _resolve(grid_spec, swing_pct, feel)
        mapped = MapGrid(tempo_map, steps, swing, span_s) if auto else given
        return GridChoice(mapped, (TempoCandidate(mapped.bpm, 1.0),), feel, tempo_map, "map", (), spec)

    def fixed(steps: float, swing: float, cands, relatives: bool = True) -> tuple[Grid, list[TempoCandidate]]:
        if relatives:
            cands = prefer_grid_fit(cands, times, weights, steps_per_beat=steps, swing_pct=swing)
        g = fit_grid(times, weights, bpm=cands[0].bpm, steps_per_beat=steps, swing_pct=swing,
                     fixed_bpm=bpm is not None, accents=playing.accents)
        if grid_offset_s is not None:
            g = replace(g, offset_s=float(grid_offset_s))
        return g, cands

    grid: Grid
    # with --grid auto a shuffle is found by its feel, not by trading the tempo for 3/2 of it
    grid, cands = fixed(first_steps, first_swing, list(candidates), relatives=grid_spec != AUTO)
    feel = _feel_of(grid, playing)
    spec, steps, swing = _resolve(grid_spec, swing_pct, feel)
    for _ in range(FEEL_ROUNDS if auto else 0):
        # a fit on the wrong feel leans toward the off-beat strokes: fit again on the measured feel, measure again
        if (steps, swing) == (grid.steps_per_beat, grid.swing_pct):
            break
        grid, cands = fixed(steps, swing, cands)
        feel = _feel_of(grid, playing)
        spec, steps, swing = _resolve(grid_spec, swing_pct, feel)
    if bpm is None and _too_coarse(grid, playing):
        # notes between the slots of a whole tempo: the tempo is half the song's (a half-time feel heard as such)
        doubled = [c for c in cands if abs(c.bpm / (2.0 * grid.bpm) - 1.0) <= 0.04]
        cands = [doubled[0] if doubled else TempoCandidate(2.0 * grid.bpm, 0.0),
                 *(c for c in cands if not doubled or c is not doubled[0])]
        grid, cands = fixed(grid.steps_per_beat, grid.swing_pct, cands)
        feel = _feel_of(grid, playing)
    drummer: DrummerMap | None = None
    if bpm is None and follow and beat_times_s is not None and times.size >= 16:
        # followed on the grid the playing has (a shuffle's triplets, a swing), or its slots are wrong
        drummer = fit_drummer_map(times, weights, beat_times_s=beat_times_s, fallback=grid,
                                  steps_per_beat=grid.steps_per_beat, swing_pct=grid.swing_pct,
                                  kick_s=playing.kick_s, snare_s=playing.snare_s)
    if drummer is not None and drummer.varies:
        followed = MapGrid(drummer.tempo_map, grid.steps_per_beat, grid.swing_pct, span_s)
        feel = _feel_of(followed, playing)
        if auto:
            spec, steps, swing = _resolve(grid_spec, swing_pct, feel)
            followed = MapGrid(drummer.tempo_map, steps, swing, span_s)
        return GridChoice(followed, tuple(cands), feel, drummer.tempo_map, "follow", drummer.changes_s, spec)
    return GridChoice(grid, tuple(cands), feel, None, "given" if bpm is not None else "estimated", (), spec)


def _too_coarse(grid: Grid, playing: Playing) -> bool:
    """Whether a grid twice as fine explains clearly more of the playing: strokes halfway between slots."""
    if playing.times_s.size < 16:
        return False
    pos, beat_ms = _positions_q(grid, playing.times_s)
    own = grid_score(pos, playing.weights, beat_ms, grid.steps_per_beat, grid.swing_pct)
    finer = grid_score(pos, playing.weights, beat_ms, 2.0 * grid.steps_per_beat, 50.0)
    return finer > own + COARSE_MARGIN and 2.0 * grid.bpm <= MAX_AUTO_BPM


def rival_range(candidates: Sequence[TempoCandidate]) -> tuple[float, float]:
    """Tempo range for the beat tracker: around the chosen tempo and any strong rival that is no
    metrical relative of it (a song that changes between the two)."""
    chosen = candidates[0].bpm
    rivals = [c.bpm for c in candidates[1:] if c.strength >= RIVAL_STRENGTH
              and all(abs(c.bpm / (chosen * r) - 1.0) > 0.04 for r in (0.5, 2.0, 1.5, 2.0 / 3.0))]
    return min([chosen, *rivals]) / 1.2, max([chosen, *rivals]) * 1.2
