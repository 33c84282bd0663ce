"""``beatfix report``: timing diagnostics without editing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from . import common

HELP = """Timing diagnostics of a multitrack drum session, without editing.

\b
Examples:
  beatfix report kick.wav snare.wav hh.wav oh_l.wav oh_r.wav --bpm 120
  beatfix report session/*.wav --json > timing.json
  beatfix report session/*.flac --grid 1/8T --plot timing.png --csv hits.csv

Shows the tempo (with its half/double candidates), each close mic's timing
against the grid (mean, SD, p95, rushing or dragging), flams, and the static
delay and polarity of every mic. Exit codes: 0 ok, 1 bad input, 2 usage error.
"""


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP, no_args_is_help=True)(report)


def report(
    stems: List[Path] = common.STEMS_ARG,
    bpm: Optional[float] = common.BPM_OPT,
    grid: str = common.GRID_OPT,
    swing: float = common.SWING_OPT,
    role: Optional[List[str]] = common.ROLE_OPT,
    grid_offset: Optional[float] = common.OFFSET_OPT,
    engine: str = common.ENGINE_OPT,
    device: str = common.DEVICE_OPT,
    model: Optional[Path] = common.MODEL_OPT,
    flam_threshold_ms: float = common.FLAM_OPT,
    as_json: bool = common.JSON_OPT,
    quiet: bool = common.QUIET_OPT,
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per hit to this CSV file."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of deviation over time per drum."),
) -> None:
    from ..audio_io import write_bytes_atomic, write_text_atomic
    from ..pipeline import AnalyseOptions, analyse
    from ..report import hits_csv

    paths = common.stems_or_fail(stems)
    options = AnalyseOptions(bpm=bpm, grid=grid, swing_pct=swing, grid_offset_s=grid_offset,
                             flam_threshold_ms=flam_threshold_ms, engine=engine, device=device, model_dir=model,
                             roles=common.role_pairs(role))
    for out in (csv_path, plot_path):
        if out is not None and out.resolve() in {p.resolve() for p in paths}:
            raise typer.BadParameter(f"{out} is an input file")
    from .progress import job_progress, session_label

    label = session_label(paths)
    with job_progress("analysing", quiet=quiet) as progress:
        result = analyse(paths, options, progress=lambda stage, fraction: progress(label, stage, fraction))
        progress(label, "done", 1.0)
    common.warn(list(result.warnings) + list(result.notes), quiet=as_json or quiet)
    doc = result.document()
    if csv_path is not None:
        write_text_atomic(csv_path, hits_csv(result.analysis, [s.name for s in result.session.close_stems]))
    if plot_path is not None:
        from ..plot import deviation_plot_png

        write_bytes_atomic(plot_path, deviation_plot_png(result.analysis, result.session))
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    if quiet:
        return
    from .views import print_report

    print_report(common.stdout_console(), doc)
