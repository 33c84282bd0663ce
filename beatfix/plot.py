"""Timing plots an engineer reads: bars across, one lane per drum, before and after.

Each close mic gets a lane; a point is one of its onsets, at its bar|beat
position (bars from the analysis grid's tempo map), its height the
deviation in ms from the slot it is aimed at (+ late). ``align`` draws where
each onset was played and where the plan lands it, joined by a thin line.
A long session is cut into rows of a few bars (several rows a page in a
PDF), not squeezed into one cloud of dots.

The format follows the file name: ``.png``, ``.pdf`` (one page per few
rows) or ``.svg``; anything else is refused before any work starts
(:func:`plot_format`). matplotlib's Agg backend, imported when drawing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import ParameterError

if TYPE_CHECKING:
    from .flamfix import DrumPlans
    from .plan import EditPlan
    from .sections import SectionRules
    from .tempomap import TempoMap
    from .types import Analysis, Session

FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
BARS_PER_ROW = 8
ROWS_PER_PAGE = 4  # PDF pages; a PNG or SVG holds every row
LANE_HEIGHT_IN = 0.85
WIDTH_IN = 11.0
BEFORE_COLOUR = "#e07b00"  # as played
AFTER_COLOUR = "#1f5fbf"  # after the edit
LOCK_COLOUR = "#d9d9d9"
EARLY_Q = 0.25  # a row starts this many quarter notes before its first bar: early downbeats stay with their bar
NICE_LIMITS_MS = (4.0, 10.0, 20.0, 40.0, 60.0, 100.0, 200.0, 400.0)  # the lanes' y range, +-; beyond: clipped


def plot_format(path: Path | str, *, flag: str = "--plot") -> str:
    """``png``, ``pdf`` or ``svg`` from the file name; any other name is one ParameterError line."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ParameterError(f"{flag} {path}: name a .png, .pdf or .svg file (got {suffix or 'no extension'!r})")
    return FORMATS[suffix]


@dataclass(frozen=True)
class Lane:
    """One close mic: its onsets' times and deviations before, and (align) after the edit."""

    name: str  # stem name
    role: str
    before_s: np.ndarray
    before_ms: np.ndarray
    after_s: np.ndarray | None = None
    after_ms: np.ndarray | None = None


def report_lanes(analysis: "Analysis", session: "Session") -> list[Lane]:
    """Each close mic's onsets against their analysis slots (mic delays removed)."""
    from .report import stem_deviations_ms

    lanes = []
    for stem in session.close_stems:
        times, devs = stem_deviations_ms(analysis, stem.name)
        lanes.append(Lane(stem.name, stem.role, times, devs))
    return lanes


def align_lanes(analysis: "Analysis", session: "Session", plan: "EditPlan", *, drums: "DrumPlans | None" = None,
                rules: "SectionRules | None" = None) -> list[Lane]:
    """Each close mic's onsets as played and where the plan lands them, against their targets."""
    from .align import hit_targets_s
    from .flamfix import stem_shifts_samples

    shifts = stem_shifts_samples(analysis, plan, drums, sorted({s for h in analysis.hits for s in h.onsets}))
    targets = hit_targets_s(analysis, rules)
    lanes = []
    for stem in session.close_stems:
        delay = analysis.delay_s(stem.name)
        t0, d0, t1, d1 = [], [], [], []
        for hit, shift, target in zip(analysis.hits, shifts, targets):
            if stem.name not in hit.onsets:
                continue
            t = hit.onsets[stem.name] - delay
            landed = t + shift.get(stem.name, 0) / plan.sample_rate
            t0.append(t)
            d0.append((t - target) * 1000.0)
            t1.append(landed)
            d1.append((landed - target) * 1000.0)
        lanes.append(Lane(stem.name, stem.role, np.array(t0), np.array(d0), np.array(t1), np.array(d1)))
    return lanes


@dataclass(frozen=True)
class Row:
    first_bar: int
    last_bar: int
    start_q: float  # quarter-note position of the first bar's start
    end_q: float  # the start of the bar after the last


def bar_rows(tempo_map: "TempoMap", start_s: float, end_s: float, *, bars_per_row: int = BARS_PER_ROW) -> list[Row]:
    """The session cut into rows of ``bars_per_row`` bars, from the bar holding ``start_s`` to the one holding ``end_s``."""
    q0 = float(tempo_map.position_at(start_s))
    q1 = float(tempo_map.position_at(end_s))
    longest = max(m.bar_q for m in tempo_map.meters)
    starts = tempo_map.bar_starts_q(q0 - longest, q1)
    starts = starts[starts <= q1 + 1e-9]
    held = np.flatnonzero(starts <= q0 + 1e-9)
    starts = starts[held[-1]:] if held.size else np.concatenate([[q0], starts])
    last_bar_q = tempo_map.meter_at(max(float(starts[-1]), 0.0)).bar_q
    edges = np.append(starts, starts[-1] + last_bar_q)
    rows = []
    for i in range(0, starts.size, bars_per_row):
        j = min(i + bars_per_row, starts.size)
        first = tempo_map.bar_beat(float(starts[i]))[0]
        last = tempo_map.bar_beat(float(starts[j - 1]))[0]
        rows.append(Row(first, last, float(edges[i]), float(edges[j])))
    return rows


def _limit_ms(lanes: Sequence[Lane]) -> float:
    values = [np.abs(lane.before_ms) for lane in lanes if lane.before_ms.size]
    values += [np.abs(lane.after_ms) for lane in lanes if lane.after_ms is not None and lane.after_ms.size]
    if not values:
        return 10.0
    worst = float(np.max(np.concatenate(values))) * 1.1
    return next((x for x in NICE_LIMITS_MS if x >= worst), NICE_LIMITS_MS[-1])


def _draw_row(fig, spec, row: Row, lanes: Sequence[Lane], tempo_map: "TempoMap", limit: float,
              locked_s: Sequence[tuple[float, float]], first_row: bool):
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import FixedLocator

    bar_q = tempo_map.bar_starts_q(row.start_q - 1e-9, row.end_q + 1e-9)
    bar_q = bar_q[(bar_q >= row.start_q - 1e-9) & (bar_q <= row.end_q + 1e-9)]
    beats: list[float] = []
    for a, b in zip(bar_q, list(bar_q[1:]) + [row.end_q]):
        beat_q = tempo_map.meter_at(max(float(a), 0.0)).beat_q
        beats.extend(np.arange(a, b - 1e-9, beat_q))
    labels = [str(tempo_map.bar_beat(float(q))[0]) for q in bar_q]
    axes = []
    for k, lane in enumerate(lanes):
        ax = fig.add_subplot(spec[k, 0])
        axes.append(ax)
        for a_s, b_s in locked_s:
            qa, qb = float(tempo_map.position_at(a_s)), float(tempo_map.position_at(b_s))
            if qb > row.start_q and qa < row.end_q:
                ax.axvspan(max(qa, row.start_q), min(qb, row.end_q), color=LOCK_COLOUR, lw=0, zorder=0)
        ax.axhline(0.0, color="0.2", lw=0.7, zorder=1)
        x0 = np.asarray(tempo_map.position_at(lane.before_s), dtype=float).reshape(-1)
        keep0 = (x0 >= row.start_q - EARLY_Q) & (x0 < row.end_q - EARLY_Q)
        if lane.after_s is not None and lane.after_ms is not None:
            x1 = np.asarray(tempo_map.position_at(lane.after_s), dtype=float).reshape(-1)
            y0, y1 = np.clip(lane.before_ms, -limit, limit), np.clip(lane.after_ms, -limit, limit)
            # one collection, not a line per hit: a 5-minute session has thousands
            joins = np.stack([np.stack([x0[keep0], y0[keep0]], axis=1), np.stack([x1[keep0], y1[keep0]], axis=1)], axis=1)
            ax.add_collection(LineCollection(list(joins), colors="0.6", linewidths=0.6, zorder=2))
            ax.plot(x1[keep0], np.clip(lane.after_ms[keep0], -limit, limit), "o", ms=3.2, color=AFTER_COLOUR, zorder=4)
        ax.plot(x0[keep0], np.clip(lane.before_ms[keep0], -limit, limit), "o", ms=3.6, mfc="none", mec=BEFORE_COLOUR, mew=1.0, zorder=3)
        ax.set_xlim(row.start_q - EARLY_Q, row.end_q - EARLY_Q)
        ax.set_ylim(-limit, limit)
        # Bar and beat lines as two collections: tick objects on every lane of a long session
        # made a 5-minute PDF take half a minute.
        ax.vlines(beats, -limit, limit, colors="0.88", linewidths=0.5, zorder=0.5)
        ax.vlines(bar_q, -limit, limit, colors="0.55", linewidths=0.8, zorder=0.6)
        ax.set_yticks([-limit / 2, 0, limit / 2])
        ax.set_yticklabels([f"{-limit / 2:+g}", "0", f"{limit / 2:+g}"])
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel(f"{lane.name}\n({lane.role})", rotation=0, ha="right", va="center", fontsize=8)
        if k == len(lanes) - 1:
            ax.xaxis.set_major_locator(FixedLocator(bar_q.tolist()))
            ax.set_xticklabels(labels)
            ax.tick_params(axis="x", labelsize=8)
        else:
            ax.set_xticks([])
        if k == 0:
            bars = f"bar {row.first_bar}" if row.first_bar == row.last_bar else f"bars {row.first_bar}-{row.last_bar}"
            ax.set_title(bars, loc="left", fontsize=9, fontweight="bold")
            if first_row:
                ax.set_title("ms from the slot, + late", loc="right", fontsize=8, color="0.3")
    axes[-1].set_xlabel("bar", fontsize=8, labelpad=1)
    return axes


def timing_plot(lanes: Sequence[Lane], tempo_map: "TempoMap", *, span_s: tuple[float, float], fmt: str,
                title: str = "", locked_s: Sequence[tuple[float, float]] = (),
                bars_per_row: int = BARS_PER_ROW, rows_per_page: int = ROWS_PER_PAGE) -> bytes:
    """The plot as ``fmt`` (``png``, ``pdf``, ``svg``) bytes: rows of bars, one lane per drum in each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if fmt not in FORMATS.values():
        raise ParameterError(f"plot format {fmt!r}: use png, pdf or svg")
    lanes = list(lanes) or [Lane("no close mic", "-", np.zeros(0), np.zeros(0))]
    # From the bar of the first onset: a count-in bar holding 0.1 s of silence is no row of its own.
    onsets = [lane.before_s for lane in lanes if lane.before_s.size]
    first_s = float(min(np.min(t) for t in onsets)) if onsets else span_s[0]
    start_s = max(span_s[0], float(tempo_map.time_at(float(tempo_map.position_at(first_s)) + EARLY_Q)))
    rows = bar_rows(tempo_map, start_s, max(span_s[1], start_s), bars_per_row=bars_per_row)
    limit = _limit_ms(lanes)
    has_after = any(lane.after_s is not None for lane in lanes)
    handles = [Line2D([], [], ls="", marker="o", mfc="none", mec=BEFORE_COLOUR, label="as played")]
    if has_after:
        handles.append(Line2D([], [], ls="", marker="o", color=AFTER_COLOUR, label="after the edit (planned)"))
    if locked_s:
        handles.append(Line2D([], [], lw=8, color=LOCK_COLOUR, label="locked: as played"))
    per_page = rows_per_page if fmt == "pdf" else len(rows)
    pages = [rows[i:i + per_page] for i in range(0, len(rows), per_page)]

    def figure(page_rows: list[Row], page: int) -> Figure:
        height = 1.1 + len(page_rows) * (len(lanes) * LANE_HEIGHT_IN + 0.55)
        fig = Figure(figsize=(WIDTH_IN, height), dpi=100)
        top = 1.0 - 0.95 / height
        outer = fig.add_gridspec(len(page_rows), 1, left=0.12, right=0.98, top=top, bottom=0.35 / height,
                                 hspace=0.55 / (len(lanes) * LANE_HEIGHT_IN))
        for r, row in enumerate(page_rows):
            inner = outer[r, 0].subgridspec(len(lanes), 1, hspace=0.08)
            _draw_row(fig, inner, row, lanes, tempo_map, limit, locked_s, first_row=r == 0)
        heading = title + (f"  (page {page + 1} of {len(pages)})" if len(pages) > 1 else "")
        fig.suptitle(heading, x=0.12, y=1.0 - 0.12 / height, ha="left", va="top", fontsize=11)
        fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.98, 1.0 - 0.38 / height), ncols=len(handles),
                   fontsize=8, frameon=False)
        return fig

    buf = io.BytesIO()
    if fmt == "pdf":
        with PdfPages(buf) as pdf:
            for i, page_rows in enumerate(pages):
                pdf.savefig(figure(page_rows, i))
    else:
        figure(pages[0], 0).savefig(buf, format=fmt)
    return buf.getvalue()


def plot_title(analysis: "Analysis", what: str) -> str:
    tempo = f"{analysis.tempo_bpm:.2f} BPM" if analysis.tempo_map is None else f"tempo map, median {analysis.tempo_bpm:.1f} BPM"
    return f"{what}: timing per drum against the {analysis.grid_spec} grid, {tempo}"


def report_plot(analysis: "Analysis", session: "Session", *, fmt: str) -> bytes:
    """``report --plot``: each drum's timing as played."""
    return timing_plot(report_lanes(analysis, session), analysis.grid.tempo_map, span_s=(0.0, analysis.duration_s),
                       fmt=fmt, title=plot_title(analysis, "as played"))


def align_plot(analysis: "Analysis", session: "Session", plan: "EditPlan", *, fmt: str,
               drums: "DrumPlans | None" = None, rules: "SectionRules | None" = None) -> bytes:
    """``align --plot``: each drum as played and where the edit lands it; locked spans shaded."""
    locked = []
    if rules is not None:
        sr = analysis.sample_rate
        locked = [(max(a, 0) / sr, min(b / sr, analysis.duration_s)) for a, b in rules.lock_spans_samples]
    title = plot_title(analysis, "before and after")
    if rules is not None and any(s.get("grid") or s.get("swing_pct") for s in rules.sections):
        title += " (sections: their own grids)"
    return timing_plot(align_lanes(analysis, session, plan, drums=drums, rules=rules), analysis.grid.tempo_map,
                       span_s=(0.0, analysis.duration_s), fmt=fmt, title=title,
                       locked_s=locked)

