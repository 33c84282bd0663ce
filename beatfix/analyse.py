"""The analysis pipeline: candidates -> delays -> judge -> tempo -> grid -> slots -> hits -> flams.

Pure: takes a Session, returns an Analysis. madmom is imported only when the
pipeline runs (through :mod:`beatfix.madmom_adapter`), so importing this
module is cheap.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .bleed import reject_bleed
from .delays import drum_of, measure_delays
from .polarity import check_polarity
from .errors import InputError, ParameterError
from .flams import find_flams
from .grid import Grid, check_bpm, parse_grid
from .fitcheck import check_fit
from .hits import classic_judge, group_hits, is_grace
from .heap import return_freed_memory
from .onsets import detect_candidates
from .gridchoice import AUTO, Playing, choose_grid, rival_range
from .tempo import assign_slots, estimate_tempo_activation, prefer_backbeat
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


def _playing(accepted: Sequence[Onset], session: Session, delay_s) -> Playing:
    times = np.array([o.time_s - delay_s.get(o.stem, 0.0) for o in accepted])
    weights = _level_weights(accepted) if accepted else np.zeros(0)
    roles = {s.name: s.role for s in session.stems}
    accents = weights * np.array([1.0 if roles[o.stem] in BEAT_ROLES else OFFBEAT_ACCENT for o in accepted])

    def loud(role: str) -> np.ndarray:
        return np.array([t for o, t, w in zip(accepted, times, weights) if roles[o.stem] == role and w >= 0.5])

    return Playing(times, weights, accents, loud("kick"), loud("snare"))


def _track(activation: np.ndarray, candidates: Sequence[TempoCandidate]) -> np.ndarray | None:
    """madmom's tracked beats around the chosen tempo (None where the tracker finds nothing)."""
    from . import madmom_adapter

    lo, hi = rival_range(candidates)
    try:
        beats = madmom_adapter.track_beats(activation, min_bpm=lo, max_bpm=hi)
    except (ValueError, IndexError):  # odd material: the fixed grid starts the fit instead
        return None
    return beats if beats.size >= 8 else None


def _check(bpm, grid: str, swing_pct: float | None, flam_threshold_ms: float) -> float:
    steps = 4.0 if grid == AUTO else parse_grid(grid)
    if bpm is not None:
        check_bpm(bpm)
    if swing_pct is not None:
        Grid(120.0, 0.0, steps, swing_pct)  # validates the swing
    if not math.isfinite(flam_threshold_ms) or flam_threshold_ms < 0:
        raise ParameterError(f"flam threshold {flam_threshold_ms:g} ms: use 0 or more")
    return steps


def analyse_session(session: Session, *, bpm: float | None = None, grid: str = "1/16", swing_pct: float | None = 50.0,
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
    _check(bpm, grid, swing_pct, flam_threshold_ms)
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
    playing = _playing(accepted, session, delay_s)
    beats = None
    if tempo_map is not None or bpm is not None:
        tempo_candidates = [TempoCandidate(float(bpm or 120.0), 1.0)]
    else:
        mix = np.sum([s.mono() for s in session.close_stems], axis=0)
        estimated, activation = estimate_tempo_activation(mix, session.sample_rate)
        del mix
        tempo_candidates = prefer_backbeat(estimated, _backbeat(accepted, session))
        if follow:
            beats = _track(activation, tempo_candidates)
    choice = choose_grid(playing, span_s=(0.0, session.duration_s), grid_spec=grid, swing_pct=swing_pct, bpm=bpm,
                         tempo_map=tempo_map, candidates=tempo_candidates, grid_offset_s=grid_offset_s,
                         beat_times_s=beats, follow=follow)
    fitted = choice.grid
    times = playing.times_s
    tell("tempo", 1.0)

    tell("hits", 0.0)
    judge_slots = getattr(judge, "assign_slots", None)
    slots = judge_slots(times, fitted) if judge_slots is not None else assign_slots(times, fitted)
    hits, extras = group_hits(accepted, slots, fitted, delay_s)
    fit = check_fit(hits, _collisions(hits, extras, accepted), fitted, candidates=choice.candidates,
                    tempo_source=choice.source, feel=choice.feel, grid_spec=choice.grid_spec)
    flams = find_flams(hits, accepted, drum_of(delays, session), threshold_ms=flam_threshold_ms)
    polarity_check = check_polarity(session, candidates, delays)
    tell("hits", 1.0)
    return Analysis(
        sample_rate=session.sample_rate,
        duration_s=session.duration_s,
        tempo_bpm=fitted.bpm,
        tempo_candidates=_tempo_with(list(choice.candidates), fitted.bpm),
        grid=fitted,
        mic_delays=delays,
        onsets=tuple(accepted),
        rejected=tuple(rejected),
        hits=tuple(hits),
        flams=tuple(flams),
        engine="classic" if judge is None else getattr(judge, "engine", "custom"),
        tempo_map=choice.tempo_map,
        tempo_source=choice.source,
        tempo_changes_s=choice.changes_s,
        feel=choice.feel,
        grid_spec=choice.grid_spec,
        fit=fit,
        polarity_check=polarity_check,
    )


def _collisions(hits, extras, accepted) -> dict[int, list[Onset]]:
    """Onsets left out of their slot's hit that are not a grace note of the stroke kept there."""
    by_key = {(o.stem, o.time_s): o for o in accepted}
    slot_hit = {h.slot: h for h in hits}
    out = {}
    for slot, left in extras.items():
        kept = slot_hit[slot].onsets
        clash = [o for o in left if not is_grace(o, by_key.get((o.stem, kept.get(o.stem)), o))]
        if clash:
            out[slot] = clash
    return out
