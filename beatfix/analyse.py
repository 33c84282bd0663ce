"""The analysis pipeline: candidates -> delays -> judge -> tempo -> grid -> slots -> hits -> flams.

Pure: takes a Session, returns an Analysis. madmom is imported only when the
pipeline runs (through :mod:`beatfix.madmom_adapter`), so importing this
module is cheap.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from .bleed import reject_bleed
from .delays import drum_of, measure_delays
from .errors import InputError, ParameterError
from .flams import find_flams
from .grid import Grid, check_bpm, parse_grid
from .hits import classic_judge, group_hits
from .heap import return_freed_memory
from .onsets import detect_candidates
from .follow import DrummerMap, fit_drummer_map
from .grid import MapGrid
from .tempo import assign_slots, estimate_tempo_activation, fit_grid, prefer_backbeat, prefer_grid_fit
from .tempomap import TempoMap
from .types import Analysis, MicDelay, Onset, Session, TempoCandidate

Judge = Callable[..., tuple[Sequence[Onset], Sequence[Onset]]]
Progress = Callable[[str, float], None]

BEAT_ROLES = frozenset({"kick", "snare"})  # these mark the beat; hats and cymbals subdivide it
OFFBEAT_ACCENT = 0.5
MIN_WEIGHT = 0.05
BACKBEAT_BELOW_DB = 6.0  # snare strokes within this of its loud ones count as backbeats


def _plain(o: Onset) -> Onset:
    """An Onset without a candidate's extra features (what the Analysis keeps)."""
    return Onset(o.stem, float(o.time_s), float(o.level_db), float(o.confidence))


def _level_weights(onsets: Sequence[Onset]) -> np.ndarray:
    """Each onset's level against its stem's loud hits, as a linear weight in [MIN_WEIGHT, 1]."""
    top = {}
    for stem in {o.stem for o in onsets}:
        top[stem] = float(np.percentile([o.level_db for o in onsets if o.stem == stem], 90))
    w = np.array([10 ** ((o.level_db - top[o.stem]) / 20.0) for o in onsets])
    return np.clip(w, MIN_WEIGHT, 1.0)


def _backbeat(onsets: Sequence[Onset], session: Session) -> list[float]:
    """Loud onsets of the first snare mic: the strokes that usually mark beats 2 and 4."""
    snare = next((s.name for s in session.close_stems if s.role == "snare"), None)
    levels = [o.level_db for o in onsets if o.stem == snare]
    if not levels:
        return []
    loud = float(np.percentile(levels, 90)) - BACKBEAT_BELOW_DB
    return [o.time_s for o in onsets if o.stem == snare and o.level_db >= loud]


def _tempo_with(candidates: list[TempoCandidate], refined_bpm: float) -> tuple[TempoCandidate, ...]:
    """Candidates with the chosen one (and its half and double) moved to the refined tempo."""
    chosen = candidates[0].bpm
    out = []
    for c in candidates:
        for ratio in (1.0, 0.5, 2.0):
            if math.isclose(c.bpm, chosen * ratio, rel_tol=1e-9):
                c = TempoCandidate(refined_bpm * ratio, c.strength)
                break
        out.append(c)
    return tuple(out)


def _follow(activation, candidates, times, weights, fixed: Grid, steps, swing_pct, accepted, roles) -> DrummerMap:
    """The drummer's own tempo map: madmom's tracked beats around the chosen tempo, pulled through the hits."""
    from . import madmom_adapter

    chosen = candidates[0].bpm
    # a rival tempo that is no metrical relative of the chosen one: the song may change between them
    rivals = [c.bpm for c in candidates[1:] if c.strength >= 0.15
              and all(abs(c.bpm / (chosen * r) - 1.0) > 0.04 for r in (0.5, 2.0, 1.5, 2.0 / 3.0))]
    lo, hi = min([chosen, *rivals]) / 1.2, max([chosen, *rivals]) * 1.2
    try:
        beats = madmom_adapter.track_beats(activation, min_bpm=lo, max_bpm=hi)
    except Exception:  # the tracker finds nothing on odd material: the fixed grid starts the fit
        beats = None
    strokes = {role: np.array([o.time_s for o, w in zip(accepted, weights) if roles[o.stem] == role and w >= 0.5])
               for role in ("kick", "snare")}
    return fit_drummer_map(times, weights, beat_times_s=beats, fallback=fixed, steps_per_beat=steps,
                           swing_pct=swing_pct, kick_s=strokes["kick"], snare_s=strokes["snare"])


def _check(bpm, grid: str, swing_pct: float, flam_threshold_ms: float) -> float:
    steps = parse_grid(grid)
    if bpm is not None:
        check_bpm(bpm)
    Grid(120.0, 0.0, steps, swing_pct)  # validates the swing
    if not math.isfinite(flam_threshold_ms) or flam_threshold_ms < 0:
        raise ParameterError(f"flam threshold {flam_threshold_ms:g} ms: use 0 or more")
    return steps


def analyse_session(session: Session, *, bpm: float | None = None, grid: str = "1/16", swing_pct: float = 50.0,
                    flam_threshold_ms: float = 4.0, judge: Judge | None = None,
                    grid_offset_s: float | None = None, progress: Progress | None = None,
                    tempo_map: TempoMap | None = None, follow: bool = True) -> Analysis:
    """Analyse a session: onsets, mic delays, bleed, tempo, grid, hits and flams.

    ``judge(candidates, session, delays) -> (accepted, rejected)`` replaces the
    classic bleed judge; a judge with an ``assign_slots(times_s, grid)`` method
    also decides grid slots. ``grid_offset_s`` pins the grid's phase (the time
    of a slot, e.g. bar 1 of the DAW session) instead of fitting it to the
    playing. ``progress(stage, fraction)`` is told how far it got.

    ``tempo_map`` (a DAW's conductor track, a click) gives the grid outright.
    Without it and without ``bpm`` the grid follows the drummer (``follow``):
    a smooth tempo map fitted to the hits replaces the fixed tempo when the
    tempo moves more than :data:`beatfix.follow.VARYING` or changes at once.
    """
    if grid_offset_s is not None and not math.isfinite(grid_offset_s):
        raise ParameterError(f"--grid-offset {grid_offset_s:g}: use a finite time in seconds")
    steps = _check(bpm, grid, swing_pct, flam_threshold_ms)
    if not session.close_stems:
        raise InputError("no close mic in the session (kick, snare, hat, tom...): "
                         "name the files by drum or use --role FILE=ROLE")
    tell = progress or (lambda stage, fraction: None)
    candidates = detect_candidates(session, progress=tell)
    return_freed_memory()  # the onset network's and filters' temporaries, before the judge's peak
    delays: tuple[MicDelay, ...] = measure_delays(session, candidates, progress=tell)
    flat = sorted((c for cands in candidates.values() for c in cands), key=lambda o: (o.time_s, o.stem))
    tell("judge", 0.0)
    accepted, rejected = (judge or classic_judge)(flat, session, delays)
    # whichever judge ran: onsets on another drum's bleed line are bleed (see beatfix.bleed)
    accepted, rejected = reject_bleed(accepted, rejected, session, delays, candidates=candidates)
    close = {s.name for s in session.close_stems}
    accepted = sorted((_plain(o) for o in accepted if o.stem in close), key=lambda o: (o.time_s, o.stem))
    rejected = sorted((_plain(o) for o in rejected if o.stem in close), key=lambda o: (o.time_s, o.stem))
    tell("judge", 1.0)

    tell("tempo", 0.0)
    delay_s = {d.stem: d.delay_ms / 1000.0 for d in delays}
    times = np.array([o.time_s - delay_s.get(o.stem, 0.0) for o in accepted])
    weights = _level_weights(accepted) if accepted else np.zeros(0)
    roles = {s.name: s.role for s in session.stems}
    accents = weights * np.array([1.0 if roles[o.stem] in BEAT_ROLES else OFFBEAT_ACCENT for o in accepted])
    span_s = (0.0, session.duration_s)
    drummer: DrummerMap | None = None
    fitted: Grid | MapGrid
    if tempo_map is not None:
        fitted = MapGrid(tempo_map, steps, swing_pct, span_s)
        tempo_candidates = [TempoCandidate(fitted.bpm, 1.0)]
    else:
        activation = None
        if bpm is not None:
            tempo_candidates = [TempoCandidate(float(bpm), 1.0)]
        else:
            mix = np.sum([s.mono() for s in session.close_stems], axis=0)
            estimated, activation = estimate_tempo_activation(mix, session.sample_rate)
            del mix
            tempo_candidates = prefer_backbeat(estimated, _backbeat(accepted, session))
        tempo_candidates = prefer_grid_fit(tempo_candidates, times, weights, steps_per_beat=steps,
                                           swing_pct=swing_pct)
        fitted = fit_grid(times, weights, bpm=tempo_candidates[0].bpm, steps_per_beat=steps, swing_pct=swing_pct,
                          fixed_bpm=bpm is not None, accents=accents)
        if grid_offset_s is not None:
            fitted = replace(fitted, offset_s=float(grid_offset_s))
        if bpm is None and follow and activation is not None and times.size >= 16:
            drummer = _follow(activation, tempo_candidates, times, weights, fitted, steps, swing_pct, accepted, roles)
            if drummer.varies:
                fitted = MapGrid(drummer.tempo_map, steps, swing_pct, span_s)
    tell("tempo", 1.0)

    tell("hits", 0.0)
    judge_slots = getattr(judge, "assign_slots", None)
    slots = judge_slots(times, fitted) if judge_slots is not None else assign_slots(times, fitted)
    hits, _ = group_hits(accepted, slots, fitted, delay_s)
    flams = find_flams(hits, accepted, drum_of(delays, session), threshold_ms=flam_threshold_ms)
    tell("hits", 1.0)
    return Analysis(
        sample_rate=session.sample_rate,
        duration_s=session.duration_s,
        tempo_bpm=fitted.bpm,
        tempo_candidates=_tempo_with(tempo_candidates, fitted.bpm),
        grid=fitted,
        mic_delays=delays,
        onsets=tuple(accepted),
        rejected=tuple(rejected),
        hits=tuple(hits),
        flams=tuple(flams),
        engine="classic" if judge is None else getattr(judge, "engine", "custom"),
        tempo_map=tempo_map if tempo_map is not None else (drummer.tempo_map if drummer and drummer.varies else None),
        tempo_source="map" if tempo_map is not None else "given" if bpm is not None else (
            "follow" if drummer is not None and drummer.varies else "estimated"),
        tempo_changes_s=drummer.changes_s if drummer is not None and drummer.varies else (),
    )
