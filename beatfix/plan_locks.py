"""Locked spans in the planner (``--lock``, ``--range``, sections): one unshifted piece per span.

The planner's two passes call these: :func:`join_locks` makes every locked
span's hits one group (nothing is cut inside a span), and :func:`lock_bounds`
works back from each span (shift 0) to the shifts the pieces before it may
take, so the greedy forward pass never paints itself into a corner.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .editplan import max_earlier_samples, max_later_samples

if TYPE_CHECKING:
    from .plan import _Piece
    from .sections import SectionRules


def join_locks(groups: list[list[int]], attacks: list[int], rules: "SectionRules") -> list[tuple[list[int], int]]:
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


def lock_bounds(pieces: list[_Piece], rules: "SectionRules | None", pad: int,
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
