"""How far a whole job is: every stage of a session weighted by its share of the time, every session
of a batch an equal share. Pure bookkeeping, no drawing: the command line draws what this computes.

Stage names are those the pipeline reports through ``progress(stage, fraction)``
(:func:`beatfix.pipeline.align`); a batch first announces every session
(``queued``, 0), then adds one last report per session, ``done``,
``failed`` or ``skipped`` (:data:`SESSION_END`).
"""

from __future__ import annotations

import time
from typing import Callable

# Seconds per stage of one session, as `align` logs them when piped: a synthetic 2-minute, 8-stem,
# 48 kHz session, neural engine, tempo estimated, --flams keep, on a shared 2-core machine (23.9 s
# in all). Only the proportions matter; a session whose shares differ (--bpm given: no tempo
# estimate) bends the ETA, never the bar's direction.
STAGE_WEIGHTS: dict[str, float] = {
    "loading": 1.9,
    "onsets": 9.2,
    "delays": 0.1,
    "judge": 5.1,
    "tempo": 6.3,
    "hits": 0.1,
    "planning": 0.4,
    "checking": 2.9,  # the self-check renders and measures its own output (2-minute keep session: 2.9 s)
    "rendering": 0.7,  # the stems are written as they are rendered
}
SESSION_END = ("done", "failed", "skipped")
QUEUED = "queued"

BatchProgress = Callable[[str, str, float], None]  # (session, stage, fraction of that stage)

_TOTAL = sum(STAGE_WEIGHTS.values())
_BEFORE: dict[str, float] = {}
_acc = 0.0
for _stage, _weight in STAGE_WEIGHTS.items():
    _BEFORE[_stage] = _acc
    _acc += _weight


def session_fraction(stage: str, fraction: float) -> float | None:
    """Fraction of one session done when ``stage`` is ``fraction`` done; None for a stage not weighted."""
    if stage in SESSION_END:
        return 1.0
    if stage not in STAGE_WEIGHTS:
        return None
    fraction = min(1.0, max(0.0, float(fraction)))
    return (_BEFORE[stage] + STAGE_WEIGHTS[stage] * fraction) / _TOTAL


class JobProgress:
    """The fraction of a job of at least ``n_sessions`` sessions done, never going back.

    Every session reported counts (a batch announces all of its sessions
    before any work). A stage may be reported out of order (a retried session
    starts again, a worker's reports arrive late): each session keeps the most
    it ever reached, so the job's fraction is monotonic over the whole run.
    """

    def __init__(self, n_sessions: int = 1) -> None:
        self.n_sessions = max(1, int(n_sessions))
        self._done: dict[str, float] = {}

    def update(self, session: str, stage: str, fraction: float) -> float:
        self._done.setdefault(session, 0.0)
        self.n_sessions = max(self.n_sessions, len(self._done))
        share = session_fraction(stage, fraction)
        if share is not None and share > self._done.get(session, 0.0):
            self._done[session] = share
        return self.fraction

    @property
    def fraction(self) -> float:
        return min(1.0, sum(self._done.values()) / self.n_sessions)


class Throttle:
    """Pass on a stage's reports at most every ``interval_s``, but always its first and its last.

    For reports that cross a process or the network (a pool worker, a Dask
    worker): a render reports every few seams, which is thousands of messages."""

    def __init__(self, send: BatchProgress, interval_s: float = 0.25) -> None:
        self.send = send
        self.interval_s = interval_s
        self._last: tuple[str, str] | None = None
        self._at = 0.0

    def __call__(self, session: str, stage: str, fraction: float) -> None:
        now = time.monotonic()
        key = (session, stage)
        if key != self._last or fraction >= 1.0 or now - self._at >= self.interval_s:
            self._last, self._at = key, now
            self.send(session, stage, fraction)
