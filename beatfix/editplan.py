"""The edit plan: the frozen list of pieces the renderer plays, and the seam rules it lives by.

A plan is pure data (:class:`EditPlan` of :class:`Edit`): the planner
(:mod:`beatfix.plan`) writes it, :mod:`beatfix.render` plays it, ``beatfix
render`` rebuilds it from edits.json, the DAW exports read it. The seam
rules here (decay room, how far a piece may move later or earlier) are the
ones both the planner and the per-drum planner (:mod:`beatfix.flamfix`) keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Stretching a decay lowers its pitch; at 2 it drops an octave, audible on a tom but
# masked on the short decays the stretch is used for (only when the gap is larger
# than the decay available to fill it).
MAX_STRETCH_RATIO = 2.0
# An undetected attack this close before a hit's cut is carried by the hit's piece: a flam's
# grace note (8-45 ms before its main stroke), a cymbal struck with the kick.

@dataclass(frozen=True)
class Edit:
    """One piece of audio, from its cut to the next cut (or the end)."""

    hit_index: int  # index in ``Analysis.hits`` of the piece's first hit
    slot: int
    cut_sample: int  # same on every channel: pad before the earliest attack
    attack_sample: int  # earliest close-mic attack, input timeline
    shift_samples: int  # output = input shifted by this (positive = later)
    deviation_ms: float  # hit anchor minus its target, before editing
    merged_hit_indices: tuple[int, ...] = ()  # further hits too close to cut apart
    last_attack_sample: int | None = None  # latest attack in the piece if hits merged
    # The seam before this piece touches no source before this sample: an attack the analysis
    # missed, and its protected zone, lie before it. None: the previous piece's protected zone.
    room_from_sample: int | None = None
    # How alike the two sides of this seam's crossfade are, 0 to 1 (1: equal gain, 0: equal
    # power), measured on all channels. None: judged from the move alone (render.ALIKE_BELOW_MS).
    xfade_correlation: float | None = None
    # The shift the hits asked for (strength applied, mean of merged hits), before the seam rules
    # reduced it; None: not recorded (a plan built by hand), taken as ``shift_samples``.
    wanted_shift_samples: int | None = None
    excluded: bool = False  # every hit of the piece was within exclude-within of its slot
    # Where the piece's first hit is aimed, when a section's grid put it there; None: the analysis grid's slot.
    target_s: float | None = None
    locked: bool = False  # a locked span (--lock, outside --range): played as recorded, never cut inside

    @property
    def status(self) -> str:
        """``locked`` (a span played as recorded), ``capped`` (the seam rules reduced the move: hits
        would collide, or a locked span next to it), ``excluded`` (left alone by exclude-within),
        ``zero`` (already on its slot) or ``moved``."""
        if self.locked:
            return "locked"
        if self.wanted_shift_samples is not None and self.shift_samples != self.wanted_shift_samples:
            return "capped"
        if self.excluded:
            return "excluded"
        return "zero" if self.shift_samples == 0 else "moved"

    @property
    def protect_from_sample(self) -> int:
        """The piece's latest attack: its protected zone starts here."""
        return self.attack_sample if self.last_attack_sample is None else self.last_attack_sample


@dataclass(frozen=True)
class EditPlan:
    sample_rate: int
    n_samples: int
    pad_ms: float
    xfade_ms: float
    protect_ms: float
    edits: tuple[Edit, ...]  # sorted by cut_sample, strictly increasing

    @property
    def pad_samples(self) -> int:
        return ms_to_samples(self.pad_ms, self.sample_rate)

    @property
    def xfade_samples(self) -> int:
        return ms_to_samples(self.xfade_ms, self.sample_rate)

    @property
    def protect_samples(self) -> int:
        return ms_to_samples(self.protect_ms, self.sample_rate)


def ms_to_samples(ms: float, sample_rate: int) -> int:
    return int(math.floor(ms * sample_rate / 1000.0 + 0.5))


def decay_room_samples(prev: Edit | None, cut_sample: int, protect_samples: int, *,
                       room_from_sample: int | None = None) -> int | None:
    """Decay between ``prev``'s protected zone and ``cut_sample``; None before the first hit.

    Everything a seam does to the previous piece (crossfade, fill, stretch)
    must fit in this room. ``room_from_sample`` (an :class:`Edit`'s) starts
    it later, after an attack the analysis missed.
    """
    starts = [] if prev is None else [prev.protect_from_sample + protect_samples]
    if room_from_sample is not None:
        starts.append(room_from_sample)
    return cut_sample - max(starts) if starts else None


def max_later_samples(room: int | None, xfade_samples: int) -> float:
    """Largest gap a seam can fill (decay) or stretch into, given its decay room."""
    if room is None:
        return math.inf
    stretchable = math.floor(room * (MAX_STRETCH_RATIO - 1.0)) if room >= 1 else 0
    return max(0, room - xfade_samples, stretchable)


def max_earlier_samples(room: int | None, xfade_samples: int) -> float:
    """Largest overlap a seam can crossfade inside decay, given its decay room."""
    if room is None:
        return math.inf
    return max(0, room - xfade_samples)
