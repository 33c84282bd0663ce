"""Options, consoles and progress shared by the commands."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import typer

STEMS_ARG = typer.Argument(None, help="Stem files (WAV, AIFF or FLAC), all of one session.", show_default=False)
BPM_OPT = typer.Option(None, "--bpm", help="Tempo in BPM (one fixed tempo). Omitted: estimated with madmom, and where the drummer's tempo moves (no click, a tempo change) the grid follows the drummer's own smoothed tempo.")
GRID_OPT = typer.Option("1/16", "--grid", help="Grid resolution: 1/4, 1/8, 1/16, 1/32, triplets 1/8T, 1/16T, or auto (the feel measured: straight, swung or triplet).")
SWING_OPT = typer.Option("50", "--swing", help="Swing in percent, 50 (straight) to 75, or auto (measured).")
TEMPO_MAP_OPT = typer.Option(None, "--tempo-map", help="The song's tempo map: a Standard MIDI File exported from the DAW (tempo and meter changes; bar 1 at the file's time 0) or a CSV of beat times (time_s[,meter] per beat).")
CLICK_OPT = typer.Option(None, "--click", help="A recorded click track (one of the stems or another file): the grid follows its beats; the click is written unchanged.")
ROLE_OPT = typer.Option(None, "--role", help="Override a stem's role, FILE=ROLE (kick, snare, hat, tom, ride, crash, perc, overhead, room, other). Repeatable.")
JSON_OPT = typer.Option(False, "--json", help="Print only JSON on stdout, for scripts.")
QUIET_OPT = typer.Option(False, "-q", "--quiet", help="No progress, warnings or summary; errors still print (--json still prints its JSON).")
ENGINE_OPT = typer.Option("auto", "--engine", help="Hit analysis: auto (= neural), neural or classic.")
DEVICE_OPT = typer.Option("auto", "--device",
                          help="Model device: auto (the CPU, or a CUDA GPU for long sessions), cpu or cuda.")
OFFSET_OPT = typer.Option(None, "--grid-offset", help="Pin the grid: time in seconds of any grid slot, e.g. bar 1 of your DAW session. Fitted to the playing when omitted.")
MODEL_OPT = typer.Option(None, "--model", help="A model folder from `beatfix train` (default: the shipped beatfix-hit-v1).")
FLAM_OPT = typer.Option(4.0, "--flam-threshold-ms", help="Drums of one slot further apart than this are a flam.")


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout_console():
    from rich.console import Console

    return Console(highlight=False)


def is_tty() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[str, float], None]]:
    """Yield a ``progress(stage, fraction)`` callback drawing a rich bar on stderr when ``enabled``.

    For work whose fraction is its own (training); align and report draw one
    bar over all their stages (:func:`beatfix.cli.progress.job_progress`)."""
    if not enabled:
        yield lambda stage, fraction: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[stage]}"),
                  TimeElapsedColumn(), console=stderr_console(), transient=True) as bar:
        task = bar.add_task(label, total=1.0, stage="")

        def update(stage: str, fraction: float) -> None:
            bar.update(task, completed=max(0.0, min(1.0, fraction)), stage=stage)

        yield update


def warn(messages: List[str], quiet: bool = False) -> None:
    if quiet:
        return
    console = stderr_console()
    for m in messages:
        console.print(f"[yellow]warning:[/] {m}", markup=True, highlight=False, soft_wrap=True)


def info(messages: List[str], quiet: bool = False) -> None:
    """Informational lines on stderr (not warnings: nothing is wrong); empty messages are skipped."""
    if quiet:
        return
    console = stderr_console()
    for m in messages:
        if m:
            console.print(m, markup=False, highlight=False, soft_wrap=True)


def stems_or_fail(stems: Optional[List[Path]]) -> List[Path]:
    if not stems:
        raise typer.BadParameter("no stems given: name the session's audio files, e.g. kick.wav snare.wav oh_l.wav")
    return list(stems)


def swing_value(text: str) -> float | None:
    """``--swing``: a percentage, or None for ``auto``; a malformed one is a ParameterError."""
    from ..errors import ParameterError

    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise ParameterError(f"--swing {text!r}: use a percentage from 50 to 75, or auto") from None


def role_pairs(specs: Optional[List[str]]) -> tuple:
    """``--role FILE=ROLE`` values as ``(file, role)`` pairs; a malformed one is a ParameterError."""
    from ..roles import parse_role_overrides

    return tuple(parse_role_overrides(list(specs or [])).items())
