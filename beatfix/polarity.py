"""Polarity of every close mic against the overheads, and between the mics of one drum.

The mic delays (:mod:`beatfix.delays`) measure each overhead and room against
one reference close mic, and a close mic is its own reference: an inverted
kick mic shows up nowhere. Here each close mic's own strokes are looked up in
every follower (overhead, room), delay-aligned: the GCC peak is searched only
within SEARCH_MS of the follower's measured delay, so that a low drum's
opposite-signed lobe half a period away cannot win. Its sign, stroke by
stroke, says whether that drum arrives upright or inverted in the follower.

The vote, per close mic: each follower channel whose agreeing strokes
(:func:`beatfix.delays.stroke_votes`) number at least MIN_STROKES casts
``sign * weight * correlation * (2 * agreement - 1)``, where ``weight`` is 1
for an overhead and ROOM_WEIGHT for a room (a reverberant, distant path is
weaker evidence), ``correlation`` the mean correlation coefficient of those
strokes (low where the drum is quiet in that mic) and ``agreement`` the share
of them with the majority sign (0.5, a coin toss, counts for nothing).
Confidence is ``|sum of votes| / sum of weights of all follower channels``:
1.0 only when every follower hears every stroke clearly, with one sign.
Below MIN_CONFIDENCE the verdict is "unsure" rather than a guess.

Two mics of one drum (kick in/out, snare top/bottom) are measured against each
other in analysis already: their relative polarity and lag are the second
mic's :class:`~beatfix.types.MicDelay` against the first.

Polarity is reported, never acted on: align's edits do not read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .delays import drum_of, measuring_hits, stroke_votes, strong_hits
from .onsets import Candidate
from .types import MicDelay, Session

SEARCH_MS = 2.5  # a close mic hears its own drum up to this much off the follower's reference (mic placement)
MIN_STROKES = 3  # agreeing strokes a follower channel needs to vote
ROOM_WEIGHT = 0.5
FOLLOWER_WEIGHT = {"overhead": 1.0}  # any other follower (room, ...) counts ROOM_WEIGHT
MIN_CONFIDENCE = 0.25  # below it: unsure


@dataclass(frozen=True)
class FollowerVote:
    """How one close mic's strokes arrive in one follower channel."""

    follower: str
    polarity: int  # +1 upright, -1 inverted; 0: too few strokes to vote
    strokes: int  # strokes that agree on a lag
    agreement: float  # share of them with that polarity
    correlation: float  # their mean correlation coefficient, 0..1

    def as_dict(self) -> dict:
        return {"follower": self.follower, "polarity": self.polarity, "strokes": self.strokes,
                "agreement": round(self.agreement, 3), "correlation": round(self.correlation, 3)}


@dataclass(frozen=True)
class MicPolarity:
    """One close mic's polarity against the overheads (and rooms)."""

    stem: str
    polarity: int  # +1 normal, -1 inverted, 0 unsure
    confidence: float  # 0..1 (see the module docstring)
    votes: tuple[FollowerVote, ...]

    @property
    def verdict(self) -> str:
        return {1: "normal", -1: "inverted"}.get(self.polarity, "unsure")

    def as_dict(self) -> dict:
        return {"polarity": self.polarity, "verdict": self.verdict, "confidence": round(self.confidence, 3),
                "followers": [v.as_dict() for v in self.votes]}


@dataclass(frozen=True)
class PairPolarity:
    """Two close mics of one drum: the second against the first."""

    first: str
    second: str
    polarity: int  # +1 in phase, -1 opposite
    lag_ms: float  # positive: the second mic hears the drum later

    def as_dict(self) -> dict:
        return {"stems": [self.first, self.second], "polarity": self.polarity,
                "verdict": "opposite" if self.polarity < 0 else "same", "lag_ms": round(self.lag_ms, 3)}


@dataclass(frozen=True)
class PolarityCheck:
    stems: tuple[MicPolarity, ...]  # close mics, in session order
    pairs: tuple[PairPolarity, ...]

    def as_dict(self) -> dict:
        return {"stems": {m.stem: m.as_dict() for m in self.stems}, "pairs": [p.as_dict() for p in self.pairs]}


def _vote(follower: str, votes) -> FollowerVote:
    n = len(votes.signs)
    if n < MIN_STROKES:
        return FollowerVote(follower, 0, n, 0.0, float(np.mean(votes.coefficients)) if n else 0.0)
    polarity = votes.polarity
    agreement = float(np.mean(votes.signs == polarity))
    return FollowerVote(follower, polarity, n, agreement, float(np.mean(votes.coefficients)))


def _decide(stem: str, votes: Sequence[FollowerVote], weights: Sequence[float]) -> MicPolarity:
    total = float(sum(weights))
    score = sum(w * v.polarity * v.correlation * (2.0 * v.agreement - 1.0) for v, w in zip(votes, weights))
    confidence = abs(score) / total if total > 0 else 0.0
    polarity = (1 if score > 0 else -1) if confidence >= MIN_CONFIDENCE else 0
    return MicPolarity(stem, polarity, confidence, tuple(votes))


def check_polarity(session: Session, candidates: Mapping[str, Sequence[Candidate]],
                   delays: Sequence[MicDelay]) -> PolarityCheck:
    """Each close mic's polarity against the followers, and the pairs of mics on one drum."""
    close = session.close_stems
    drum = drum_of(delays, session)
    strong = {s.name: strong_hits(candidates.get(s.name, ())) for s in close}
    hits, _ = measuring_hits(strong, drum)
    by_stem = {d.stem: d for d in delays}
    followers = [s for s in session.stems if not s.is_close and by_stem[s.name].reference is not None]
    stems = []
    for stem in close:
        votes, weights = [], []
        for follower in followers:
            centre_ms = by_stem[follower.name].delay_ms
            channels = stroke_votes(stem, hits[stem.name], follower,
                                    lag_range_ms=(centre_ms - SEARCH_MS, centre_ms + SEARCH_MS)) if hits[stem.name] else []
            weight = FOLLOWER_WEIGHT.get(follower.role, ROOM_WEIGHT)
            for i in range(follower.n_channels):
                name = follower.name if follower.n_channels == 1 else f"{follower.name}[{i}]"
                votes.append(_vote(name, channels[i]) if channels else FollowerVote(name, 0, 0, 0.0, 0.0))
                weights.append(weight)
        stems.append(_decide(stem.name, votes, weights))
    pairs = tuple(PairPolarity(d.reference, d.stem, d.polarity, d.delay_ms) for d in delays
                  if d.reference is not None and drum.get(d.stem) == d.reference and d.reference != d.stem)
    return PolarityCheck(tuple(stems), pairs)
