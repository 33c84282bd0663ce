"""The invariant of ``--flams fix``: a drum leaves its hit's shift only together with all of its sound.

A drum heard in an overhead, a room or another drum's close mic is moved
there by its *part*, estimated from its close mic (:mod:`beatfix.separate`).
Where that part cannot be estimated (no path its strokes agree on: a hi-hat
whose sound changes from stroke to stroke, open, closed, edge, tip), the
part would stay with the hit while the close mic moved to its own slot: the
overheads would then hear the drum up to several ms before or after its
close mic, a flammed, phasey drum, the very thing ``fix`` is for. Phase
comes first, the residual to the grid second: such a drum keeps its hits'
shift (collection mode) for the whole session, and says why.

Each stem's paths are measured here once and kept in the
:class:`~beatfix.flamfix.DrumPlans`, so rendering does not measure them again.

Pure: a session and plans in, plans out.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .flamfix import DrumPlans, channel_paths
from .plan import EditPlan
from .separate import MAX_SPREAD
from .types import Session

# A part this far below the drum in its own close mic is not heard as a flam of it, whatever its estimate.
AUDIBLE_DB = -30.0
# How far a path's per-stroke gains may scatter before its part is in doubt. An overhead hears the drum
# directly: scatter there is the drum's sound changing (a hi-hat's articulations). A room's and another
# close mic's gains are measured under everybody's reverb or the mic's own drum, which scatters them by
# itself: the measurement, not the drum (measured: 0.1-0.23 on tests' rooms and bleed, 0.25-0.35 for a hat
# whose strokes change by +-5 dB).
DOUBT_SPREAD = {"overhead": MAX_SPREAD, "room": 0.3, "close": 0.3}


def _doubt(path, stem: str, kind: str, channel: int, n_channels: int) -> str | None:
    where = stem if n_channels == 1 else f"{stem} channel {channel + 1}"
    if path is None or path.gain == 0.0:
        return f"its part of {where} was not found"
    if 20.0 * math.log10(abs(path.gain)) < AUDIBLE_DB:
        return None
    limit = DOUBT_SPREAD.get(kind, MAX_SPREAD)
    if path.spread > limit:
        return (f"its part of {where} cannot be estimated: its strokes disagree on its level "
                f"(spread {path.spread:.2f} > {limit:.2f})")
    return None


def keep_coherent(session: Session, plan: EditPlan, drums: DrumPlans) -> DrumPlans:
    """``drums`` with every drum whose part of some other channel is in doubt put back on its hits' shift.

    Returns the plans with :attr:`DrumPlans.paths` (every stem's measured
    paths) and :attr:`DrumPlans.kept` (drum -> the reason) filled in.
    """
    if not drums.moved:
        return replace(drums, paths={}, kept={})
    close = drums.clean
    if close is None:
        from .flamfix import clean_close

        close = clean_close(drums, {d: session.stem(d).mono() for d in drums.drums}, session.sample_rate)
    paths: dict[str, tuple[dict, ...]] = {}
    kept: dict[str, str] = {}
    for stem in session.stems:
        own = drums.drum_of(stem.name)
        movers = [d for d in drums.moved if d != own and d in close and drums.strokes.get(d)]
        if not movers:
            continue
        found = channel_paths(stem.audio, drums, close, session.sample_rate, own_drum=own,
                              delay_ms=drums.follower_delays_ms.get(stem.name), room=stem.role == "room")
        paths[stem.name] = found
        kind = "close" if own is not None else ("room" if stem.role == "room" else "overhead")
        for drum in movers:
            for c, by_drum in enumerate(found):
                reason = _doubt(by_drum.get(drum), stem.name, kind, c, stem.n_channels)
                if reason is not None and drum not in kept:
                    kept[drum] = reason
    if not kept:
        return replace(drums, paths=paths, kept=kept, clean=close)
    moved = tuple(d for d in drums.moved if d not in kept)
    plans = {d: (plan if d in kept else p) for d, p in drums.plans.items()}
    fixed: set[int] = set()
    for d in moved:
        for own_edit, edit in zip(plans[d].edits, plan.edits):
            if own_edit.shift_samples != edit.shift_samples:
                fixed.update((edit.hit_index, *edit.merged_hit_indices))
    return replace(drums, plans=plans, moved=moved, fixed_hits=frozenset(fixed), paths=paths, kept=kept,
                   clean=close)
