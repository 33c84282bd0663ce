"""beatfix: phase-coherent multitrack drum alignment from the shell.

The package is a pure core (analysis, planning, rendering on arrays) with thin
edges: :mod:`beatfix.audio_io` is the only module that touches audio files and
:mod:`beatfix.cli` the only one that imports typer or rich.
"""

__version__ = "0.1.0"
