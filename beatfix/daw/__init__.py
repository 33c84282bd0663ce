"""The edit as a DAW session: the original files cut at the edit points and moved, with the crossfades.

Pure: a plan and the stems' file facts in, text or bytes out (:mod:`beatfix.cli` writes them).
"""

from .aaf import aaf_bytes
from .clips import Clip, Track, plan_clips, session_tracks
from .rpp import rpp_text
from .session import DAW_KINDS, parse_daw_kinds, session_files

__all__ = ["DAW_KINDS", "Clip", "Track", "aaf_bytes", "parse_daw_kinds", "plan_clips", "rpp_text", "session_files",
           "session_tracks"]
