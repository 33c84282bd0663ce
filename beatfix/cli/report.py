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
  beatfix report session/*.flac --grid 1/8T --plot timing.pdf --csv hits.csv
  beatfix report session/*.wav --grid auto --swing auto --tempo-map-out map.mid --midi hits.mid
  beatfix report session/*.wav --tempo-map song_tempo.mid

Shows the tempo (with its half/double candidates) or the tempo map the grid
follows (segments, ramps, meters: given, or the drummer's own when no --bpm
is given and the tempo moves), the feel (straight, swung with its %, or
triplet, and the grid that fits it best), whether the grid fits the playing
(what align would refuse), each close mic's timing
against the grid (mean, SD, p95, rushing or dragging), flams, and the static
delay and polarity of every mic. Exit codes: 0 ok, 1 bad input, 2 usage error.
"""


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP, no_args_is_help=True)(report)


def report(
    stems: List[Path] = common.STEMS_ARG,
    bpm: Optional[float] = common.BPM_OPT,
    grid: str = common.GRID_OPT,
    swing: str = common.SWING_OPT,
    role: Optional[List[str]] = common.ROLE_OPT,
    grid_offset: Optional[float] = common.OFFSET_OPT,
    engine: str = common.ENGINE_OPT,
    device: str = common.DEVICE_OPT,
    model: Optional[Path] = common.MODEL_OPT,
    flam_threshold_ms: float = common.FLAM_OPT,
    as_json: bool = common.JSON_OPT,
    quiet: bool = common.QUIET_OPT,
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per hit to this CSV file."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write a timing plot by bars, one lane per drum: .png, .pdf or .svg."),
    tempo_map: Optional[Path] = common.TEMPO_MAP_OPT,
    click: Optional[Path] = common.CLICK_OPT,
    tempo_map_out: Optional[Path] = typer.Option(None, "--tempo-map-out", help="Write the tempo map the grid follows (detected, or given) as a Standard MIDI File for the DAW's conductor track."),
    midi_path: Optional[Path] = typer.Option(None, "--midi", help="Write every detected hit as General MIDI drum notes (velocity from level): a 'played' track and an 'on grid' track, over the tempo map."),
) -> None:
    from ..audio_io import write_bytes_atomic, write_text_atomic
    from ..pipeline import AnalyseOptions, analyse
    from ..report import hits_csv

    paths = common.stems_or_fail(stems)
    if plot_path is not None:
        from ..plot import plot_format

        plot_format(plot_path)  # a wrong name is refused before any work
    options = AnalyseOptions(bpm=bpm, grid=grid, swing_pct=common.swing_value(swing), grid_offset_s=grid_offset,
                             flam_threshold_ms=flam_threshold_ms, engine=engine, device=device, model_dir=model,
                             roles=common.role_pairs(role), tempo_map=tempo_map, click=click)
    for out in (csv_path, plot_path, tempo_map_out, midi_path):
        if out is not None and out.resolve() in {p.resolve() for p in paths}:
            raise typer.BadParameter(f"{out} is an input file")
    from .progress import job_progress, session_label

    label = session_label(paths)
    with job_progress("analysing", quiet=quiet) as progress:
        result = analyse(paths, options, progress=lambda stage, fraction: progress(label, stage, fraction))
        progress(label, "done", 1.0)
    common.info([result.device_reason], quiet=as_json or quiet)
    common.warn(list(result.warnings) + list(result.notes), quiet=as_json or quiet)
    doc = result.document()
    if csv_path is not None:
        write_text_atomic(csv_path, hits_csv(result.analysis, [s.name for s in result.session.close_stems]))
    if plot_path is not None:
        from ..plot import plot_format, report_plot

        write_bytes_atomic(plot_path, report_plot(result.analysis, result.session, fmt=plot_format(plot_path)))
    if tempo_map_out is not None or midi_path is not None:
        from ..midi_io import hits_midi_bytes, tempo_map_midi_bytes
        from ..report import hits_midi_tracks, session_tempo_map

        tm = session_tempo_map(result.analysis)
        end_s = result.analysis.duration_s
        if tempo_map_out is not None:
            write_bytes_atomic(tempo_map_out, tempo_map_midi_bytes(tm, end_s=end_s))
        if midi_path is not None:
            write_bytes_atomic(midi_path, hits_midi_bytes(tm, hits_midi_tracks(result.analysis, result.session),
                                                          end_s=end_s))
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    if quiet:
        return
    from .views import print_report

    print_report(common.stdout_console(), doc)
