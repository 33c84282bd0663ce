"""A batch on Dask distributed: one task per session, on a cluster or a local one started here.

Workers read the stems and write the outputs themselves, so on a real cluster
inputs and outputs must lie on a filesystem every worker sees under the same
paths. Stage progress comes back as Dask events on a topic of this batch's own.
"""

from __future__ import annotations

import functools
import queue
import time
import uuid
from typing import Iterator

from .batch import POLL_S, SessionOutcome, _Task, drain, run_session
from .progress import BatchProgress

ATTEMPTS = 2  # a session that fails or loses its worker is tried once more, then reported
CONNECT_TIMEOUT_S = 20.0


def _event_report(topic: str, session: str, stage: str, fraction: float) -> None:
    from distributed import get_worker

    get_worker().log_event(topic, [session, stage, float(fraction)])


def check_dask() -> None:
    """A ParameterError saying what to install when Dask distributed is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        from ..errors import ParameterError

        raise ParameterError("--executor dask needs Dask: pip install 'beatfix[cluster]'") from None


def _connect(jobs: int, scheduler: str | None):
    """``(client, cluster or None)``; the cluster is this machine's when no scheduler is named."""
    check_dask()
    from distributed import Client, LocalCluster

    if scheduler is None:
        import logging

        # memory_limit=0: the local pool has no per-session cap either, and a long session would
        # otherwise be killed at total memory / jobs. No dashboard: nothing listens on a port.
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, memory_limit=0,
                               dashboard_address=None, silence_logs=logging.ERROR)
        try:
            return Client(cluster), cluster
        except BaseException:
            cluster.close()
            raise
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S), None
    except (OSError, TimeoutError, ValueError) as exc:
        from ..errors import InputError

        raise InputError(f"--scheduler {scheduler}: cannot reach a Dask scheduler ({exc})") from None


def run_on_dask(tasks: list[_Task], *, jobs: int, scheduler: str | None,
                progress: BatchProgress) -> Iterator[SessionOutcome]:
    """Yield each session's outcome as it finishes; the client (and a local cluster) close at the end."""
    if not tasks:
        return
    from distributed import as_completed

    client, cluster = _connect(jobs, scheduler)
    batch_id = uuid.uuid4().hex[:12]
    topic = f"beatfix-progress-{batch_id}"
    events: queue.Queue = queue.Queue()
    try:
        client.subscribe_topic(topic, lambda event: events.put(tuple(event[1])))
        report = functools.partial(_event_report, topic)

        def submit(task: _Task, attempt: int):
            return client.submit(run_session, task, report, key=f"beatfix-{batch_id}-{task.name}-{attempt}",
                                 pure=False)

        attempts = {}
        running = as_completed()
        for task in tasks:
            future = submit(task, 1)
            attempts[future.key] = (task, 1)
            running.add(future)
        while not running.is_empty():
            drain(events, progress)
            if not running.has_ready():
                time.sleep(POLL_S)
                continue
            for future in running.next_batch(block=False):
                task, attempt = attempts.pop(future.key)
                try:
                    outcome = future.result()
                except Exception as exc:  # its worker died too often (KilledWorker), or it could not run there
                    outcome = SessionOutcome(task.name, error=f"on the cluster: {type(exc).__name__}: {exc}")
                future.release()
                if not outcome.ok and attempt < ATTEMPTS:
                    retry = submit(task, attempt + 1)
                    attempts[retry.key] = (task, attempt + 1)
                    running.add(retry)
                    continue
                yield outcome
        drain(events, progress)
    finally:
        try:
            client.unsubscribe_topic(topic)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        client.close()
        if cluster is not None:
            cluster.close()
