"""Static delay and polarity of every stem against the close mics.

For each (stem, close mic) pair, a short window around each of the close
mic's strong strokes is cross-correlated with the same stretch of the stem
(GCC-PHAT: whitened, so the peak is a few samples wide whatever the drum).
The peak of |correlation| gives a lag (sub-sample, by parabolic
interpolation) and a sign per stroke. The largest group of strokes that agree
to AGREE_MS wins the vote and its median lag is the delay: strokes where
another drum dominates the stem disagree with each other and are outvoted.
Strokes another drum plays along with (the hat on the backbeat, with the
snare) are left out where enough others are left: they measure the wrong drum.

Two close mics of one role are one drum only if they share most of their
strong hits (kick in/out, snare top/bottom); two rack toms are two drums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from .onsets import Candidate
from .types import MicDelay, Session, Stem

STRONG_BELOW_TOP_DB = 8.0  # hits within this of a mic's top level measure its delays
STRONG_MIN_RISE_DB = 10.0
MAX_HITS = 40
ISOLATION_MS = 15.0  # a stroke is isolated if no other drum's strong stroke came up to this much before it
ALONG_WITHIN_MS = 15.0  # ...or comes up to this much after it
TOP_RANK = 3
BLEED_MAX_MS = 8.0
BLEED_ONLY_SHARE = 0.6  # this share of a mic's strong hits trailing another drum at one delay: it has no own
MIN_ISOLATED = 4
WINDOW_MS = (1.0, 25.0)  # close-mic window: 1 ms before to 25 ms after the attack
MAX_LEAD_MS = 3.0  # a stem may hear the kit this much earlier than a close mic (mic placement)
MAX_LAG_MS = 60.0  # ...or this much later (a room mic 20 m away)
PHAT_BETA = 0.85  # nearly full PHAT: a sharp peak, with a little weight left on the drum's own band
SAME_DRUM_MS = 3.0  # two mics of one drum hear its attacks this close together
SAME_DRUM_SHARE = 0.5  # ...for at least this share of the strong hits
AGREE_MS = 0.15  # per-hit lags this close agree
MIN_AGREEING = 2  # hits that must agree before a delay is reported...
MIN_AGREE_SHARE = 0.3  # ...and their share of the hits measured


def strong_hits(cands: Sequence[Candidate]) -> list[Candidate]:
    """The loudest clean attacks of one mic: almost surely its own drum, not bleed."""
    if not cands:
        return []
    # the third loudest, not a percentile: a tom mic may hear its own drum a
    # handful of times and the kick's bleed hundreds
    levels = sorted((c.level_db for c in cands), reverse=True)
    top = levels[min(TOP_RANK, len(levels)) - 1]
    return [c for c in cands if c.level_db >= top - STRONG_BELOW_TOP_DB and c.rise_db >= STRONG_MIN_RISE_DB]


def measuring_hits(strong: Mapping[str, Sequence[Candidate]], drum: Mapping[str, str]
                   ) -> tuple[dict[str, list[Candidate]], set[str]]:
    """Per close mic, the strong hits to measure delays on: those no other drum plays along with.

    A hat stroke on the backbeat comes with the snare, which the hat mic hears
    loudly too: measured against the overheads it would report the snare's
    delay. Isolated strokes (at most MAX_HITS, spread over the session) do
    not; if too few are isolated, all strong hits are used and the vote over
    hits has to sort it out. Returns the hits and the names of the mics
    whose hits are isolated.
    """
    out: dict[str, list[Candidate]] = {}
    isolated: set[str] = set()
    for name, hits in strong.items():
        others = np.sort([c.time_s for other, hs in strong.items() if drum.get(other, other) != drum.get(name, name)
                          for c in hs])
        if _bleed_only(hits, others):
            out[name] = []  # a tom mic on a take without toms: its loudest strokes are another drum's
            continue
        alone = [c for c in hits if not np.any((others > c.time_s - ISOLATION_MS / 1000.0)
                                               & (others < c.time_s + ALONG_WITHIN_MS / 1000.0))]
        chosen = alone if len(alone) >= MIN_ISOLATED else list(hits)
        if len(alone) >= MIN_ISOLATED:
            isolated.add(name)
        if len(chosen) > MAX_HITS:
            chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1, MAX_HITS).round().astype(int)]
        out[name] = sorted(chosen, key=lambda c: c.time_s)
    return out, isolated


def _bleed_only(hits: Sequence[Candidate], others: np.ndarray) -> bool:
    """Whether most of a mic's strong hits trail another drum's at one fixed delay (its bleed)."""
    if not hits or others.size == 0:
        return False
    lags = []
    for c in hits:
        i = np.searchsorted(others, c.time_s) - 1
        if i >= 0 and 0.0 < c.time_s - others[i] <= BLEED_MAX_MS / 1000.0:
            lags.append((c.time_s - others[i]) * 1000.0)
    if len(lags) < BLEED_ONLY_SHARE * len(hits):
        return False
    return len(_densest(np.asarray(lags), AGREE_MS * 2)) >= BLEED_ONLY_SHARE * len(hits)


def _gcc_lag(ref: np.ndarray, other: np.ndarray, lead: int) -> tuple[float, int, float]:
    """(lag in samples, sign, correlation coefficient) of ``other`` against ``ref``.

    ``other`` starts ``lead`` samples before ``ref``; a positive lag means ``other`` is later.
    """
    n_fft = 1 << int(np.ceil(np.log2(len(ref) + len(other))))
    cross = np.conj(np.fft.rfft(ref, n_fft)) * np.fft.rfft(other, n_fft)
    weight = np.abs(cross) ** PHAT_BETA
    cross = cross / np.maximum(weight, 1e-12 * max(float(weight.max()), 1e-30))
    valid = np.fft.irfft(cross, n_fft)[: len(other) - len(ref) + 1]  # ref fully inside other
    k = int(np.argmax(np.abs(valid)))
    offset = 0.0
    if 0 < k < len(valid) - 1:
        a, b, c = np.abs(valid[k - 1 : k + 2])
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    aligned = other[k : k + len(ref)]
    denom = np.sqrt(np.sum(ref * ref) * np.sum(aligned * aligned))
    coefficient = float(abs(np.sum(ref * aligned)) / denom) if denom > 0 else 0.0
    return k + offset - lead, (1 if valid[k] >= 0 else -1), coefficient


def _densest(lags: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the largest group of lags within ``tolerance`` of one of them."""
    support = (np.abs(lags[:, None] - lags[None, :]) <= tolerance).sum(axis=1)
    centre = lags[int(np.argmax(support))]
    return np.flatnonzero(np.abs(lags - centre) <= tolerance)


@dataclass(frozen=True)
class StrokeVotes:
    """One channel of a stem against a close mic's strokes: the strokes whose lags agree (the largest group)."""

    lags_samples: np.ndarray  # per agreeing stroke: lag of the GCC peak (positive: the stem is later)
    signs: np.ndarray  # per agreeing stroke: +1 / -1, the sign of that peak
    coefficients: np.ndarray  # per agreeing stroke: correlation coefficient at that lag, 0..1
    n_measured: int  # strokes measured, agreeing or not

    @property
    def polarity(self) -> int:
        return 1 if self.signs.sum() >= 0 else -1

    @property
    def usable(self) -> bool:
        n = len(self.lags_samples)
        return n >= MIN_AGREEING and n >= MIN_AGREE_SHARE * self.n_measured


def stroke_votes(ref: Stem, ref_hits: Sequence[Candidate], other: Stem, *,
                 lag_range_ms: tuple[float, float] = (-MAX_LEAD_MS, MAX_LAG_MS)) -> list[StrokeVotes]:
    """Per channel of ``other``: how ``ref``'s strokes (``ref_hits``) arrive in it, stroke by stroke.

    Per hit, the lag (searched in ``lag_range_ms``) and sign of the GCC peak;
    then the largest group of hits that agree within AGREE_MS (another drum
    dominates the rest). One entry per channel, empty where no stroke could be measured.
    """
    sr = ref.sample_rate
    before, after = (int(round(ms * sr / 1000)) for ms in WINDOW_MS)
    lead, lag = (int(round(sign * ms * sr / 1000)) for sign, ms in zip((-1, 1), lag_range_ms))
    # windows are cut from the float32 stems and widened to float64 one at a time:
    # whole-stem float64 copies would cost twice the session's memory
    x = ref.mono()
    taper = np.hanning(2 * before)[:before]
    out = []
    for channel in other.audio:
        per_hit = []
        for hit in ref_hits:
            start = int(round(hit.time_s * sr)) - before
            if start - lead < 0 or start + before + after + lag > len(x):
                continue
            seg = x[start : start + before + after].astype(np.float64)
            seg[:before] *= taper  # soften the cuts, keep the attack itself
            seg[-before:] *= taper[::-1]
            far = channel[start - lead : start + before + after + lag].astype(np.float64)
            if np.any(seg) and np.any(far):
                per_hit.append(_gcc_lag(seg, far, lead))
        if not per_hit:
            out.append(StrokeVotes(np.zeros(0), np.zeros(0), np.zeros(0), 0))
            continue
        lags, signs, coefficients = (np.array(v, dtype=float) for v in zip(*per_hit))
        group = _densest(lags, AGREE_MS * sr / 1000.0)
        out.append(StrokeVotes(lags[group], signs[group], coefficients[group], len(lags)))
    return out


def measure_pair(ref: Stem, ref_hits: Sequence[Candidate], other: Stem) -> tuple[float, int, float] | None:
    """(delay ms, polarity, strength 0..1) of ``other`` against close mic ``ref``, or None if unclear.

    The median lag of the agreeing strokes (see :func:`stroke_votes`), unclear
    when too few agree. Strength is the share of hits in that group times
    their mean correlation coefficient. Channels of a multichannel ``other``
    are measured apart and averaged: a stereo stem moves as one unit, so it
    gets one compromise delay.
    """
    sr = ref.sample_rate
    votes = stroke_votes(ref, ref_hits, other)
    if not all(v.usable for v in votes):
        return None
    results = [(float(np.median(v.lags_samples)) / sr * 1000.0, v.polarity,
                len(v.lags_samples) / v.n_measured * float(np.mean(v.coefficients))) for v in votes]
    polarity = 1 if sum(r[1] for r in results) >= 0 else -1
    return float(np.mean([r[0] for r in results])), polarity, float(np.mean([r[2] for r in results]))


def transfer_gain_db(ref: Stem, ref_hits: Sequence[Candidate], other: Stem, delay_ms: float) -> float | None:
    """How loud ``ref``'s attacks arrive in ``other`` at ``delay_ms``: median least-squares gain, dB.

    A projection, not an energy ratio, so that whatever else ``other`` hears at
    the same time (its own drum, played together with ``ref``'s) drops out.
    """
    sr = ref.sample_rate
    before, after = (int(round(ms * sr / 1000)) for ms in WINDOW_MS)
    shift = delay_ms * sr / 1000.0
    whole = int(np.floor(shift))
    frac = shift - whole
    x, y = ref.mono(), other.mono()
    gains = []
    for hit in ref_hits:
        start = int(round(hit.time_s * sr)) - before
        lo = start + whole
        if start < 0 or lo < 0 or lo + before + after + 1 >= len(y):
            continue
        seg = x[start : start + before + after].astype(np.float64)
        near = y[lo : lo + before + after + 1].astype(np.float64)
        # linear interpolation is enough for a level (the delay itself is known to a fraction of a sample)
        far = (1.0 - frac) * near[:-1] + frac * near[1:]
        energy = float(np.dot(seg, seg))
        if energy > 0:
            gains.append(abs(float(np.dot(seg, far))) / energy)
    if not gains or np.median(gains) <= 0:
        return None
    return float(20.0 * np.log10(np.median(gains)))


def _same_drum(a_hits: Sequence[Candidate], b_hits: Sequence[Candidate]) -> bool:
    if not a_hits or not b_hits:
        return False
    a = np.array([c.time_s for c in a_hits])
    shared = sum(np.min(np.abs(a - c.time_s)) <= SAME_DRUM_MS / 1000.0 for c in b_hits)
    return shared >= SAME_DRUM_SHARE * min(len(a_hits), len(b_hits))


def measure_delays(session: Session, candidates: Mapping[str, Sequence[Candidate]], *,
                   progress: Callable[[str, float], None] | None = None) -> tuple[MicDelay, ...]:
    """One MicDelay per stem, in session order."""
    close = session.close_stems
    strong = {s.name: strong_hits(candidates.get(s.name, ())) for s in close}
    first_of_role: dict[str, Stem] = {}
    drum: dict[str, str] = {}
    for stem in close:
        first = first_of_role.setdefault(stem.role, stem)
        same = first is not stem and _same_drum(strong[first.name], strong[stem.name])
        drum[stem.name] = first.name if same else stem.name
    hits, _ = measuring_hits(strong, drum)
    out: dict[str, MicDelay] = {}
    for stem in close:
        leader = drum[stem.name]
        measured = measure_pair(session.stem(leader), hits[leader], stem) if leader != stem.name else None
        if measured is None:
            out[stem.name] = MicDelay(stem.name, 0.0, 1, None, {})
        else:
            out[stem.name] = MicDelay(stem.name, measured[0], measured[1], leader, {leader: measured[0]})
    followers = [s for s in session.stems if not s.is_close]
    for i, stem in enumerate(followers):
        if progress:
            progress("delays", i / max(len(followers), 1))
        results = {c.name: m for c in close if hits[c.name] and (m := measure_pair(c, hits[c.name], stem)) is not None}
        if not results:
            out[stem.name] = MicDelay(stem.name, 0.0, 1, None, {})
            continue
        # the reference is a drum's first mic: a second (say, inverted snare bottom) would misstate the polarity
        leaders = [k for k in results if drum[k] == k] or list(results)
        best = max(leaders, key=lambda k: results[k][2])
        out[stem.name] = MicDelay(stem.name, results[best][0], results[best][1], best,
                                  {k: v[0] for k, v in results.items()})
    if progress:
        progress("delays", 1.0)
    return tuple(out[s.name] for s in session.stems)


def drum_of(delays: Sequence[MicDelay], session: Session) -> dict[str, str]:
    """Close stem -> the first stem of its drum (itself unless it is a second mic on one drum)."""
    close = {s.name for s in session.close_stems}
    out = {name: name for name in close}
    for d in delays:
        if d.stem in close and d.reference in close:
            out[d.stem] = d.reference
    return out
