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
from .types import Analysis

if TYPE_CHECKING:
    from .sections import SectionRules

# The attack and early decay kept untouched around every hit, before the mic delays.
PROTECT_BASE_MS = 30.0
# Stretching a decay lowers its pitch; at 2 it drops an octave, audible on a tom but
# masked on the short decays the stretch is used for (only when the gap is larger
# than the decay available to fill it).
MAX_STRETCH_RATIO = 2.0
# An undetected attack this close before a hit's cut is carried by the hit's piece: a flam's
# grace note (8-45 ms before its main stroke), a cymbal struck with the kick.
LEAD_IN_MS = 50.0

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


def _join_locks(groups: list[list[int]], attacks: list[int], rules: "SectionRules") -> list[tuple[list[int], int]]:
    """Groups with every locked span's hits in one group, and each group's lock (-1: none).

    A span's group also takes any hit whose attack lies between the span's
    start and its last locked attack (a hit of the bar before, played very
    late): nothing is cut inside a locked span.
    """
    lock_of = [-1] * len(groups)
    for k, (a, _) in enumerate(rules.lock_spans_samples):
        mine = [attacks[i] for g in groups for i in g if rules.lock_of[i] == k]
        if not mine:
            continue
        last = max(mine)
        for j, g in enumerate(groups):
            if any(rules.lock_of[i] == k for i in g) or a <= attacks[g[0]] <= last:
                lock_of[j] = k if lock_of[j] < 0 else lock_of[j]
    out: list[tuple[list[int], int]] = []
    for g, k in zip(groups, lock_of):
        if out and k >= 0 and out[-1][1] == k:
            out[-1][0].extend(g)
        else:
            out.append((list(g), k))
    # One lock's hits are contiguous in attack order unless another group lies between them
    # with no lock: _hold_between makes it part of the span.
    return _hold_between(out)


def _hold_between(groups: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    """Merge everything between two groups of the same lock into that lock's group."""
    changed = True
    while changed:
        changed = False
        for j, (_, k) in enumerate(groups):
            if k < 0:
                continue
            later = [m for m in range(j + 1, len(groups)) if groups[m][1] == k]
            if later:
                last = later[-1]
                members = [i for g, _ in groups[j:last + 1] for i in g]
                groups = groups[:j] + [(members, k)] + groups[last + 1:]
                changed = True
                break
    return groups


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


def _lock_bounds(pieces: list[_Piece], rules: "SectionRules | None", pad: int,
                 xfade: int) -> tuple[list[float], list[float], list[float]]:
    """Per piece: the lowest and highest shift that still lets every later locked span keep shift 0,
    and the largest later move its seam may make (no stretch into a locked span's decay).

    Found backwards from each lock (shift 0), widening by what each seam
    allows; the forward pass then chooses each shift inside these bounds, so
    the greedy planner never paints itself into a corner before a lock.
    The piece after a span may not start (in the output) before the span's
    end less a pad, so a hit played late after a fill still lands on its slot
    and only its pad and the seam's crossfade reach into the span.
    """
    n = len(pieces)
    later = [max_later_samples(p.room, xfade) for p in pieces]
    lo, hi = [-math.inf] * n, [math.inf] * n
    if rules is None or not any(p.lock >= 0 for p in pieces):
        return lo, hi, later
    for j in range(1, n):
        if pieces[j - 1].lock >= 0:  # a fill only: a stretch would change the locked decay
            room = pieces[j].room
            later[j] = math.inf if room is None else max(0, room - xfade)
    for j in reversed(range(n)):
        low, high = -math.inf, math.inf
        if pieces[j].lock >= 0:
            low = high = 0.0
        elif j > 0 and pieces[j - 1].lock >= 0:
            span_end = rules.lock_spans_samples[pieces[j - 1].lock][1]
            low = min(0.0, float(span_end - pad - pieces[j].cut))
        if j + 1 < n:
            earlier = max_earlier_samples(pieces[j + 1].room, xfade)
            low = max(low, lo[j + 1] - later[j + 1])
            high = min(high, hi[j + 1] + earlier)
        lo[j], hi[j] = low, high
    return lo, hi, later


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
        groups = _join_locks([g for g, _ in groups], hit_attacks, rules)
    pieces = _pieces(groups, hit_attacks, attacks, rules, pad, lead_in, protect, protect_undetected)
    bound_lo, bound_hi, later = _lock_bounds(pieces, rules, pad, xfade)
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
