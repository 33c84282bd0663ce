"""The main job as a pure function: analysis + plan -> edited stems and what changed.

Every stem of a session is rendered with one plan, so all channels get
identical cuts, shifts and fades: the phase between the mics is kept exactly
(collection mode). The renderer treats each channel alone given the plan, so
stems are rendered one at a time (:func:`render_stems`): a long session never
needs a second, edited copy of itself in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Optional

import numpy as np

from .plan import EditPlan, plan_edits
from .render import render
from .types import Analysis, Session, Stem


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


def hit_shifts_s(analysis: Analysis, plan: EditPlan) -> np.ndarray:
    """Shift in seconds applied to each hit of the analysis (0 for hits the plan leaves alone)."""
    shifts = np.zeros(len(analysis.hits))
    for edit in plan.edits:
        shifts[edit.hit_index] = edit.shift_samples / plan.sample_rate
    return shifts


def stem_deviation_table(analysis: Analysis, shifts_s: np.ndarray) -> tuple[dict, dict]:
    """Per close stem, its own onsets' deviation from their slots before and after shifting."""
    before: dict[str, list[float]] = {}
    after: dict[str, list[float]] = {}
    for hit, shift in zip(analysis.hits, shifts_s):
        slot_t = analysis.grid.slot_time(hit.slot)
        for stem, onset in hit.onsets.items():
            t = onset - analysis.delay_s(stem)
            before.setdefault(stem, []).append((t - slot_t) * 1000.0)
            after.setdefault(stem, []).append((t + shift - slot_t) * 1000.0)
    return before, after


def align_session(
    session: Session,
    analysis: Analysis,
    *,
    strength_pct: float = 100.0,
    exclude_within_ms: float = 0.0,
    pad_ms: float = 3.0,
    xfade_ms: float = 4.0,
    render_audio: bool = True,
    progress: Optional[Callable[[str, float], None]] = None,
) -> AlignResult:
    """Plan the edit and (unless ``render_audio`` is False, for --dry-run) render every stem."""
    plan = plan_edits(analysis, n_samples=session.n_samples, strength_pct=strength_pct,
                      exclude_within_ms=exclude_within_ms, pad_ms=pad_ms, xfade_ms=xfade_ms)
    stems = session.stems
    if render_audio:
        stems = tuple(render_stems(session, plan, progress=progress))
    before, after = stem_deviation_table(analysis, hit_shifts_s(analysis, plan))
    return AlignResult(
        stems=stems,
        plan=plan,
        before={k: TimingSummary.of(v) for k, v in before.items()},
        after={k: TimingSummary.of(v) for k, v in after.items()},
    )


def render_stems(session: Session, plan: EditPlan, *,
                 progress: Optional[Callable[[str, float], None]] = None) -> Iterator[Stem]:
    """Each stem edited by ``plan``, one at a time, in session order (a stem without edits as it is).

    A generator: the caller writes (or keeps) each edited stem before the next
    is rendered, so at most one edited stem exists at a time.
    """
    total = max(1, sum(s.n_channels for s in session.stems))
    done = 0
    for stem in session.stems:
        if not plan.edits:
            yield stem
            continue
        if progress:
            base, share = done / total, stem.n_channels / total
            callback = lambda f, base=base, share=share: progress("rendering", base + share * f)  # noqa: E731
        else:
            callback = None
        yield replace(stem, audio=render(stem.audio, plan, progress=callback))
        done += stem.n_channels


def edits_document(analysis: Analysis, plan: EditPlan) -> dict:
    """``edits.json``: every cut and shift, enough to rebuild the edit in a DAW."""
    sr = plan.sample_rate
    return {
        "sample_rate": sr,
        "n_samples": plan.n_samples,
        "tempo_bpm": round(analysis.tempo_bpm, 4),
        "grid_offset_s": round(analysis.grid.offset_s, 6),
        "steps_per_beat": analysis.grid.steps_per_beat,
        "swing_pct": analysis.grid.swing_pct,
        "pad_ms": plan.pad_ms,
        "xfade_ms": plan.xfade_ms,
        "protect_ms": plan.protect_ms,
        "edits": [
            {
                "hit": e.hit_index,
                "slot": e.slot,
                "slot_time_s": round(float(analysis.grid.slot_time(e.slot)), 6),
                "cut_s": round(e.cut_sample / sr, 6),
                "cut_sample": e.cut_sample,
                "attack_s": round(e.attack_sample / sr, 6),
                "shift_ms": round(e.shift_samples / sr * 1000.0, 4),
                "shift_samples": e.shift_samples,
                "deviation_ms": round(e.deviation_ms, 3),
            }
            for e in plan.edits
        ],
    }


def flam_rows(analysis: Analysis, plan: EditPlan) -> list[dict]:
    """Each flam before and after the edit; one shift per hit keeps a flam's spread as recorded."""
    shifts = hit_shifts_s(analysis, plan)
    by_slot = {h.slot: i for i, h in enumerate(analysis.hits)}
    rows = []
    for f in analysis.flams:
        shift = shifts[by_slot[f.slot]] if f.slot in by_slot else 0.0
        rows.append({
            "time_s": round(f.time_s, 6),
            "slot": f.slot,
            "deliberate": f.deliberate,
            "spread_before_ms": round(f.spread_ms, 3),
            "spread_after_ms": round(f.spread_ms, 3),
            "channels_before": {k: round(v, 6) for k, v in f.channels.items()},
            "channels_after": {k: round(v + shift, 6) for k, v in f.channels.items()},
        })
    return rows


def flam_csv(rows: list[dict]) -> str:
    lines = ["time_s,slot,deliberate,spread_before_ms,spread_after_ms,channels_before,channels_after"]
    for r in rows:
        before = " ".join(f"{k}={v:.6f}" for k, v in r["channels_before"].items())
        after = " ".join(f"{k}={v:.6f}" for k, v in r["channels_after"].items())
        lines.append(f"{r['time_s']:.6f},{r['slot']},{int(r['deliberate'])},{r['spread_before_ms']:.3f},"
                     f"{r['spread_after_ms']:.3f},{before},{after}")
    return "\n".join(lines) + "\n"
