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

Given the session's audio, the planner also hears the attacks the analysis
missed (:mod:`beatfix.attacks`: a soft flam grace note, a cymbal with no close
mic): an attack up to ``LEAD_IN_MS`` before a hit moves the cut a pad before
it, so the piece carries it whole; an attack further back, after the previous
piece's protected zone, starts a protected zone of its own, and the seam's
room (``Edit.room_from_sample``) starts after that. Each seam's crossfade is
shaped by how alike its two sides are (``Edit.xfade_correlation``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .attacks import AttackMap, find_attacks
from .errors import ParameterError
from .editplan import (MAX_STRETCH_RATIO, Edit, EditPlan, decay_room_samples, max_earlier_samples,  # noqa: F401
                       max_later_samples, ms_to_samples)
from .plan_locks import join_locks, lock_bounds
from .types import Analysis

if TYPE_CHECKING:
    from .sections import SectionRules

# The attack and early decay kept untouched around every hit, before the mic delays.
PROTECT_BASE_MS = 30.0
LEAD_IN_MS = 50.0

_MAX_PAD_MS = 100.0
_MAX_XFADE_MS = 100.0
_MAX_PROTECT_MS = 1000.0


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


def _hit_samples(analysis: Analysis, n_samples: int, strength: float, rules: "SectionRules | None" = None):
    """Per hit: attack sample, desired shift (float samples), deviation ms, slot.

    With ``rules`` (:func:`beatfix.sections.resolve`) each hit has its own
    target and strength; without, every hit aims at its analysis slot.
    """
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
        target_s = float(analysis.grid.slot_time(hit.slot)) if rules is None else rules.target_s[i]
        deviation_s = hit.time_s - target_s
        attacks.append(attack)
        shifts.append(-(strength if rules is None else rules.strength[i]) * deviation_s * sr)
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


def _clear_cut(found: AttackMap, cut: int, attack: int, zone_end: int, pad: int, lead_in: int,
               protect: int) -> tuple[int, int | None]:
    """``cut`` moved a pad before undetected attacks just ahead of it; where its seam's room starts.

    Attacks before ``cut`` in the ``lead_in`` before the hit's ``attack``
    (and after the previous piece's protected zone, which ends at
    ``zone_end``) join the piece, and so does any attack less than ``protect + pad`` before one
    that joined: one stroke reaches the room mic many ms after its close mic,
    and the piece carries all of it. The latest attack left behind, with
    ``protect`` after it, bounds the seam's room.
    """
    # Attacks after the cut are the hit's own, heard a little early in some channel, or start
    # after the cut anyway; what the cut would land in or after is what the piece must carry.
    ahead = found.between(max(zone_end, attack - lead_in), cut)
    if ahead.size:
        lead = int(ahead[0])
        while (more := found.between(max(zone_end, lead - protect - pad), lead)).size:
            lead = int(more[0])
        cut = max(0, min(cut, lead - pad))
    behind = found.latest_before(cut, not_before=zone_end)
    return cut, None if behind is None else behind + protect


def seam_correlation(audio: Sequence[np.ndarray], cut: int, lag: int, n: int) -> float:
    """Correlation, 0 to 1, of the ``n`` samples before ``cut`` with those ``lag`` earlier, all channels.

    A seam moving by ``lag`` crossfades exactly these two stretches (an
    overlap's and a fill's alike): how alike they are decides the fade's
    shape (:func:`beatfix.render.crossfade_gains`). ``audio`` holds arrays
    ``(n_channels, n_samples)``; loud channels weigh most, as in a mix.
    """
    start = max(cut - n, lag, 0)
    if cut <= start:
        return 0.0
    num = power_a = power_b = 0.0
    for channels in audio:
        a = np.asarray(channels[..., start:cut], dtype=np.float64)
        b = np.asarray(channels[..., start - lag:cut - lag], dtype=np.float64)
        num += float(np.sum(a * b))
        power_a += float(np.sum(a * a))
        power_b += float(np.sum(b * b))
    if power_a <= 0.0 or power_b <= 0.0:
        return 0.0
    return float(min(1.0, max(0.0, num / math.sqrt(power_a * power_b))))


@dataclass
class _Piece:
    """A piece's geometry, which the shifts do not change: the planner's first pass."""

    group: list[int]
    cut: int
    attack: int
    last_attack: int
    room_from: int | None
    room: int | None
    lock: int  # index into SectionRules.lock_spans_samples, -1: not locked

    @property
    def protect_from_sample(self) -> int:
        return self.last_attack


def _pieces(groups: list[tuple[list[int], int]], hit_attacks: list[int], attacks: AttackMap | None,
            rules: "SectionRules | None", pad: int, lead_in: int, protect: int,
            protect_undetected: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for group, lock in groups:
        first = group[0]
        attack = hit_attacks[first]
        last_attack = max(hit_attacks[i] for i in group)
        cut = max(0, attack - pad)
        if lock >= 0 and rules is not None:
            # A locked span is one piece from its start (or a pad before its first hit, if earlier).
            cut = max(0, min(cut, rules.lock_spans_samples[lock][0]))
        prev = pieces[-1] if pieces else None
        room_from = None
        if attacks is not None:
            zone_end = prev.protect_from_sample + protect if prev else 0
            cut, room_from = _clear_cut(attacks, cut, attack, zone_end, pad, lead_in, protect_undetected)
        if prev is not None:
            cut = max(cut, prev.cut + 1)
        room = decay_room_samples(prev, cut, protect, room_from_sample=room_from)  # type: ignore[arg-type]
        pieces.append(_Piece(group, cut, attack, last_attack, room_from, room, lock))
    return pieces


def plan_edits(
    analysis: Analysis,
    *,
    n_samples: int,
    strength_pct: float = 100.0,
    exclude_within_ms: float = 0.0,
    pad_ms: float = 3.0,
    xfade_ms: float = 4.0,
    protect_ms: float | None = None,
    audio: Sequence[np.ndarray] | None = None,
    attacks: AttackMap | None = None,
    rules: "SectionRules | None" = None,
) -> EditPlan:
    """Plan one cut and one whole-sample shift per hit (or group of merged hits).

    ``n_samples`` is the length of the session's ``(n_channels, n_samples)``
    array. A hit's target is its grid slot (swing included); it moves by
    ``strength_pct`` of its deviation unless it is already within
    ``exclude_within_ms`` of the slot. See the module docstring for the rules
    that keep order and leave room for seams.

    ``audio``: every stem of the session, ``(n_channels, n_samples)`` arrays
    (all channels, overheads and rooms too). With it, attacks the analysis
    missed are kept out of every seam and crossfades are fitted to their
    material; ``attacks`` (:func:`beatfix.attacks.find_attacks` of that
    audio) saves finding them again. Without either, only the analysis's
    hits are protected.

    ``rules`` (:func:`beatfix.sections.resolve`): each hit's own target,
    strength and exclude-within (its section's), and the locked spans. A
    locked span is one piece with shift 0, cut at the span's start (or a pad
    before its first hit), so its audio is the input's, sample for sample,
    but for the crossfades of the seams at its two ends; the pieces next to
    it give way (status ``capped``) when a seam could not otherwise be made.
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
    if rules is not None and len(rules.target_s) != len(analysis.hits):
        raise ParameterError("section rules were resolved for another analysis")
    if audio is not None:
        audio = [np.asarray(a) for a in audio]
        if any(a.shape[-1] != n_samples for a in audio):
            raise ParameterError(f"audio must have {n_samples} samples per channel, as n_samples says")
        if attacks is None:
            attacks = find_attacks(audio, int(sr))

    plan = EditPlan(int(sr), n_samples, pad_ms, xfade_ms, protect_ms, edits=())
    if not analysis.hits:
        return plan
    hit_attacks, desired, deviations, slots = _hit_samples(analysis, n_samples, strength, rules)
    limits = [exclude_ms] * len(deviations) if rules is None else list(rules.exclude_within_ms)
    excluded = [abs(dev_ms) <= limit for dev_ms, limit in zip(deviations, limits)]
    for i, out in enumerate(excluded):
        # Inclusive, as in Beat Detective / Elastic Audio "exclude within".
        if out:
            desired[i] = 0.0

    pad, xfade, protect = plan.pad_samples, plan.xfade_samples, plan.protect_samples
    lead_in = ms_to_samples(LEAD_IN_MS, sr)
    # An undetected attack is heard in each channel's own time (the room's arrival is one of
    # them), so it is protected as a close-mic attack is, without the mic delays.
    protect_undetected = ms_to_samples(min(protect_ms, PROTECT_BASE_MS), sr)
    # At least one sample apart, so cuts are strictly increasing even with no pad or fade.
    groups = [(g, -1) for g in _merge_close(hit_attacks, max(1, pad + xfade))]
    if rules is not None:
        groups = join_locks([g for g, _ in groups], hit_attacks, rules)
    pieces = _pieces(groups, hit_attacks, attacks, rules, pad, lead_in, protect, protect_undetected)
    bound_lo, bound_hi, later = lock_bounds(pieces, rules, pad, xfade)
    edits: list[Edit] = []
    for j, piece in enumerate(pieces):
        group, cut, attack = piece.group, piece.cut, piece.attack
        first = group[0]
        prev_shift = edits[-1].shift_samples if edits else 0
        seam_low = prev_shift - max_earlier_samples(piece.room, xfade)
        seam_high = prev_shift + later[j]
        low, high = seam_low, seam_high
        # Keep the piece in the output; the seam rules come first when they disagree.
        edge_low, edge_high = max(low, -cut), min(high, n_samples - 1 - attack)
        if edge_low <= edge_high:
            low, high = edge_low, edge_high
        # ...and so do the locked spans ahead (the bounds always leave a shift the seam allows).
        low, high = max(low, bound_lo[j]), min(high, bound_hi[j])
        if low > high:
            low, high = max(seam_low, bound_lo[j]), min(seam_high, bound_hi[j])
        locked = piece.lock >= 0
        wanted = 0 if locked else int(math.floor(float(np.mean([desired[i] for i in group])) + 0.5))
        shift = int(min(max(wanted, low), high))
        move = abs(shift - prev_shift)
        alike = seam_correlation(audio, cut, move, xfade) if audio is not None and move else None
        edits.append(
            Edit(
                hit_index=first,
                slot=slots[first],
                cut_sample=cut,
                attack_sample=attack,
                shift_samples=shift,
                deviation_ms=deviations[first],
                merged_hit_indices=tuple(group[1:]),
                last_attack_sample=piece.last_attack if len(group) > 1 else None,
                room_from_sample=piece.room_from,
                xfade_correlation=alike,
                wanted_shift_samples=wanted,
                excluded=not locked and all(excluded[i] for i in group),
                target_s=None if rules is None else rules.target_s[first],
                locked=locked,
            )
        )
    return replace(plan, edits=tuple(edits))
