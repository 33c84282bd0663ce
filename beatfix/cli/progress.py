"""Progress on stderr: one bar over the whole job on a terminal, plain lines in a log, nothing with --quiet.

Both read the ``(session, stage, fraction)`` reports of the pipeline
(:mod:`beatfix.pipeline.progress`); stdout is left to the results.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from ..pipeline.progress import QUEUED, SESSION_END, JobProgress

JobCallback = Callable[[str, str, float], None]


def session_label(paths) -> str:
    """How a single session is named in the log: its first stem and how many more (``kick.wav+7``)."""
    names = [getattr(p, "name", str(p)) for p in paths]
    if not names:
        return "session"
    return names[0] + (f"+{len(names) - 1}" if len(names) > 1 else "")


class LineLog:
    """One line per finished stage and per finished session, with elapsed times, for logs and pipes.

    A stage's time runs from the end of the one before it (or the session's
    first report): work a stage does before its first report is its own."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self._stage: dict[str, tuple[str, bool]] = {}  # session -> (stage, its line written)
        self._mark: dict[str, float] = {}  # session -> when its last stage ended
        self._started: dict[str, float] = {}
        self._finished: set[str] = set()

    def _line(self, text: str) -> None:
        print(f"beatfix: {text}", file=self.stream, flush=True)

    def _close_stage(self, session: str, now: float) -> None:
        current = self._stage.get(session)
        if current is not None and not current[1]:
            self._line(f"{session} | {current[0]} done {now - self._mark[session]:.1f} s")
            self._stage[session] = (current[0], True)
            self._mark[session] = now

    def __call__(self, session: str, stage: str, fraction: float) -> None:
        if session in self._finished or stage == QUEUED:
            return  # a worker's late report, after its session was collected; or a session not begun
        now = self.clock()
        self._started.setdefault(session, now)  # from its first stage: a queued session is not yet running
        self._mark.setdefault(session, now)
        if stage in SESSION_END:
            if stage == "done":
                self._close_stage(session, now)
            self._finished.add(session)
            word = "already done, skipped" if stage == "skipped" else stage
            self._line(f"{session} | {word} {now - self._started[session]:.1f} s")
            return
        current = self._stage.get(session)
        if current is None or current[0] != stage:
            self._close_stage(session, now)
            self._stage[session] = (stage, False)
        if fraction >= 1.0:
            self._close_stage(session, now)


@contextmanager
def _bar(label: str, n_sessions: int = 1) -> Iterator[JobCallback]:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .common import stderr_console

    job = JobProgress(n_sessions)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[stage]}"), TimeElapsedColumn())
    with Progress(*columns, console=stderr_console(), transient=True) as bar:
        task = bar.add_task(label, total=1.0, stage="")

        def update(session: str, stage: str, fraction: float) -> None:
            if stage == QUEUED:
                job.update(session, stage, fraction)
                return
            where = stage if job.n_sessions == 1 else f"{session}: {stage}"
            bar.update(task, completed=job.update(session, stage, fraction), stage=where)

        yield update


@contextmanager
def job_progress(label: str, *, quiet: bool = False) -> Iterator[JobCallback]:
    """Yield ``progress(session, stage, fraction)``: a bar on a terminal, lines when piped, silence if ``quiet``."""
    from .common import is_tty

    if quiet:
        yield lambda session, stage, fraction: None
    elif is_tty():
        with _bar(label) as update:
            yield update
    else:
        yield LineLog(sys.stderr)
