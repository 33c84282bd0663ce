"""Many sessions: every subfolder of a folder is one, each aligned into ``OUT/<session>/``.

Sessions run in a local process pool; one that fails is reported and never
stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .options import AlignOptions
from .session import AlignSummary, Progress, align


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

    @property
    def ok(self) -> bool:
        return self.error is None

    def document(self) -> dict:
        """The session's entry in ``align --batch --json``."""
        if not self.ok or self.result is None:
            return {"session": self.session, "status": "failed", "error": self.error}
        return {**self.result.summary, "session": self.session}


def _one(task: tuple[str, list[Path], Path, AlignOptions]) -> SessionOutcome:
    name, paths, out_dir, options = task
    from ..errors import BeatfixError

    try:
        return SessionOutcome(name, result=align(paths, out_dir, options))
    except BeatfixError as exc:
        return SessionOutcome(name, error=str(exc))
    except Exception as exc:  # one broken session must not stop the others
        return SessionOutcome(name, error=f"internal error: {type(exc).__name__}: {exc}")


def align_batch(sessions_dir: Path | str, out_dir: Path | str, options: AlignOptions | None = None, *,
                jobs: int = 1, progress: Optional[Progress] = None) -> tuple[SessionOutcome, ...]:
    """Align every session subfolder of ``sessions_dir`` into ``out_dir/<name>/``, sorted by name.

    ``jobs`` sessions run at once, each in its own process. ``progress(name,
    fraction)`` is told each session that finishes.
    """
    from ..audio_io import find_session_files, prepare_output_dir
    from ..errors import InputError

    options = options or AlignOptions()
    check_jobs(jobs)
    sessions_dir, out_dir = Path(sessions_dir), Path(out_dir)
    if not sessions_dir.is_dir():
        raise InputError(f"--batch {sessions_dir}: not a folder")
    folders = sorted(p for p in sessions_dir.iterdir() if p.is_dir())
    if not folders:
        raise InputError(f"--batch {sessions_dir}: no session subfolders")
    if not options.dry_run:
        prepare_output_dir(out_dir, [p for f in folders for p in find_session_files(f)], force=options.force)
    outcomes: list[SessionOutcome] = []
    tasks = []
    for folder in folders:
        files = find_session_files(folder)
        if not files:
            outcomes.append(SessionOutcome(folder.name, error=f"{folder}: no audio files"))
            continue
        tasks.append((folder.name, files, out_dir / folder.name, options))
    tell = progress or (lambda name, fraction: None)
    if jobs == 1:
        for done, task in enumerate(tasks, 1):
            outcomes.append(_one(task))
            tell(task[0], done / len(tasks))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a fresh interpreter per worker, never a fork of a process holding threads
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_one, t): t[0] for t in tasks}
            for done, fut in enumerate(as_completed(futures), 1):
                outcomes.append(fut.result())
                tell(futures[fut], done / len(tasks))
    return tuple(sorted(outcomes, key=lambda o: o.session))
