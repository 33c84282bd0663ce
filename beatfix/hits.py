"""The classic judge (own drum or bleed?) and the grouping of accepted onsets into hits.

Bleed is drum B's sound arriving in mic A. For every candidate in A the judge
weighs, as log-odds:

* **timing**: bleed arrives a fixed acoustic delay after B's attack. The delay
  of each path A <- B is measured by cross-correlation on B's strong strokes,
  and a candidate that lands on it (within a few tenths of a ms) looks like bleed;
* **level and spectrum**: every stroke of another drum just before the
  candidate (or landing inside its feature window) brings a known share of
  its energy, band by band, through the path gain. A candidate far louder
  than all of that together, or with energy in bands the sources cannot
  explain (a hat stroke's top end under snare bleed, a ghost stroke's body
  under hat bleed), is the mic's own drum, whatever the timing says;
* **weakness**: far below the mic's own typical strokes leans towards bleed;
* **spurious**: a barely-there rise with no new top end, or one the onset
  network hardly noticed, in the ringing right after another drum's stroke,
  is not a stroke at all.

A judge is any callable ``judge(candidates, session, delays) -> (accepted,
rejected)``: the neural engine plugs in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from .delays import drum_of, measure_pair, measuring_hits, strong_hits, transfer_gain_db
from .onsets import BAND_EDGES_HZ, SPECTRUM_MS, Candidate
from .types import Hit, MicDelay, Onset, Session

BLEED_WINDOW_MS = (-1.0, 8.0)  # a source this long before a candidate may be what it hears
TIMING_SIGMA_MS = 0.3  # scatter of a bleed arrival around its path's delay
EXPLAIN_MS = 20.0  # strokes up to this long before a candidate may explain its energy
TAIL_MS = 40.0  # ...and up to this long before, leave a ringing tail
GAIN_MATCH_MS = 0.5  # a candidate this close to a bleed arrival measures the path gain
MIN_GAIN_MATCHES = 3
ASSUMED_BLEED_DB = -15.0  # path gain when it could not be measured
BLEED_EXCESS_DB = 3.0  # up to this louder than the sources can bring still looks like bleed
UNEXPLAINED_DB = -6.0  # more than this share (a quarter) unexplained by the sources: own drum
WEAK_BELOW_OWN_DB = 12.0  # weaker than this against the mic's own strokes leans towards bleed
UNATTRIBUTED_BELOW_OWN_DB = 35.0  # with no source in another close mic, this weak is bleed...
UNLIKE_DB = 9.0  # ...and so is a weak one whose spectrum differs from the mic's own strokes by more (mean dB)
SHAPE_FLOOR_DB = -40.0
CLEAR_RISE_DB = 8.0  # a rise smaller than this over what was ringing is suspect...
HF_FROM_HZ = 1440.0
DULL_BELOW_DB = -20.0  # ...above all if it adds hardly anything above HF_FROM_HZ
WEAK_ACTIVATION = 0.2  # ...or the onset network barely noticed it
ACCEPT = 0.5


@dataclass(frozen=True)
class _Path:
    """How drum B's attacks arrive in mic A: delay (ms) and gain (dB of added energy)."""

    delay_ms: float | None
    gain_db: float | None


def _unexplained_db(c: Candidate, expected: np.ndarray) -> float:
    """Share of ``c``'s new energy (dB, 0 = all) that the expected bleed per band cannot explain.

    Band by band: a hat stroke under loud snare bleed still has far more top
    end than the snare brings; a ghost stroke under hat bleed far more body.
    """
    own = np.power(10.0, np.asarray(c.band_db) / 10.0)
    total = own.sum()
    return float(10.0 * np.log10(np.maximum(own - expected, 0.0).sum() / total + 1e-14)) if total > 0 else -140.0


def _hf_share_db(c: Candidate) -> float:
    """New energy above HF_FROM_HZ against all new energy, dB."""
    edges = np.asarray(BAND_EDGES_HZ[:-1])
    band = np.power(10.0, np.asarray(c.band_db) / 10.0)
    total = band.sum()
    return float(10.0 * np.log10(band[edges >= HF_FROM_HZ].sum() / total + 1e-14)) if total > 0 else -140.0


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def _paths(by_stem: Mapping[str, list[Candidate]], session: Session, drum: Mapping[str, str]
           ) -> dict[tuple[str, str], _Path]:
    """Bleed path (mic A <- drum of mic B) for every pair of mics on different drums, raw stem times."""
    out = {}
    strong, isolated = measuring_hits({name: strong_hits(cands) for name, cands in by_stem.items()}, drum)
    for a in by_stem:
        for b in by_stem:
            if drum[a] == drum[b] or not strong[b] or not by_stem[a]:
                continue
            measured = measure_pair(session.stem(b), strong[b], session.stem(a))
            if measured is None:
                out[(a, b)] = _Path(None, None)
                continue
            # B's strokes alone: what A triggers on at their arrival is pure bleed, colour and all.
            # B's strokes always with others: only a projection separates B's share.
            gain_db = _path_gain_db(by_stem[a], strong[b], measured[0]) if b in isolated else None
            if gain_db is None:
                gain_db = transfer_gain_db(session.stem(b), strong[b], session.stem(a), measured[0])
            out[(a, b)] = _Path(measured[0], gain_db)
    return out


def _path_gain_db(a_cands: Sequence[Candidate], b_hits: Sequence[Candidate], delay_ms: float) -> float | None:
    """Median added level of A's candidates where B's isolated strokes arrive, minus B's: the
    bleed gain in the very measure the judge compares (colour included, unlike a projection)."""
    a_times = np.array([c.time_s for c in a_cands])
    gains = []
    for cb in b_hits:
        i = int(np.argmin(np.abs(a_times - (cb.time_s + delay_ms / 1000.0))))
        if abs(a_times[i] - cb.time_s - delay_ms / 1000.0) * 1000.0 <= GAIN_MATCH_MS:
            gains.append(a_cands[i].added_db - cb.added_db)
    return float(np.median(gains)) if len(gains) >= MIN_GAIN_MATCHES else None


def _shape(c: Candidate) -> np.ndarray:
    """Spectral shape of a candidate's new energy: band levels against its total, dB, floored."""
    return np.maximum(np.asarray(c.band_db) - c.added_db, SHAPE_FLOOR_DB)


@dataclass(frozen=True)
class _Own:
    """A mic's own strokes: typical added level (dB) and spectral shape."""

    level_db: float
    shape: np.ndarray

    @classmethod
    def of(cls, cands: Sequence[Candidate]) -> "_Own | None":
        hits = strong_hits(cands)
        if not hits:
            return None
        return cls(float(np.median([c.added_db for c in hits])), np.median([_shape(c) for c in hits], axis=0))


@dataclass(frozen=True)
class _Strokes:
    """One mic's candidates as arrays, for fast windowed look-ups."""

    times_s: np.ndarray
    band_power: np.ndarray  # (n, n_bands) linear mean square
    added_db: np.ndarray

    @classmethod
    def of(cls, cands: Sequence[Candidate]) -> "_Strokes":
        return cls(np.array([c.time_s for c in cands]),
                   np.power(10.0, np.array([c.band_db for c in cands]) / 10.0).reshape(len(cands), -1),
                   np.array([c.added_db for c in cands]))


def _bleed_logit(c: Candidate, a: str, strokes: Mapping[str, _Strokes], drum, paths,
                 refs: Mapping[str, _Own]) -> float:
    """Log-odds that candidate ``c`` in mic ``a`` is other drums' bleed, not its own drum."""
    rel_db = c.added_db - refs[a].level_db if a in refs else 0.0
    weakness = _clip((-rel_db - WEAK_BELOW_OWN_DB) / 6.0, -2.0, 2.0) if a in refs else 0.0
    timing = None  # how well the best-placed source's arrival fits its measured path
    # What the other drums' strokes bring into the candidate's feature window,
    # per band: those just before it and those whose bleed lands inside it.
    expected = np.zeros(len(c.band_db))
    in_tail = False
    for b, st in strokes.items():
        if drum[b] == drum[a] or st.times_s.size == 0:
            continue
        lo = np.searchsorted(st.times_s, c.time_s - TAIL_MS / 1000.0, side="left")
        hi = np.searchsorted(st.times_s, c.time_s + SPECTRUM_MS / 1000.0, side="right")
        if hi <= lo:
            continue
        path = paths.get((a, b), _Path(None, None))
        gain = 10.0 ** ((path.gain_db if path.gain_db is not None else ASSUMED_BLEED_DB) / 10.0)
        dt_ms = (c.time_s - st.times_s[lo:hi]) * 1000.0
        explain = dt_ms <= EXPLAIN_MS
        expected += gain * st.band_power[lo:hi][explain].sum(axis=0)
        in_tail |= bool(np.any((dt_ms > BLEED_WINDOW_MS[1]) & (st.added_db[lo:hi] > c.added_db)))
        near = dt_ms[(dt_ms >= BLEED_WINDOW_MS[0]) & (dt_ms <= BLEED_WINDOW_MS[1])]
        if near.size:
            if path.delay_ms is not None:
                miss = (near - path.delay_ms) / TIMING_SIGMA_MS
                fit = float(np.clip(2.5 - 0.5 * miss * miss, -1.5, 2.5).max())
            else:
                fit = 0.5 if np.any((near >= 0.3) & (near <= 6.0)) else -0.5
            timing = fit if timing is None else max(timing, fit)
    # A barely-there rise with no new top end is a ringing body beating, not a
    # stroke: a stick always adds a click, even under a loud decay.
    dull = _hf_share_db(c) < DULL_BELOW_DB
    spurious = _clip(CLEAR_RISE_DB - c.rise_db, 0.0, 3.0) * (1.0 if dull else 0.3)
    spurious += 1.0 if c.activation < WEAK_ACTIVATION else 0.0
    # an unclear rise in the ringing right after another drum's stroke is that stroke's bleed
    spurious += 2.0 if in_tail and c.rise_db < CLEAR_RISE_DB and rel_db < -WEAK_BELOW_OWN_DB else 0.0
    if timing is None:
        # No stroke in another close mic: a drum without one (a ride, a crash
        # heard in the kick mic) only if weak and unlike the mic's own strokes.
        if a not in refs:
            return -2.0 + spurious
        unattributed = _clip((-rel_db - UNATTRIBUTED_BELOW_OWN_DB) / 5.0, 0.0, 4.0)
        unlike_db = float(np.mean(np.abs(_shape(c) - refs[a].shape)))
        unlike = _clip((unlike_db - UNLIKE_DB) / 3.0, 0.0, 3.0) * _clip((-rel_db - 10.0) / 10.0, 0.0, 1.0)
        return -2.0 + spurious + unattributed + unlike
    excess_db = c.added_db - 10.0 * np.log10(expected.sum() + 1e-30)
    # far more energy than the sources can bring outweighs any timing coincidence
    level = _clip(1.5 - (excess_db - BLEED_EXCESS_DB) / 2.0, -6.0, 1.5)
    spectrum = _clip((UNEXPLAINED_DB - _unexplained_db(c, expected)) / 3.0, -2.0, 2.0)
    return timing + level + spectrum + weakness + spurious


def classic_judge(candidates: Sequence[Candidate] | Mapping[str, Sequence[Candidate]], session: Session,
                  delays: Sequence[MicDelay] | None = None) -> tuple[list[Onset], list[Onset]]:
    """Split candidates (:class:`~beatfix.onsets.Candidate`, flat or by stem) into own-drum onsets and bleed.

    ``confidence`` of every returned onset is the probability that it is its
    stem's own drum. Times are not changed.
    """
    delays = tuple(delays or ())
    if isinstance(candidates, Mapping):  # detect_candidates' own output, stem -> candidates
        candidates = [c for group in candidates.values() for c in group]
    close = {s.name for s in session.close_stems}
    by_stem: dict[str, list[Candidate]] = {}
    for c in sorted(candidates, key=lambda o: o.time_s):
        if c.stem in close:
            by_stem.setdefault(c.stem, []).append(c)
    drum = drum_of(delays, session)
    paths = _paths(by_stem, session, drum)
    # two passes: a mic's own typical level and sound come from what survived the first
    strokes = {a: _Strokes.of(cands) for a, cands in by_stem.items()}
    refs = {a: r for a, cands in by_stem.items() if (r := _Own.of(cands)) is not None}
    verdict: dict[str, list[float]] = {}
    for _ in range(2):
        verdict = {a: [float(1.0 / (1.0 + np.exp(_bleed_logit(c, a, strokes, drum, paths, refs))))
                       for c in cands] for a, cands in by_stem.items()}
        refs = {a: r for a, cands in by_stem.items()
                if (r := _Own.of([c for c, p in zip(cands, verdict[a]) if p >= ACCEPT])) is not None}
    accepted: list[Onset] = []
    rejected: list[Onset] = []
    for a, cands in by_stem.items():
        for c, p in zip(cands, verdict[a]):
            (accepted if p >= ACCEPT else rejected).append(replace(c, confidence=p))
    key = lambda o: (o.time_s, o.stem)  # noqa: E731
    return sorted(accepted, key=key), sorted(rejected, key=key)


# ----------------------------------------------------------------------------- grouping


GRACE_GAP_MS = (8.0, 45.0)  # a softer onset this long before a stroke of the same drum is its grace note
GRACE_SOFTER_DB = 3.0


def is_grace(grace: Onset, main: Onset) -> bool:
    """Whether ``grace`` is a grace note of ``main`` (same stem, just before it, softer)."""
    gap_ms = (main.time_s - grace.time_s) * 1000.0
    return (grace.stem == main.stem and GRACE_GAP_MS[0] <= gap_ms <= GRACE_GAP_MS[1]
            and grace.level_db <= main.level_db - GRACE_SOFTER_DB)


def group_hits(onsets: Sequence[Onset], slots: Sequence[int] | np.ndarray, grid, delay_s: Mapping[str, float]
               ) -> tuple[list[Hit], dict[int, list[Onset]]]:
    """One Hit per occupied slot, plus the onsets left out of each hit (slot -> onsets).

    Times are compared after subtracting each stem's delay. Where one stem has
    two onsets in a slot, the louder is its onset in the hit; a grace note just
    before it still moves ``earliest_s`` so that a cut never separates a flam.
    """
    by_slot: dict[int, list[Onset]] = {}
    for onset, slot in zip(onsets, slots):
        by_slot.setdefault(int(slot), []).append(onset)
    hits, extras = [], {}
    for slot in sorted(by_slot):
        chosen: dict[str, Onset] = {}
        for o in sorted(by_slot[slot], key=lambda o: -o.level_db):
            chosen.setdefault(o.stem, o)
        left = [o for o in by_slot[slot] if chosen[o.stem] is not o]
        comp = {stem: o.time_s - delay_s.get(stem, 0.0) for stem, o in chosen.items()}
        earliest, latest = min(comp.values()), max(comp.values())
        graces = [o.time_s - delay_s.get(o.stem, 0.0) for o in left if is_grace(o, chosen[o.stem])]
        time_s = 0.5 * (earliest + latest)
        hits.append(Hit(
            time_s=time_s,
            earliest_s=min([earliest, *graces]),
            slot=slot,
            deviation_ms=float(grid.deviation_ms(time_s, slot)),
            onsets={stem: o.time_s for stem, o in sorted(chosen.items())},
            spread_ms=(latest - earliest) * 1000.0,
        ))
        if left:
            extras[slot] = sorted(left, key=lambda o: o.time_s)
    return hits, extras
