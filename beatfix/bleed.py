"""Bleed-path consistency: the last word on onsets a judge accepted in one close mic for another drum.

Bleed is linear acoustics. Drum B heard in the close mic of drum A arrives a
fixed 0.3-6 ms after B's own mic hears it, at a nearly constant level ratio and
with B's colour (its band profile through a fixed path filter), however hard B
was struck. An own stroke of A landing with B is different on every count: its
lag to B is the players' timing (scattered over ms), its level is far above the
path's and its spectrum is A's own.

Per-mic level references cannot see this: every stem is normalised to about
-3 dBFS peak, so a tom mic on a take without toms has bleed as its loudest
content, and a judge comparing a candidate with "the mic's own strokes" accepts
the bleed. The path is a reference that normalisation does not move: for each
ordered pair of close mics of different roles (source B -> mic A), the lags
from B's candidates to A's cluster tightly at the path delay, and the level
differences of those coincident pairs form the path's bleed line. An onset of A
on that line (lag on the path delay, level within a few dB of the line, band
profile the path's) is B's bleed, whatever the judge said.

Pure functions of the judge's output; same-role mics (kick in/out, snare
top/bottom) are never compared, so a second mic of one drum is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from .types import MicDelay, Onset, Session

LAG_RANGE_MS = (0.2, 6.5)  # B's sound reaches another drum's close mic this much after B's own
LAG_TOLERANCE_MS = 0.25  # bleed arrivals of one path scatter this little around its delay
MIN_PATH_PAIRS = 6  # coincident pairs on one delay needed before a path is believed...
MIN_PATH_SHARE = 0.25  # ...and their share of all coincident pairs of the two mics
SETTLE_ROUNDS = 2  # rounds of finding paths from the candidates not on a path
BLEED_CONFIDENCE = 0.25  # what an onset moved to the rejected keeps as its own-drum probability
TOP_CANDIDATES = 5  # a mic whose loudest candidates...
BLEED_ONLY_TOP = 0.6  # ...are this much on bleed lines hears bleed only...
OVER_LOUDEST_BLEED_DB = 3.0  # ...and an onset of it up to this above its loudest bleed is bleed too
RECIPROCAL_DB = 30.0  # two mics' lines for each other's drums add up to at least this much below 0
MAX_PATHS = 2  # a source mic may show two delays (its drum's attack refined two ways)
LINE_QUANTILE = 0.5  # the bleed line: this quantile of the level differences on the delay
ABOVE_LINE_DB = 6.0  # an onset up to this much above the line is the path's bleed...
BAND_MARGIN_DB = 6.0  # ...unless, counting a band up to this much louder than the paths bring as theirs,
UNEXPLAINED_DB = -6.0  # ...more than this share (a quarter) of its new energy is left: its own colour
SHAPE_RANGE_DB = 30.0  # a band's new energy counts as at most this far below the strongest band's
NEAR_DELAY_MS = 1.5  # off the delay by up to this (a soft kick's attack refines late or early)...
NEAR_ABOVE_LINE_DB = 0.0  # ...an onset is bleed only if no louder than the paths bring...
NEAR_UNEXPLAINED_DB = -10.0  # ...and hardly any of its energy is its own
EXPLAIN_MS = (1.0, 8.0)  # bleed arriving this long before / after an onset adds to what it measures


@dataclass(frozen=True)
class BleedPath:
    """How the drum of mic ``source`` arrives in mic ``mic``: delay and line, from coincident candidates."""

    mic: str
    source: str
    delay_ms: float
    line_db: float  # level of the bleed minus the source's, dB
    band_offset_db: np.ndarray  # per band, the bleed's new energy minus the source's, dB
    n_pairs: int
    r: float = 0.0
    scatter_db: float = 0.0


def _bands(o) -> np.ndarray | None:
    """New energy per band, floored SHAPE_RANGE_DB under the strongest: an empty band is 'little', not -140 dB."""
    b = getattr(o, "band_db", ())
    if not b:
        return None
    b = np.asarray(b, dtype=float)
    return np.maximum(b, b.max() - SHAPE_RANGE_DB)


def _coincident(a_times: np.ndarray, b_times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index in A, index in B, lag ms) of every B candidate 0.2-6.5 ms before an A candidate."""
    lo, hi = (ms / 1000.0 for ms in LAG_RANGE_MS)
    rows_a: list[int] = []
    rows_b: list[int] = []
    for i, t in enumerate(a_times):
        j0, j1 = np.searchsorted(b_times, [t - hi, t - lo], side="left")
        rows_a += [i] * (j1 - j0)
        rows_b += range(j0, j1)
    ia, ib = np.asarray(rows_a, dtype=np.int64), np.asarray(rows_b, dtype=np.int64)
    return ia, ib, (a_times[ia] - b_times[ib]) * 1000.0 if ia.size else np.zeros(0)


def _delay_modes(lags_ms: np.ndarray) -> list[np.ndarray]:
    """Index groups of lags around the densest delays (a KDE's modes, box kernel of LAG_TOLERANCE_MS)."""
    out: list[np.ndarray] = []
    left = np.arange(lags_ms.size)
    need = max(MIN_PATH_PAIRS, MIN_PATH_SHARE * lags_ms.size)
    while left.size and len(out) < MAX_PATHS:
        x = lags_ms[left]
        support = (np.abs(x[:, None] - x[None, :]) <= LAG_TOLERANCE_MS).sum(axis=1)
        k = int(np.argmax(support))
        if support[k] < need:
            break
        centre = float(np.median(x[np.abs(x - x[k]) <= LAG_TOLERANCE_MS]))
        members = np.abs(x - centre) <= LAG_TOLERANCE_MS
        out.append(left[members])
        left = left[~members]
    return out


def find_paths(candidates: Mapping[str, Sequence[Onset]], roles: Mapping[str, str],
               sources: Mapping[str, np.ndarray] | None = None) -> list[BleedPath]:
    """Every bleed path between close mics of different roles that the candidates show.

    ``sources`` (mic -> bool per candidate) limits which candidates of a mic
    may be the source of a pair; by default all.
    """
    out = []
    times = {m: np.array([c.time_s for c in cs]) for m, cs in candidates.items()}
    for a, a_cands in candidates.items():
        for b, b_cands in candidates.items():
            if roles[a] == roles[b] or not len(a_cands) or not len(b_cands):
                continue
            usable = np.flatnonzero(sources[b]) if sources is not None else np.arange(len(b_cands))
            ia, ib, lags = _coincident(times[a], times[b][usable])
            ib = usable[ib]
            for group in _delay_modes(lags):
                diffs = np.array([a_cands[ia[g]].level_db - b_cands[ib[g]].level_db for g in group])
                line = float(np.quantile(diffs, LINE_QUANTILE))
                la = np.array([a_cands[ia[g]].level_db for g in group])
                lb = np.array([b_cands[ib[g]].level_db for g in group])
                r = float(np.corrcoef(la, lb)[0, 1]) if np.std(la) > 0 and np.std(lb) > 0 else 0.0
                scatter = float(np.std(diffs))
                offsets = [band_a - band_b for g in group
                           if (band_a := _bands(a_cands[ia[g]])) is not None
                           and (band_b := _bands(b_cands[ib[g]])) is not None]
                band_offset = np.median(offsets, axis=0) if offsets else np.zeros(0)
                out.append(BleedPath(a, b, float(np.median(lags[group])), line, band_offset, len(group), r, scatter))
    return out


def _on_line(candidates: Mapping[str, Sequence[Onset]], paths: Sequence[BleedPath]) -> dict[str, np.ndarray]:
    """Mic -> per candidate, whether it arrives on a path's delay within ABOVE_LINE_DB of its line."""
    times = {m: np.array([c.time_s for c in cs]) for m, cs in candidates.items()}
    out = {m: np.zeros(len(cs), dtype=bool) for m, cs in candidates.items()}
    for p in paths:
        src = times[p.source]
        for i, o in enumerate(candidates[p.mic]):
            j = int(np.searchsorted(src, o.time_s - p.delay_ms / 1000.0))
            for k in (j - 1, j):
                if 0 <= k < src.size and abs(src[k] + p.delay_ms / 1000.0 - o.time_s) * 1000.0 <= LAG_TOLERANCE_MS:
                    out[p.mic][i] |= o.level_db - candidates[p.source][k].level_db - p.line_db <= ABOVE_LINE_DB
    return out


def primary_paths(candidates: Mapping[str, Sequence[Onset]], roles: Mapping[str, str]) -> list[BleedPath]:
    """The paths from a drum's own strokes, without those between two mics that hear a third drum.

    The kick and a tom mic both hear the hat, each at its own delay, so the tom
    mic's hat bleed and the kick mic's line up at a tight lag as well: a path
    that is no path. A drum's own mic hears it first and loudest, so a
    candidate that is itself on a path's line is no source; a few rounds
    settle which candidates are (the first round knows only the raw clusters).
    """
    paths = _reciprocal(find_paths(candidates, roles))
    for _ in range(SETTLE_ROUNDS):
        sources = {m: ~v for m, v in _on_line(candidates, paths).items()}
        paths = find_paths(candidates, roles, sources)
    return _reciprocal(paths)


def _reciprocal(paths: Sequence[BleedPath]) -> list[BleedPath]:
    """The paths without those a path the other way proves impossible.

    Normalising a stem moves the line of A <- B up by what it moves A <- B's
    reverse down, so the two lines add up to the physical gains alone: two
    close mics each hear the other's drum 15-35 dB down, together at least
    RECIPROCAL_DB. A pair of lines adding up to more holds a path that is
    really two own strokes played together, or one mic's bleed lining up
    with the other's own strokes: the path with fewer pairs goes (the
    higher line on a tie), since a drum's real bleed follows all its strokes.
    """
    drop = set()
    for p in paths:
        for q in paths:
            if (q.mic, q.source) == (p.source, p.mic) and p.line_db + q.line_db > -RECIPROCAL_DB:
                drop.add(id(p) if (p.n_pairs, -p.line_db) < (q.n_pairs, -q.line_db) else id(q))
    return [p for p in paths if id(p) not in drop]


def _explained(onset, sources: Sequence[tuple[BleedPath, Onset]]) -> tuple[float, float]:
    """(level over, unexplained share) of ``onset`` against all the bleed its sources bring together, dB.

    A tom mic hears the hat and the kick of one beat at once: the level and the
    bands it must be compared with are the sum of what each path brings.
    """
    level = 10.0 * np.log10(sum(10 ** ((s.level_db + p.line_db) / 10.0) for p, s in sources))
    over = onset.level_db - level
    a = _bands(onset)
    expected = [10 ** ((bands + p.band_offset_db) / 10.0) for p, s in sources
                if (bands := _bands(s)) is not None and p.band_offset_db.size == bands.size]
    if a is None or not expected or len(expected[0]) != a.size:
        return over, 0.0
    power, e = np.power(10.0, a / 10.0), np.sum(expected, axis=0)
    unexplained = np.maximum(power - e * 10 ** (BAND_MARGIN_DB / 10.0), 0.0).sum()
    return over, float(10.0 * np.log10(unexplained / power.sum() + 1e-14))


def bleed_verdicts(onsets: Sequence[Onset], candidates: Mapping[str, Sequence[Onset]], paths: Sequence[BleedPath]
                   ) -> dict[int, tuple[BleedPath, ...]]:
    """Index in ``onsets`` -> the paths it is bleed of, for the onsets that sit on a path and its line."""
    out = {}
    times = {m: np.array([c.time_s for c in cs]) for m, cs in candidates.items()}
    by_mic: dict[str, list[BleedPath]] = {}
    for p in paths:
        by_mic.setdefault(p.mic, []).append(p)
    for i, o in enumerate(onsets):
        on_delay, near_delay, sources = False, False, []
        for p in by_mic.get(o.stem, ()):
            bt = times[p.source]
            arrivals = (bt + p.delay_ms / 1000.0 - o.time_s) * 1000.0
            near = np.flatnonzero((arrivals >= -EXPLAIN_MS[0]) & (arrivals <= EXPLAIN_MS[1]))
            for k in near:
                on_delay |= abs(arrivals[k]) <= LAG_TOLERANCE_MS
                near_delay |= abs(arrivals[k]) <= NEAR_DELAY_MS
                sources.append((p, candidates[p.source][int(k)]))
        if not near_delay:
            continue
        over, colour = _explained(o, sources)
        if (over <= ABOVE_LINE_DB and colour <= UNEXPLAINED_DB) if on_delay else \
                (over <= NEAR_ABOVE_LINE_DB and colour <= NEAR_UNEXPLAINED_DB):
            out[i] = tuple(p for p, _ in sources)
    return out


def _key(o) -> tuple:
    """What a judge keeps of a candidate when it sets its confidence or refines its time."""
    return o.stem, float(o.level_db), getattr(o, "coarse_s", None)


def _bleed_only_mics(accepted: Sequence[Onset], candidates: Mapping[str, Sequence[Onset]], bleed: set) -> set:
    """Keys of the accepted onsets of mics that hear bleed only, no louder than their loudest bleed.

    A tom mic on a take without toms also hears drums with no close mic (a
    crash, the ride) and strokes no path pairs up: nothing to measure a line
    on. Where most of a mic's loudest candidates sit on bleed lines, it has no
    own drum in the take (its own drum, when struck, stands 15 dB and more
    above every other drum's bleed), and its loudest bleed is the reference.
    """
    out = set()
    for mic, cands in candidates.items():
        loudest = sorted(cands, key=lambda c: c.level_db, reverse=True)[:TOP_CANDIDATES]
        if sum(_key(c) in bleed for c in loudest) < BLEED_ONLY_TOP * len(loudest) or len(cands) < MIN_PATH_PAIRS:
            continue
        top_bleed = max(c.level_db for c in cands if _key(c) in bleed)
        out |= {_key(o) for o in accepted if o.stem == mic and o.level_db <= top_bleed + OVER_LOUDEST_BLEED_DB}
    return out


def reject_bleed(accepted: Sequence[Onset], rejected: Sequence[Onset], session: Session,
                 delays: Sequence[MicDelay] = (), *, candidates: Mapping[str, Sequence[Onset]] | None = None
                 ) -> tuple[list[Onset], list[Onset]]:
    """``(accepted, rejected)`` with the accepted onsets that sit on a bleed line moved to rejected.

    ``candidates`` (stem -> its candidates) are what the paths are measured on
    and the verdicts given to, in the detector's own times, so a judge that
    refines times changes nothing here; by default the judge's accepted and
    rejected onsets together. ``delays`` is accepted for the judge's signature.
    """
    roles = {s.name: s.role for s in session.close_stems}
    if candidates is None:
        pooled: dict[str, list[Onset]] = {}
        for o in list(accepted) + list(rejected):
            pooled.setdefault(o.stem, []).append(o)
        candidates = pooled
    candidates = {m: sorted(cs, key=lambda c: c.time_s) for m, cs in candidates.items() if m in roles and cs}
    flat = [c for cs in candidates.values() for c in cs]
    bleed = {_key(flat[i]) for i in bleed_verdicts(flat, candidates, primary_paths(candidates, roles))}
    bleed |= _bleed_only_mics(accepted, candidates, bleed)
    keep = [o for o in accepted if _key(o) not in bleed]
    moved = [replace(o, confidence=min(float(o.confidence), BLEED_CONFIDENCE)) for o in accepted
             if _key(o) in bleed]
    return keep, sorted(list(rejected) + moved, key=lambda o: (o.time_s, o.stem))
