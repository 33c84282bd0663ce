"""Many sessions, each aligned into ``OUT/<session>/``: in a local process pool or on a Dask cluster.

A session that fails is reported and never stops the others. A finished
session leaves a manifest (:mod:`.resume`), so a batch started again skips
the sessions already done with the same inputs and options. Stage progress
comes back from the workers through one queue, read here between results.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Optional

from .options import AlignOptions
from .progress import QUEUED, BatchProgress, Throttle
from .session import AlignSummary
from .sessions import read_sessions

EXECUTORS = ("local", "dask")
BATCH_MARKER = "beatfix-batch.json"  # marks a folder as a batch's output, so a rerun may write into it
POLL_S = 0.1

Report = Callable[[str, str, float], None]


def check_jobs(jobs: int) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        from ..errors import ParameterError

        raise ParameterError(f"--jobs {jobs}: use 1 or more")
    return jobs


@dataclass(frozen=True)
class SessionOutcome:
    """One session of a batch: its result, or the one-line reason it failed."""

    session: str
    result: AlignSummary | None = None
    error: str | None = None
    skipped: bool = False  # done by an earlier run with the same inputs and options

    @property
    def ok(self) -> bool:
        return self.error is None

    def document(self) -> dict:
        """The session's entry in ``align --batch --json``."""
        if not self.ok or self.result is None:
            return {"session": self.session, "status": "failed", "error": self.error}
        assert self.result is not None
        doc = {**self.result.summary, "session": self.session}
        if self.skipped:
            doc["resumed"] = True
        return doc


@dataclass(frozen=True)
class _Task:
    name: str
    stems: tuple[Path, ...]
    out_dir: Path
    options: AlignOptions


def run_session(task: _Task, report: Optional[Report] = None) -> SessionOutcome:
    """Align one session of a batch, or take its earlier result; never raises (runs on a worker)."""
    from ..errors import BeatfixError, InputError
    from .resume import completed_summary, forget, write_manifest
    from .session import align

    tell = Throttle(report) if report is not None else None
    progress = (lambda stage, fraction: tell(task.name, stage, fraction)) if tell is not None else None
    options = task.options
    try:
        inputs = task.stems + ((options.tempo_map,) if options.tempo_map else ())  # what the output depends on
        if options.tempo_map is not None and not options.tempo_map.is_file():
            raise InputError(f"tempo map {options.tempo_map}: no such file")
        if not options.dry_run and task.out_dir.is_dir():
            stored = completed_summary(task.out_dir, inputs, options)
            if stored is not None:
                return SessionOutcome(task.name, result=AlignSummary(summary=stored), skipped=True)
            # an earlier, unfinished or outdated run of this session: ours to overwrite (and recorded
            # as forced in edits.json); an empty folder is a run that died before writing anything
            forget(task.out_dir)
            if any(task.out_dir.iterdir()):
                options = replace(options, force=True)
        result = align(task.stems, task.out_dir, options, progress=progress)
        if not options.dry_run:
            write_manifest(task.out_dir, inputs, options, result.outputs, result.summary)
        return SessionOutcome(task.name, result=result)
    except BeatfixError as exc:
        return SessionOutcome(task.name, error=str(exc))
    except Exception as exc:  # one broken session must not stop the others
        return SessionOutcome(task.name, error=f"internal error: {type(exc).__name__}: {exc}")


def align_batch(sessions: Path | str, out_dir: Path | str, options: AlignOptions | None = None, *,
                jobs: int = 1, executor: str = "local", scheduler: str | None = None,
                progress: Optional[BatchProgress] = None) -> tuple[SessionOutcome, ...]:
    """Align every session of ``sessions`` into ``out_dir/<name>/``; outcomes sorted by name.

    ``sessions`` is a folder of session folders, or a CSV/JSON list of
    sessions (:mod:`.sessions`). ``executor`` ``local`` runs ``jobs`` sessions
    at once in processes on this machine; ``dask`` runs one task per session
    on the Dask scheduler at ``scheduler`` (``tcp://host:8786``), or on a
    local cluster of ``jobs`` worker processes when it is None, and retries a
    session that failed or lost its worker once. ``progress(session, stage,
    fraction)`` is told every session (``queued``) first, then each stage
    of each session, then ``done``, ``failed`` or ``skipped``.
    """
    from ..audio_io import prepare_output_dir, write_text_atomic
    from ..errors import ParameterError

    options = options or AlignOptions()
    check_jobs(jobs)
    if executor not in EXECUTORS:
        raise ParameterError(f"--executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    if scheduler is not None and executor != "dask":
        raise ParameterError("--scheduler needs --executor dask")
    if executor == "dask":
        from .dask_batch import check_dask

        check_dask()  # before anything is written
    listed = read_sessions(sessions, options)
    out_dir = Path(out_dir)
    if not options.dry_run:
        ours = (out_dir / BATCH_MARKER).is_file()
        prepare_output_dir(out_dir, [p for s in listed for p in s.inputs()], force=options.force or ours)
        if not ours:
            write_text_atomic(out_dir / BATCH_MARKER, '{"schema": "beatfix-batch/1"}\n')
    tell = progress or (lambda session, stage, fraction: None)
    for s in listed:
        tell(s.name, QUEUED, 0.0)
    outcomes: list[SessionOutcome] = []
    tasks = []
    for s in listed:
        if s.error is not None:
            outcomes.append(SessionOutcome(s.name, error=s.error))
            tell(s.name, "failed", 1.0)
        else:
            tasks.append(_Task(s.name, s.stems, out_dir / s.name, s.options or options))
    if executor == "dask":
        from .dask_batch import run_on_dask

        results = run_on_dask(tasks, jobs=jobs, scheduler=scheduler, progress=tell)
    else:
        results = _run_local(tasks, jobs=jobs, progress=tell)
    for outcome in results:
        outcomes.append(outcome)
        tell(outcome.session, "skipped" if outcome.skipped else "done" if outcome.ok else "failed", 1.0)
    return tuple(sorted(outcomes, key=lambda o: o.session))


_POOL_QUEUE = None  # a pool worker's end of the progress queue (set by _pool_init)


def _pool_init(events) -> None:
    global _POOL_QUEUE
    _POOL_QUEUE = events


def _pool_report(session: str, stage: str, fraction: float) -> None:
    if _POOL_QUEUE is not None:
        _POOL_QUEUE.put((session, stage, fraction))


def drain(events, progress: BatchProgress) -> None:
    """Pass on every progress report waiting in ``events``."""
    while True:
        try:
            session, stage, fraction = events.get_nowait()
        except queue.Empty:
            return
        progress(session, stage, fraction)


def _run_local(tasks: list[_Task], *, jobs: int, progress: BatchProgress) -> Iterator[SessionOutcome]:
    if jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            yield run_session(task, progress)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn: a fresh interpreter per worker, never a fork of a process holding threads
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_pool_init,
                             initargs=(events,)) as pool:
        pending = {pool.submit(run_session, task, _pool_report) for task in tasks}
        while pending:
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            drain(events, progress)
            for future in done:
                yield future.result()
    drain(events, progress)  # reports a worker put just before it returned
