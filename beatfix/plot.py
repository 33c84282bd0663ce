"""PNG plots: timing deviation over time per drum."""

from __future__ import annotations

import io

from .report import stem_deviations_ms
from .types import Analysis, Session


def deviation_plot_png(analysis: Analysis, session: Session, *, title: str = "") -> bytes:
    """Deviation from the grid (ms) against time (s), one colour per close mic, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    for stem in session.close_stems:
        times, devs = stem_deviations_ms(analysis, stem.name)
        if times.size:
            ax.plot(times, devs, "o", ms=3.5, alpha=0.8, label=f"{stem.name} ({stem.role})")
    for flam in analysis.flams:
        ax.axvline(flam.time_s, color="0.85", lw=0.8, zorder=0)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("deviation from grid (ms)  [+ late, - early]")
    ax.set_title(title or f"{analysis.tempo_bpm:.2f} BPM, grid offset {analysis.grid.offset_s * 1000:.1f} ms"
                 + (f", {len(analysis.flams)} flams (grey)" if analysis.flams else ""))
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8, ncols=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
