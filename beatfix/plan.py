"""Edit planning: which piece of audio moves where, as a frozen plan for the renderer.

A plan cuts the session once per hit, ``pad_ms`` before the hit's earliest
close-mic attack, at the same sample on every channel, and gives each piece one
whole-sample shift. The renderer needs nothing else, so every channel of a
session (close mics, overheads, rooms) moves identically and phase between mics
is kept exactly.

Seam rules the planner guarantees, so that :mod:`beatfix.render` never has to
crossfade or stretch inside a hit's protected zone (its ``protect_ms`` after
the piece's latest attack), and never repeats or drops an attack:

* Hits whose attacks are closer than ``pad + xfade`` cannot be cut apart: they
  are merged into one piece (first attack's cut, mean of their moves).
* Call ``room`` the decay between the previous piece's protected zone and this
  piece's cut: ``cut - (prev_last_attack + protect)`` samples.
* Moving earlier than the previous piece by ``o`` samples trims the previous
  piece; its crossfade ends where this piece starts, so ``o + xfade <= room``.
* Moving later by ``g`` samples opens a gap. It is filled from decay if
  ``g + xfade <= room``; else the previous decay is stretched, which needs
  ``room >= 1`` and ``g <= room * (MAX_STRETCH_RATIO - 1)``.
* A move that breaks these is reduced, toward the previous piece's shift: the
  later hit gives way, the earlier keeps its move (greedy, in time order).
  Since ``room`` already holds ``pad + protect``, output attacks stay strictly
  increasing, at least ``pad + xfade + protect`` apart unless they were that
  close already.
* A piece's cut never lands before output sample 0, and its first attack stays
  inside the output, unless that breaks the rules above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .errors import ParameterError
from .types import Analysis

# The attack and early decay kept untouched around every hit, before the mic delays.
PROTECT_BASE_MS = 30.0
# Stretching a decay lowers its pitch; at 2 it drops an octave, audible on a tom but
# masked on the short decays the stretch is used for (only when the gap is larger
# than the decay available to fill it).
MAX_STRETCH_RATIO = 2.0

_MAX_PAD_MS = 100.0
_MAX_XFADE_MS = 100.0
_MAX_PROTECT_MS = 1000.0


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


def decay_room_samples(prev: Edit | None, cut_sample: int, protect_samples: int) -> int | None:
    """Decay between ``prev``'s protected zone and ``cut_sample``; None before the first hit.

    Everything a seam does to the previous piece (crossfade, fill, stretch)
    must fit in this room.
    """
    if prev is None:
        return None
    return cut_sample - (prev.protect_from_sample + protect_samples)


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


def default_protect_ms(analysis: Analysis) -> float:
    """30 ms plus the latest mic's delay, so the room mic's attack is protected too.

    Delays are not labelled close or follower here; close mics sit within a
    millisecond of each other, so the largest delay is the latest follower's.
    """
    delays = [d.delay_ms for d in analysis.mic_delays if math.isfinite(d.delay_ms)]
    return PROTECT_BASE_MS + max([0.0, *delays])


def _check_number(name: str, value: float, low: float, high: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ParameterError(f"{name} {value:g} is out of range: use {low:g} to {high:g}")
    return value


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParameterError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def _hit_samples(analysis: Analysis, n_samples: int, strength: float):
    """Per hit: attack sample, desired shift (float samples), deviation ms, slot."""
    sr = analysis.sample_rate
    attacks, shifts, deviations, slots = [], [], [], []
    for i, hit in enumerate(analysis.hits):
        if not (math.isfinite(hit.time_s) and math.isfinite(hit.earliest_s)):
            raise ParameterError(f"hit {i} has a non-finite time")
        # Delay compensation can put a hit at the first sample a hair before zero.
        attack = max(0, int(math.floor(hit.earliest_s * sr + 0.5)))
        if attack >= n_samples:
            raise ParameterError(
                f"hit {i} at {hit.earliest_s:.3f} s lies beyond the audio's end "
                f"({n_samples / sr:.3f} s): analysis and audio do not match"
            )
        deviation_s = hit.time_s - float(analysis.grid.slot_time(hit.slot))
        attacks.append(attack)
        shifts.append(-strength * deviation_s * sr)
        deviations.append(deviation_s * 1000.0)
        slots.append(int(hit.slot))
    return attacks, shifts, deviations, slots


def _merge_close(attacks: list[int], min_apart_samples: int) -> list[list[int]]:
    """Hit indices grouped into pieces, in attack order; a group's hits are too close to cut."""
    order = sorted(range(len(attacks)), key=lambda i: (attacks[i], i))
    groups: list[list[int]] = []
    for i in order:
        # Sorted, so the group's latest attack is its last one.
        if groups and attacks[i] - attacks[groups[-1][-1]] < min_apart_samples:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def plan_edits(
    analysis: Analysis,
    *,
    n_samples: int,
    strength_pct: float = 100.0,
    exclude_within_ms: float = 0.0,
    pad_ms: float = 3.0,
    xfade_ms: float = 4.0,
    protect_ms: float | None = None,
) -> EditPlan:
    """Plan one cut and one whole-sample shift per hit (or group of merged hits).

    ``n_samples`` is the length of the session's ``(n_channels, n_samples)``
    array. A hit's target is its grid slot (swing included); it moves by
    ``strength_pct`` of its deviation unless it is already within
    ``exclude_within_ms`` of the slot. See the module docstring for the rules
    that keep order and leave room for seams.
    """
    sr = analysis.sample_rate
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ParameterError(f"sample rate must be a positive whole number, got {sr!r}")
    n_samples = _check_count("n_samples", n_samples)
    strength = _check_number("strength_pct", strength_pct, 0.0, 100.0) / 100.0
    exclude_ms = _check_number("exclude_within_ms", exclude_within_ms, 0.0, 1000.0)
    pad_ms = _check_number("pad_ms", pad_ms, 0.0, _MAX_PAD_MS)
    xfade_ms = _check_number("xfade_ms", xfade_ms, 0.0, _MAX_XFADE_MS)
    if protect_ms is None:
        protect_ms = default_protect_ms(analysis)
    protect_ms = _check_number("protect_ms", protect_ms, 0.0, _MAX_PROTECT_MS)

    plan = EditPlan(int(sr), n_samples, pad_ms, xfade_ms, protect_ms, edits=())
    if not analysis.hits:
        return plan
    attacks, desired, deviations, slots = _hit_samples(analysis, n_samples, strength)
    for i, dev_ms in enumerate(deviations):
        # Inclusive, as in Beat Detective / Elastic Audio "exclude within".
        if abs(dev_ms) <= exclude_ms:
            desired[i] = 0.0

    pad, xfade, protect = plan.pad_samples, plan.xfade_samples, plan.protect_samples
    edits: list[Edit] = []
    # At least one sample apart, so cuts are strictly increasing even with no pad or fade.
    for group in _merge_close(attacks, max(1, pad + xfade)):
        first = group[0]
        attack = attacks[first]
        last_attack = max(attacks[i] for i in group)
        cut = max(0, attack - pad)
        prev = edits[-1] if edits else None
        prev_shift = prev.shift_samples if prev else 0
        room = decay_room_samples(prev, cut, protect)
        low = prev_shift - max_earlier_samples(room, xfade)
        high = prev_shift + max_later_samples(room, xfade)
        # Keep the piece in the output; the seam rules come first when they disagree.
        edge_low, edge_high = max(low, -cut), min(high, n_samples - 1 - attack)
        if edge_low <= edge_high:
            low, high = edge_low, edge_high
        wanted = float(np.mean([desired[i] for i in group]))
        shift = int(min(max(math.floor(wanted + 0.5), low), high))
        edits.append(
            Edit(
                hit_index=first,
                slot=slots[first],
                cut_sample=cut,
                attack_sample=attack,
                shift_samples=shift,
                deviation_ms=deviations[first],
                merged_hit_indices=tuple(group[1:]),
                last_attack_sample=last_attack if len(group) > 1 else None,
            )
        )
    return replace(plan, edits=tuple(edits))
