"""Synthetic drum sessions with exact ground truth: training data and the benchmark's yardstick.

kits (one-shots) -> groove (a performance on a grid) -> mics (gains, delays,
reverb) -> render (stems) -> session (stems + truth) -> dataset (many sessions).
Rendering is pure: arrays and dicts in, arrays and dicts out. Only
:func:`write_session` and :func:`write_dataset` write files, through
:mod:`beatfix.audio_io`; only :func:`load_kit` reads them.
"""

from .dataset import draw_specs, write_dataset
from .groove import STYLES, Note, Performance, perform
from .kits import DRUMS, Kit, complete_kit, drum_from_name, load_kit, procedural_kit
from .mics import MIC_NAMES, Feed, Mic, MicSetup, random_mics
from .session import (SAMPLE_RATES, RenderedSession, SessionSpec, random_spec, render_ideal, render_pair,
                      render_session, write_session)

__all__ = [
    "DRUMS", "MIC_NAMES", "SAMPLE_RATES", "STYLES", "Feed", "Kit", "Mic", "MicSetup", "Note", "Performance",
    "RenderedSession", "SessionSpec", "complete_kit", "draw_specs", "drum_from_name", "load_kit", "perform",
    "procedural_kit", "random_mics", "random_spec", "render_ideal", "render_pair", "render_session",
    "write_dataset", "write_session",
]
