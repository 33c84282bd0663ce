"""beatfix as a library: the pipeline the command line, the benchmarks and notebooks call.

    import beatfix
    result = beatfix.align(["kick.wav", "snare.wav", "oh_l.wav"], "fixed/", beatfix.AlignOptions(bpm=120))

Options are frozen dataclasses validated when made (:mod:`.options`);
:func:`analyse` and :func:`align` run one session (:mod:`.session`),
:func:`align_batch` a folder of them (:mod:`.batch`).
"""

from .batch import EXECUTORS, SessionOutcome, align_batch, check_jobs
from .options import AlignOptions, AnalyseOptions
from .session import AlignSummary, AnalyseResult, align, analyse

__all__ = ["EXECUTORS", "AlignOptions", "AnalyseOptions", "AlignSummary", "AnalyseResult", "SessionOutcome",
           "align", "align_batch", "analyse", "check_jobs"]
