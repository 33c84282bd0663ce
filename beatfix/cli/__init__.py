"""The command line: the only place that imports typer and rich.

Each command lives in its own module with a ``register(app)`` function. Heavy
imports (onnxruntime, madmom; torch only to train) happen inside the commands, so ``--help``
answers at once.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from .. import __version__
from ..errors import BeatfixError

HELP = """\
beatfix: align multitrack drum recordings to the tempo grid, phase-coherently.

\b
  beatfix report kick.wav snare.wav oh_l.wav oh_r.wav --bpm 120
  beatfix align  kick.wav snare.wav oh_l.wav oh_r.wav --bpm 120 -o fixed/
  beatfix align  --batch sessions/ -o fixed/ --jobs 2
  beatfix render fixed/edits.json -o fixed2/          # re-render an edit list you changed
  beatfix synth  data/ --sessions 50          # synthetic sessions with ground truth
  beatfix train  --sessions data/ --out my_model/
"""

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = ("report", "align", "render", "synth", "train")

# Thread-count defaults for numpy's and scipy's BLAS, set before numpy loads (it reads them
# once, when it starts); a value the user set stands. beatfix runs stems in parallel threads
# (and sessions in processes), so a BLAS pool per thread only oversubscribes the cores, and
# on a small machine its idle threads spin and slow the work down (onset detection runs
# about 1.6x faster on 2 cores). Torch keeps its own setting: training wants its threads.
BLAS_THREAD_DEFAULTS = {"OPENBLAS_NUM_THREADS": "1"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"beatfix {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """beatfix: phase-coherent multitrack drum alignment."""


for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a command under construction must not break the others
        if _exc.name != f"{__name__}.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Entry point: user mistakes become one line on stderr and a non-zero exit, never a traceback.

    Usage errors (unknown option, missing argument) exit 2 through typer; a
    BeatfixError exits 1; an unexpected exception is reported as an internal
    error with exit 3 (traceback with BEATFIX_DEBUG=1). Sets the BLAS thread
    defaults first: nothing imported so far loads numpy.
    """
    for name, value in BLAS_THREAD_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        app()
    except BeatfixError as exc:
        _print_error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        _print_error("interrupted")
        sys.exit(130)
    except MemoryError:
        _print_error("out of memory: try fewer stems at once or a shorter session")
        sys.exit(1)
    except Exception as exc:  # a bug, not a user mistake
        if os.environ.get("BEATFIX_DEBUG"):
            raise
        _print_error(f"internal error: {type(exc).__name__}: {exc} (set BEATFIX_DEBUG=1 for the traceback)")
        sys.exit(3)


def _print_error(message: str) -> None:
    from rich.console import Console
    from rich.text import Text

    line = Text.assemble(("error: ", "bold red"), message.splitlines()[0] if message else "failed")
    Console(stderr=True, highlight=False, soft_wrap=True).print(line)
