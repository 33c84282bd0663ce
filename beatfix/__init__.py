"""beatfix: phase-coherent multitrack drum alignment from the shell.

The package is a pure core (analysis, planning, rendering on arrays) with thin
edges: :mod:`beatfix.audio_io` is the only module that touches audio files and
:mod:`beatfix.cli` the only one that imports typer or rich. The library API
(:mod:`beatfix.pipeline`) is exported here lazily, so ``import beatfix`` and
``beatfix --help`` load nothing heavy::

    import beatfix
    beatfix.align(["kick.wav", "snare.wav", "oh_l.wav"], "fixed/", beatfix.AlignOptions(bpm=120))
"""

import sys
import types

__version__ = "0.1.0"

_API = ("AlignOptions", "AnalyseOptions", "AlignSummary", "AnalyseResult", "SessionOutcome",
        "align", "align_batch", "analyse")
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))


class _Package(types.ModuleType):
    """Keeps ``beatfix.align`` and ``beatfix.analyse`` the API functions.

    Importing the core modules of the same names (``beatfix/align.py``,
    ``beatfix/analyse.py``) makes Python set them as attributes of the package,
    which would hide the functions after the first run. ``from beatfix.align
    import ...`` is unaffected: it reads ``sys.modules``.
    """

    def __setattr__(self, name, value):
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
