"""Per-drum editing (``--flams fix``): each drum on its own slot, overheads and room kept coherent.

Collection mode gives every channel of a hit one shift, so drums of one beat
that were struck 6 ms apart stay 6 ms apart. Here each drum (its close mics:
kick in + out, snare top + bottom move as one) gets its own plan: the
collection plan's cuts, with its own shift per piece, chosen as the planner
chooses shifts (:mod:`beatfix.plan`'s seam rules, so the renderer can always
crossfade or stretch in decay). Because cuts are shared, a drum's seams are
where everyone's are: before the hit's earliest attack, in the previous decay.

A follower (overhead, room) hears every drum. It is split into each drum's
part, estimated from the drum's close mic (:mod:`beatfix.separate`), and a
residual (cymbals without a mic, the room's reverb); the residual gets the
collection plan and each drum's part that drum's plan::

    out = render(follower - sum_d part_d, collection) + sum_d render(part_d, plan_d)

Rendering is linear, so only the drums whose plan differs are rendered
twice. Each drum's part moves exactly as its close mic does: the lag from
close mic to overhead stays as recorded, drum by drum. A close mic is split
the same way: its bleed of every other drum moves with that drum, and the
rest (its own drum) with its own plan; else a hi-hat heard 25 dB down in the
kick mic would land where the kick does, not where the hi-hat does.

A drum's part of a room is mostly reverb, which a short path cannot
separate: its direct sound and its early reflections (sharp copies of the
attack, :data:`ROOM_ECHO_MS` at most after it) move with the drum, so the
close-to-room lag of its attack is kept too and no reflection is left before
its drum; the diffuse tail stays with the hit.

Each drum's onsets are timed again on its cleaned close mic (its bleed of the
other drums taken out, :func:`clean_close`) before its shifts are chosen: in
the kick mic a hi-hat struck 2-5 ms before the kick is heard a little before
the kick's own attack, and the analysis, which reads the raw mic, takes its
start for the kick's (it landed the kick 2-3 ms late). An analysis built
from a synthetic session's truth (engine ``oracle``) is exact and kept.

Deliberate flams (the rudiment, a grace stroke before the main one) are left
as played under ``fix``: their hit keeps one shift for all its drums. Under
``fix-all`` their drums are put on the slot too, the grace stroke keeping its
distance to the main one (they are in one piece, which never splits).

Pure: analyses, plans and arrays in, plans and arrays out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from .errors import ParameterError
from .plan import EditPlan, decay_room_samples, max_earlier_samples, max_later_samples
from .render import render
from .separate import apply_path, estimate_paths, loudest_strokes, trusted
from .types import Analysis

FLAM_MODES = ("keep", "fix", "fix-all")
MIN_MOVE_MS = 0.25  # a drum this close to where the collection shift puts it stays with its hit
SAME_DRUM_MS = 3.0  # two mics of one role whose onsets agree this closely...
SAME_DRUM_SHARE = 0.5  # ...in this share of their hits are one drum (kick in + out)
BLEED_MAX_MS = 8.0  # a close mic hears another drum at most this long after that drum's own mic
RETIME_MAX_MS = 4.0  # an onset timed again on the cleaned close mic moves at most this far
ROOM_ECHO_MS = 30.0  # a room's early reflections of a drum, moved with it, are sought this long after its direct sound


def check_flam_mode(mode: str) -> str:
    if mode not in FLAM_MODES:
        raise ParameterError(f"--flams {mode!r}: use one of {', '.join(FLAM_MODES)}")
    return mode


@dataclass(frozen=True)
class DrumPlans:
    """Each drum's own plan over the collection plan's cuts, and what measures its paths."""

    mode: str
    drums: Mapping[str, tuple[str, ...]]  # drum (named by its first close stem) -> its close stems
    plans: Mapping[str, EditPlan]  # drum -> its plan; the collection plan's cuts, its own shifts
    moved: tuple[str, ...]  # drums whose plan differs from the collection plan
    fixed_hits: frozenset[int]  # analysis hit indices whose drums got shifts of their own
    strokes: Mapping[str, tuple[int, ...]]  # drum -> its loudest attacks on its first stem (samples)
    follower_delays_ms: Mapping[str, float]  # follower stem -> its measured delay behind the close mics
    clean: Mapping[str, np.ndarray] | None = None  # drum -> its first close stem, bleed out (clean_close)
    retimed: int = 0  # onsets the cleaned close mics moved by at least MIN_MOVE_MS
    # stem -> per channel, each drum's path into it (channel_paths), measured once (beatfix.coherence)
    paths: Mapping[str, tuple[Mapping[str, object], ...]] | None = None
    kept: Mapping[str, str] | None = None  # drum -> why it keeps its hits' shift for the whole session

    def drum_of(self, stem: str) -> str | None:
        return next((d for d, stems in self.drums.items() if stem in stems), None)

    def plan_for(self, stem: str, collection: EditPlan) -> EditPlan:
        """The plan a stem is rendered with: its drum's, or the collection plan (followers, unmoved drums)."""
        drum = self.drum_of(stem)
        return self.plans[drum] if drum in self.moved else collection


def group_drums(analysis: Analysis, close_roles: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Close stems grouped by drum, each group named by its first stem (in ``close_roles`` order).

    Two stems are one drum when the analysis measured one against the other
    (:func:`beatfix.delays.drum_of`), or when they share a role and their
    delay-compensated onsets agree within :data:`SAME_DRUM_MS` in most of
    their hits (an analysis without such references, e.g. one built from truth).
    """
    names = list(close_roles)
    leader = {s: s for s in names}
    for d in analysis.mic_delays:
        if d.stem in leader and d.reference in leader:
            leader[d.stem] = leader[d.reference]
    counts: dict[str, int] = {s: 0 for s in names}
    together: dict[tuple[str, str], int] = {}
    for hit in analysis.hits:
        comp = {s: t - analysis.delay_s(s) for s, t in hit.onsets.items() if s in leader}
        for s in comp:
            counts[s] += 1
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if a in comp and b in comp and abs(comp[a] - comp[b]) <= SAME_DRUM_MS / 1000.0:
                    together[(a, b)] = together.get((a, b), 0) + 1
    for (a, b), n in together.items():
        if close_roles[a] == close_roles[b] and n >= SAME_DRUM_SHARE * max(1, min(counts[a], counts[b])):
            old, new = leader[b], leader[a]
            for s in names:
                if leader[s] == old:
                    leader[s] = new
    groups: dict[str, list[str]] = {}
    for s in names:
        groups.setdefault(leader[s], []).append(s)
    return {d: tuple(stems) for d, stems in groups.items()}


def _wanted_shifts(analysis: Analysis, plan: EditPlan, stems: Sequence[str], mode: str, strength: float,
                   exclude_ms: float, deliberate_slots: set[int]) -> list[float]:
    """Per piece of ``plan``, the shift (samples) that puts this drum on its slot; the piece's own if none."""
    sr = plan.sample_rate
    min_move = MIN_MOVE_MS * sr / 1000.0
    wanted = []
    for edit in plan.edits:
        indices = (edit.hit_index, *edit.merged_hit_indices)
        hits = [analysis.hits[i] for i in indices]
        if mode == "fix" and any(h.slot in deliberate_slots for h in hits):
            wanted.append(float(edit.shift_samples))  # the rudiment is played as recorded
            continue
        per_hit = []
        for hit in hits:
            # the drum's first stem (the one timed again on its cleaned signal) when it has the hit,
            # else its other mics, delay-compensated
            first = stems[0]
            times = ([hit.onsets[first] - analysis.delay_s(first)] if first in hit.onsets
                     else [hit.onsets[s] - analysis.delay_s(s) for s in stems if s in hit.onsets])
            if not times:
                continue
            deviation_s = float(np.mean(times)) - float(analysis.grid.slot_time(hit.slot))
            per_hit.append(0.0 if abs(deviation_s) * 1000.0 <= exclude_ms else -strength * deviation_s * sr)
        w = float(np.mean(per_hit)) if per_hit else float(edit.shift_samples)
        wanted.append(float(edit.shift_samples) if abs(w - edit.shift_samples) < min_move else w)
    return wanted


def fit_plan(plan: EditPlan, wanted: Sequence[float]) -> EditPlan:
    """``plan`` with its shifts replaced by ``wanted``, reduced where a seam would not fit (as the planner does)."""
    edits = []
    prev, prev_shift = None, 0
    for edit, w in zip(plan.edits, wanted):
        room = decay_room_samples(prev, edit.cut_sample, plan.protect_samples,
                                  room_from_sample=edit.room_from_sample)
        low = prev_shift - max_earlier_samples(room, plan.xfade_samples)
        high = prev_shift + max_later_samples(room, plan.xfade_samples)
        edge_low, edge_high = max(low, -edit.cut_sample), min(high, plan.n_samples - 1 - edit.attack_sample)
        if edge_low <= edge_high:
            low, high = edge_low, edge_high
        shift = int(min(max(math.floor(w + 0.5), low), high))
        # the collection plan's fade was fitted to its own move; a changed move gets the renderer's default
        correlation = edit.xfade_correlation if shift == edit.shift_samples else None
        edits.append(replace(edit, shift_samples=shift, xfade_correlation=correlation))
        prev, prev_shift = edit, shift
    return replace(plan, edits=tuple(edits))


def _retime(analysis: Analysis, clean: Mapping[str, np.ndarray]) -> tuple[Analysis, int]:
    """``analysis`` with each drum's onsets on its first close stem timed again on the cleaned signal."""
    from .refine import refine_times
    from .types import Stem

    sr = analysis.sample_rate
    new: dict[tuple[str, float], float] = {}
    for drum, mono in clean.items():
        times = sorted({h.onsets[drum] for h in analysis.hits if drum in h.onsets})
        stem = Stem(drum, np.asarray(mono, dtype=np.float32)[None, :], sr, "close")
        for t, r in zip(times, refine_times(stem, times, RETIME_MAX_MS)):
            if r is not None:
                new[(drum, t)] = r
    moved = sum(1 for (_, t), r in new.items() if abs(r - t) * 1000.0 >= MIN_MOVE_MS)
    hits = tuple(replace(h, onsets={s: new.get((s, t), t) for s, t in h.onsets.items()}) for h in analysis.hits)
    return replace(analysis, hits=hits), moved


def plan_drums(analysis: Analysis, plan: EditPlan, *, close_roles: Mapping[str, str], mode: str = "fix",
               strength_pct: float = 100.0, exclude_within_ms: float = 0.0,
               close_mono: Mapping[str, np.ndarray] | None = None) -> DrumPlans | None:
    """Each drum's plan for ``--flams fix`` or ``fix-all``; None for ``keep`` (the collection plan alone).

    ``close_roles``: close stem -> role, in session order. ``strength_pct`` and
    ``exclude_within_ms`` mean what they mean for :func:`beatfix.plan.plan_edits`,
    applied to each drum's own onset. ``close_mono``: close stem -> its mono
    audio; with it each drum's onsets are timed again on its cleaned close mic,
    and the cleaned signals are kept for rendering.
    """
    if check_flam_mode(mode) == "keep":
        return None
    drums = group_drums(analysis, close_roles)
    strokes = {}
    for drum in drums:
        own = [o for o in analysis.onsets if o.stem == drum]
        strokes[drum] = tuple(loudest_strokes([o.time_s for o in own], [o.level_db for o in own],
                                              analysis.sample_rate))
    clean, retimed, timing = None, 0, analysis
    if close_mono is not None:
        clean = _clean(drums, strokes, {d: close_mono[d] for d in drums if d in close_mono}, analysis.sample_rate)
        if analysis.engine != "oracle":  # an analysis built from a session's truth has its onsets exactly
            timing, retimed = _retime(analysis, clean)
    deliberate = {f.slot for f in analysis.flams if f.deliberate}
    plans: dict[str, EditPlan] = {}
    moved: list[str] = []
    fixed: set[int] = set()
    for drum, stems in drums.items():
        wanted = _wanted_shifts(timing, plan, stems, mode, strength_pct / 100.0, exclude_within_ms, deliberate)
        drum_plan = fit_plan(plan, wanted)
        plans[drum] = drum_plan
        changed = [k for k, (a, b) in enumerate(zip(drum_plan.edits, plan.edits))
                   if a.shift_samples != b.shift_samples]
        if changed:
            moved.append(drum)
            for k in changed:
                fixed.update((plan.edits[k].hit_index, *plan.edits[k].merged_hit_indices))
    # Only the follower's own delay, against its best reference, is measured reliably (its delays behind
    # the other close mics are often another drum's); every drum of a kit reaches it within a few ms of that.
    delays = {d.stem: d.delay_ms for d in analysis.mic_delays if d.stem not in close_roles
              and (d.reference is not None or d.delay_ms != 0.0) and math.isfinite(d.delay_ms)}
    return DrumPlans(mode, drums, plans, tuple(moved), frozenset(fixed), strokes, delays, clean, retimed)


def clean_close(drums: DrumPlans, close_mono: Mapping[str, np.ndarray], sample_rate: int) -> dict[str, np.ndarray]:
    """Each drum's first close stem with the other drums' bleed taken out, float32.

    These are the signals every part is estimated from: a kick mic's part in
    the overheads would otherwise carry the hi-hat it hears 25 dB down, and
    move it with the kick (a ghost hi-hat 25-30 dB below the real one, off
    its slot, which a quiet gap shows).
    """
    return _clean(drums.drums, drums.strokes, close_mono, sample_rate)


def _clean(drums: Mapping[str, tuple[str, ...]], strokes: Mapping[str, tuple[int, ...]],
           close_mono: Mapping[str, np.ndarray], sample_rate: int) -> dict[str, np.ndarray]:
    regressors = {d: close_mono[d] for d in drums if d in close_mono and strokes.get(d)}
    out = {}
    for drum, x in close_mono.items():
        others = {e: r for e, r in regressors.items() if e != drum}
        cleaned = np.array(x, dtype=np.float32)
        if others:
            paths = estimate_paths(others, strokes, x, sample_rate, lead_ms=0.0, lag_ms=BLEED_MAX_MS)
            for e, path in paths.items():
                cleaned -= apply_path(path, others[e])
        out[drum] = cleaned
    return out


def channel_paths(audio: np.ndarray, drums: DrumPlans, close_mono: Mapping[str, np.ndarray], sample_rate: int, *,
                  own_drum: str | None = None, delay_ms: float | None = None,
                  room: bool = False) -> tuple[dict, ...]:
    """Per channel of one stem ``(n_channels, n_samples)``, every other drum's path into it (estimated jointly)."""
    regressors = {d: close_mono[d] for d in drums.drums if d in close_mono and d != own_drum and drums.strokes.get(d)}
    if not regressors:
        return tuple({} for _ in range(audio.shape[0]))
    # Another close mic hears a drum only after the drum's own mic does, and by at most a few ms.
    reach = {} if own_drum is None else {"lead_ms": 0.0, "lag_ms": BLEED_MAX_MS}
    if room:
        reach["echo_ms"] = ROOM_ECHO_MS
    hints = {d: delay_ms for d in regressors} if delay_ms is not None and own_drum is None else None
    return tuple(estimate_paths(regressors, drums.strokes, audio[c], sample_rate, hints_ms=hints, **reach)
                 for c in range(audio.shape[0]))


def render_split(audio: np.ndarray, plan: EditPlan, drums: DrumPlans, close_mono: Mapping[str, np.ndarray], *,
                 own_drum: str | None = None, delay_ms: float | None = None, room: bool = False,
                 paths: Sequence[Mapping] | None = None) -> np.ndarray:
    """One stem ``(n_channels, n_samples)`` edited drum by drum.

    Each channel is split into the other drums' parts (:mod:`beatfix.separate`)
    and a residual. The residual follows ``plan``: the collection plan for a
    follower, the drum's own plan for a close stem of ``own_drum`` (whose own
    sound is the residual there). Each other drum's part follows its plan.
    ``close_mono``: each drum's first close stem (named as the drum), mono,
    input timeline, its bleed taken out (:func:`clean_close`). ``delay_ms``:
    a follower's measured delay; each drum's path is sought near it.
    ``room``: the channel is a room mic: each drum's early reflections move with it.
    ``paths``: :func:`channel_paths` of this stem, if already measured.
    """
    out = render(audio, plan)
    movers = [d for d in drums.moved if d != own_drum and d in close_mono and drums.strokes.get(d)]
    if not movers:
        return out
    if paths is None:
        paths = channel_paths(audio, drums, close_mono, plan.sample_rate, own_drum=own_drum, delay_ms=delay_ms,
                              room=room)
    for c in range(audio.shape[0]):
        for drum in movers:
            path = paths[c].get(drum)
            if path is None or not trusted(path):
                # beatfix.coherence keeps such a drum with its hits; a caller that skipped it leaves the part here
                continue
            part = apply_path(path, close_mono[drum])[None, :].astype(audio.dtype)
            out[c] += render(part, drums.plans[drum])[0] - render(part, plan)[0]
    return out


def stem_shifts_samples(analysis: Analysis, plan: EditPlan, drums: DrumPlans | None,
                        stems: Sequence[str]) -> list[dict[str, int]]:
    """Per analysis hit, each stem's shift in samples (0 for hits the plan does not reach)."""
    out: list[dict[str, int]] = [dict.fromkeys(stems, 0) for _ in analysis.hits]
    for k, edit in enumerate(plan.edits):
        for i in (edit.hit_index, *edit.merged_hit_indices):
            for s in stems:
                own = drums.plan_for(s, plan) if drums is not None else plan
                out[i][s] = own.edits[k].shift_samples
    return out
