"""The main job as a pure function: analysis + plan -> edited stems and what changed.

By default (``flams="keep"``) every stem of a session is rendered with one
plan, so all channels get identical cuts, shifts and fades: the phase between
the mics is kept exactly (collection mode). With ``flams="fix"`` or
``"fix-all"`` each drum's close mics get a plan of their own over the same
cuts, and every other channel is split into the drums' parts, which move with
their drums, and a residual, which moves with the hit (:mod:`beatfix.flamfix`).
The renderer treats each stem alone given its plan, so stems are rendered one
at a time (:func:`render_stems`): a long session never needs a second, edited
copy of itself in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Optional

import numpy as np

from .bars import bar_beat
from .coherence import keep_coherent
from .flamfix import DrumPlans, check_flam_mode, clean_close, plan_drums, render_split, stem_shifts_samples
from .errors import ParameterError
from .plan import EditPlan, plan_edits
from .sections import SectionRules
from .render import render
from .types import Analysis, Session, Stem

# The edits.json layout; beatfix render refuses another. Bump when a field changes meaning.
EDITS_SCHEMA = "beatfix-edits/2"  # 2: bar|beat, status, exact plan fields; provenance


@dataclass(frozen=True)
class TimingSummary:
    n_hits: int
    mean_abs_ms: float
    p95_abs_ms: float
    max_abs_ms: float

    @staticmethod
    def of(deviations_ms: np.ndarray) -> "TimingSummary":
        d = np.abs(np.asarray(deviations_ms, dtype=float))
        if d.size == 0:
            return TimingSummary(0, 0.0, 0.0, 0.0)
        return TimingSummary(int(d.size), float(d.mean()), float(np.percentile(d, 95)), float(d.max()))


@dataclass(frozen=True)
class AlignResult:
    stems: tuple[Stem, ...]  # edited, same names, formats and lengths as the inputs
    plan: EditPlan
    before: dict[str, TimingSummary]  # per close stem, planned from the analysis
    after: dict[str, TimingSummary]
    drums: DrumPlans | None = None  # each drum's own plan (--flams fix, fix-all); None: one plan for all


def hit_shifts_s(analysis: Analysis, plan: EditPlan) -> np.ndarray:
    """Collection shift in seconds of each hit of the analysis (0 for hits the plan leaves alone)."""
    shifts = np.zeros(len(analysis.hits))
    for edit in plan.edits:
        for i in (edit.hit_index, *edit.merged_hit_indices):
            shifts[i] = edit.shift_samples / plan.sample_rate
    return shifts


def hit_targets_s(analysis: Analysis, rules: SectionRules | None = None) -> list[float]:
    """Each hit's target: its section's slot, or its analysis slot."""
    if rules is not None:
        return list(rules.target_s)
    return [float(analysis.grid.slot_time(hit.slot)) for hit in analysis.hits]


def stem_deviation_table(analysis: Analysis, plan: EditPlan, drums: DrumPlans | None = None,
                         rules: SectionRules | None = None) -> tuple[dict, dict]:
    """Per close stem, its own onsets' deviation from their slots (``rules``: their sections') before and after."""
    before: dict[str, list[float]] = {}
    after: dict[str, list[float]] = {}
    stems = sorted({s for hit in analysis.hits for s in hit.onsets})
    shifts = stem_shifts_samples(analysis, plan, drums, stems)
    for hit, shift, slot_t in zip(analysis.hits, shifts, hit_targets_s(analysis, rules)):
        for stem, onset in hit.onsets.items():
            t = onset - analysis.delay_s(stem)
            before.setdefault(stem, []).append((t - slot_t) * 1000.0)
            after.setdefault(stem, []).append((t + shift[stem] / plan.sample_rate - slot_t) * 1000.0)
    return before, after


def align_session(
    session: Session,
    analysis: Analysis,
    *,
    strength_pct: float = 100.0,
    exclude_within_ms: float = 0.0,
    pad_ms: float = 3.0,
    xfade_ms: float = 4.0,
    flams: str = "keep",
    render_audio: bool = True,
    progress: Optional[Callable[[str, float], None]] = None,
    rules: SectionRules | None = None,
) -> AlignResult:
    """Plan the edit and (unless ``render_audio`` is False, for --dry-run) render every stem.

    ``flams``: ``keep`` (one shift per hit for every channel), ``fix`` (each
    drum on its own slot, deliberate flams as played) or ``fix-all``.
    ``rules`` (:func:`beatfix.sections.resolve`): sections and locked spans;
    they need ``flams="keep"`` (per-drum plans do not know the locks).
    """
    check_flam_mode(flams)
    if rules is not None and flams != "keep":
        raise ParameterError("--range, --lock and --sections work with --flams keep only")
    plan = plan_edits(analysis, n_samples=session.n_samples, strength_pct=strength_pct,
                      exclude_within_ms=exclude_within_ms, pad_ms=pad_ms, xfade_ms=xfade_ms,
                      audio=[s.audio for s in session.stems], rules=rules)
    close_roles = {s.name: s.role for s in session.close_stems}
    drums = plan_drums(analysis, plan, close_roles=close_roles, mode=flams, strength_pct=strength_pct,
                       exclude_within_ms=exclude_within_ms,
                       close_mono=None if flams == "keep" else {s: session.stem(s).mono() for s in close_roles})
    if drums is not None:
        drums = keep_coherent(session, plan, drums)
    stems = session.stems
    if render_audio:
        stems = tuple(render_stems(session, plan, drums=drums, progress=progress))
    before, after = stem_deviation_table(analysis, plan, drums, rules)
    return AlignResult(
        stems=stems,
        plan=plan,
        before={k: TimingSummary.of(v) for k, v in before.items()},
        after={k: TimingSummary.of(v) for k, v in after.items()},
        drums=drums,
    )


def render_stems(session: Session, plan: EditPlan, *, drums: DrumPlans | None = None,
                 progress: Optional[Callable[[str, float], None]] = None) -> Iterator[Stem]:
    """Each stem edited by ``plan``, one at a time, in session order (a stem without edits as it is).

    With ``drums`` (:func:`beatfix.flamfix.plan_drums`), close stems follow
    their drum's plan and followers are split and re-timed drum by drum.
    A generator: the caller writes (or keeps) each edited stem before the next
    is rendered, so at most one edited stem exists at a time.
    """
    total = max(1, sum(s.n_channels for s in session.stems))
    done = 0
    close = None
    if drums is not None and drums.moved:
        close = drums.clean if drums.clean is not None else \
            clean_close(drums, {d: session.stem(d).mono() for d in drums.drums}, session.sample_rate)
    for stem in session.stems:
        if not plan.edits:
            yield stem
            continue
        if progress:
            base, share = done / total, stem.n_channels / total
            callback = lambda f, base=base, share=share: progress("rendering", base + share * f)  # noqa: E731
        else:
            callback = None
        if close is None or drums is None:  # close is set only with drums
            audio = render(stem.audio, plan, progress=callback)
        else:
            own = drums.drum_of(stem.name)
            paths = drums.paths.get(stem.name) if drums.paths is not None else None
            audio = render_split(stem.audio, drums.plan_for(stem.name, plan), drums, close, own_drum=own,
                                 delay_ms=drums.follower_delays_ms.get(stem.name), room=stem.role == "room",
                                 paths=paths)
        yield replace(stem, audio=audio)
        done += stem.n_channels


def _drum_shifts(plan: EditPlan, drums: DrumPlans | None, k: int) -> dict[str, int]:
    """Shifts of edit ``k``'s drums that differ from the edit's own (per-drum plans only)."""
    if drums is None:
        return {}
    own = {d: drums.plans[d].edits[k].shift_samples for d in drums.moved}
    return {d: v for d, v in own.items() if v != plan.edits[k].shift_samples}


def edit_rows(analysis: Analysis, plan: EditPlan, drums: DrumPlans | None = None) -> list[dict]:
    """One row per edit: where (bar|beat, seconds, samples), which stems, the shift, and its status.

    ``status`` (:attr:`beatfix.plan.Edit.status`): ``moved``, ``zero`` (already
    on the slot), ``excluded`` (within exclude-within), ``capped`` (reduced
    because hits would collide or a locked span is next to it; ``wanted_shift_ms``
    is what the hit asked for) or ``locked`` (a span played as recorded: one
    piece, ``merged_hits`` are the span's other hits). ``slot_time_s`` is where
    the hit is aimed (its section's grid, with a sections file).
    ``stems`` are the close mics whose onsets make the piece's hits.
    """
    sr = plan.sample_rate
    rows = []
    for k, e in enumerate(plan.edits):
        slot_time_s = float(analysis.grid.slot_time(e.slot)) if e.target_s is None else e.target_s
        where = bar_beat(analysis.grid, slot_time_s)
        hits = (e.hit_index, *e.merged_hit_indices)
        wanted = e.shift_samples if e.wanted_shift_samples is None else e.wanted_shift_samples
        row = {
            "hit": e.hit_index,
            "slot": e.slot,
            "slot_time_s": round(slot_time_s, 6),
            "position": str(where),
            "bar": where.bar,
            "beat": where.beat,
            "tick": where.tick,
            "time_s": round(float(analysis.hits[e.hit_index].time_s), 6),
            "stems": sorted({s for i in hits for s in analysis.hits[i].onsets}),
            "merged_hits": list(e.merged_hit_indices),
            "cut_s": round(e.cut_sample / sr, 6),
            "cut_sample": e.cut_sample,
            "attack_s": round(e.attack_sample / sr, 6),
            "shift_ms": round(e.shift_samples / sr * 1000.0, 4),
            "shift_samples": e.shift_samples,
            "wanted_shift_ms": round(wanted / sr * 1000.0, 4),
            "status": e.status,
            "deviation_ms": round(e.deviation_ms, 3),
            # Exact plan fields (beatfix render): correlations unrounded, so a re-render is bit-identical.
            "attack_sample": e.attack_sample,
            "last_attack_sample": e.last_attack_sample,
            "room_from_sample": e.room_from_sample,
            "xfade_correlation": e.xfade_correlation,
            # The seam the correlation was measured for, [cut_sample, move]: render measures a changed one again.
            "xfade_measured_for": [e.cut_sample, abs(e.shift_samples - (plan.edits[k - 1].shift_samples if k else 0))],
        }
        if drums is not None:
            own = _drum_shifts(plan, drums, k)
            row["drum_shifts_ms"] = {d: round(v / sr * 1000.0, 4) for d, v in own.items()}
            row["drum_shifts_samples"] = own
        rows.append(row)
    return rows


def hits_moved(plan: EditPlan, drums: DrumPlans | None = None) -> int:
    """Hits whose audio actually moves: their piece's shift, or one of its drums' shifts, is not 0."""
    return sum(1 + len(e.merged_hit_indices) for k, e in enumerate(plan.edits)
               if e.shift_samples != 0 or any(_drum_shifts(plan, drums, k).values()))


def edits_document(analysis: Analysis, plan: EditPlan, drums: DrumPlans | None = None, *,
                   stems: tuple[Stem, ...] | None = None, check=None) -> dict:
    """``edits.json``'s edit list: every cut and shift, enough to rebuild the edit in a DAW.

    Each edit also carries what rebuilds the plan exactly
    (:func:`beatfix.editlist.plan_from_document`, ``beatfix render``): its
    attack and merged hits in samples, where its seam's room starts and the
    crossfade correlation measured for its move. ``stems`` (the session's)
    lists each input file with its absolute path and own length.

    With per-drum plans, ``drums`` lists each drum's stems and every edit its
    drums' own shifts (``drum_shifts_ms``, only those that differ from the
    edit's ``shift_ms``, which followers' residual and unmoved drums get).
    ``check`` (:class:`beatfix.selfcheck.SelfCheck`): its summary as
    ``self_check``, and on every edit ``checked`` and, where it failed,
    ``check_failed`` (the reasons) and ``reverted`` (``one piece``, ``unmoved`` or null).
    Provenance (version, inputs, options, model) is added by :mod:`beatfix.pipeline`.
    """
    doc = {
        "schema": EDITS_SCHEMA,
        "sample_rate": plan.sample_rate,
        "n_samples": plan.n_samples,
        "tempo_bpm": round(analysis.tempo_bpm, 4),
        "grid_offset_s": round(analysis.grid.offset_s, 6),
        "steps_per_beat": analysis.grid.steps_per_beat,
        "swing_pct": analysis.grid.swing_pct,
        "pad_ms": plan.pad_ms,
        "xfade_ms": plan.xfade_ms,
        "protect_ms": plan.protect_ms,
        "flams": drums.mode if drums is not None else "keep",
    }
    if drums is not None:
        doc["drums"] = {d: list(names) for d, names in drums.drums.items()}
        doc["drums_kept"] = dict(drums.kept or {})
    if check is not None:
        doc["self_check"] = check.as_dict()
    if stems is not None:
        doc["stems"] = [stem_entry(s) for s in stems]
    rows = edit_rows(analysis, plan, drums)
    doc["edits"] = rows
    if check is not None:
        failed = check.by_edit()
        for k, row in enumerate(rows):
            row["checked"] = True
            if k in failed:
                row["check_failed"] = failed[k]["reasons"]
                row["reverted"] = failed[k]["reverted"]
    return doc


def stem_entry(stem: Stem) -> dict:
    """A stem as edits.json lists it: enough to find the file again and check it is the same length."""
    return {
        "name": stem.name,
        "path": str(stem.path.resolve()) if stem.path is not None else None,
        "n_channels": stem.n_channels,
        "n_samples": stem.source_n_samples or stem.n_samples,
        "format": stem.format,
        "subtype": stem.subtype,
    }


def _spread_ms(onsets: dict[str, float], analysis: Analysis) -> float:
    comp = [t - analysis.delay_s(s) for s, t in onsets.items()]
    return (max(comp) - min(comp)) * 1000.0 if comp else 0.0


def flam_rows(analysis: Analysis, plan: EditPlan, drums: DrumPlans | None = None, check=None) -> list[dict]:
    """Each flam before and after the edit.

    ``spread_*_ms`` is the flam's own measure: drums of the hit apart
    (latest minus earliest delay-compensated onset), or for a deliberate flam
    grace to main stroke, which no mode changes. ``drums_spread_*_ms`` is the
    drums' spread in both cases; ``fixed`` says whether the hit's drums got
    shifts of their own (``--flams fix``; ``fix-all`` for deliberate ones).
    """
    stems = sorted({s for hit in analysis.hits for s in hit.onsets})
    shifts = stem_shifts_samples(analysis, plan, drums, stems)
    by_slot = {h.slot: i for i, h in enumerate(analysis.hits)}
    sr = plan.sample_rate
    rows = []
    failed = check.by_edit() if check is not None else {}
    edit_of = {i: k for k, e in enumerate(plan.edits) for i in (e.hit_index, *e.merged_hit_indices)}
    for f in analysis.flams:
        i = by_slot.get(f.slot)
        kept = {}
        if drums is not None:
            for stem in f.channels:
                d = drums.drum_of(stem)
                if d is not None and d in (drums.kept or {}):
                    kept[d] = (drums.kept or {})[d]
            k = edit_of.get(i) if i is not None else None
            if k in failed and failed[k]["reverted"]:
                for stem in f.channels:
                    d = drums.drum_of(stem)
                    if d is not None and d not in kept:
                        kept[d] = f"self-check: {'; '.join(failed[k]['reasons'])} (reverted: {failed[k]['reverted']})"
        moved = {k: shifts[i].get(k, 0) / sr if i is not None else 0.0 for k in f.channels}
        after = {k: v + moved[k] for k, v in f.channels.items()}
        drums_before, drums_after = _spread_ms(dict(f.channels), analysis), _spread_ms(after, analysis)
        rows.append({
            "time_s": round(f.time_s, 6),
            "slot": f.slot,
            "deliberate": f.deliberate,
            "fixed": bool(drums is not None and i is not None and i in drums.fixed_hits),
            "spread_before_ms": round(f.spread_ms, 3),
            "spread_after_ms": round(f.spread_ms if f.deliberate else drums_after, 3),
            "drums_spread_before_ms": round(drums_before, 3),
            "drums_spread_after_ms": round(drums_after, 3),
            "channels_before": {k: round(v, 6) for k, v in f.channels.items()},
            "channels_after": {k: round(v, 6) for k, v in after.items()},
            "kept_reason": kept,
        })
    return rows


def flam_csv(rows: list[dict]) -> str:
    lines = ["time_s,slot,deliberate,fixed,spread_before_ms,spread_after_ms,drums_spread_before_ms,"
             "drums_spread_after_ms,channels_before,channels_after,kept_reason"]
    for r in rows:
        before = " ".join(f"{k}={v:.6f}" for k, v in r["channels_before"].items())
        after = " ".join(f"{k}={v:.6f}" for k, v in r["channels_after"].items())
        kept = " | ".join(f"{d}: {why}" for d, why in r.get("kept_reason", {}).items()).replace(",", ";")
        lines.append(f"{r['time_s']:.6f},{r['slot']},{int(r['deliberate'])},{int(r['fixed'])},"
                     f"{r['spread_before_ms']:.3f},{r['spread_after_ms']:.3f},{r['drums_spread_before_ms']:.3f},"
                     f"{r['drums_spread_after_ms']:.3f},{before},{after},{kept}")
    return "\n".join(lines) + "\n"
