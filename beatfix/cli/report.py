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
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per hit to this CSV file."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG of deviation over time per drum."),
) -> None:
    from ..analyse import analyse_session
    from ..audio_io import load_session, write_bytes_atomic, write_text_atomic
    from ..engine import channel_minutes_of, choose_engine
    from ..grid import check_bpm, check_swing, parse_grid
    from ..report import analysis_document, hits_csv
    from ..roles import parse_role_overrides

    paths = common.stems_or_fail(stems)
    parse_grid(grid)
    check_swing(swing)
    if bpm is not None:
        check_bpm(bpm)
    for out in (csv_path, plot_path):
        if out is not None and out.resolve() in {p.resolve() for p in paths}:
            raise typer.BadParameter(f"{out} is an input file")
    session, warnings = load_session(paths, roles=parse_role_overrides(role))
    common.warn(warnings, quiet=as_json)
    choice = choose_engine(engine, device, model_path=model, channel_minutes=channel_minutes_of(session))
    common.warn(list(choice.notes), quiet=as_json)
    common.info([choice.device_reason], quiet=as_json)
    with common.progress_bar("analysing", enabled=common.is_tty() and not as_json) as progress:
        analysis = analyse_session(session, bpm=bpm, grid=grid, swing_pct=swing,
                                   flam_threshold_ms=flam_threshold_ms, judge=choice.judge,
                                   grid_offset_s=grid_offset, progress=progress)
    doc = analysis_document(analysis, session, grid_spec=grid)
    if csv_path is not None:
        write_text_atomic(csv_path, hits_csv(analysis, [s.name for s in session.close_stems]))
    if plot_path is not None:
        from ..plot import deviation_plot_png

        write_bytes_atomic(plot_path, deviation_plot_png(analysis, session))
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    from .views import print_report

    print_report(common.stdout_console(), doc)
