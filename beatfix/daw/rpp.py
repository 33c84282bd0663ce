"""A REAPER project (``.rpp``, REAPER's text format) of the edit: the original files, cut and moved.

One track per stem; each :class:`~beatfix.daw.clips.Clip` is an ``ITEM``
(``POSITION``, ``LENGTH``, ``SOFFS`` in seconds; ``FADEIN``/``FADEOUT``
lengths) over a ``SOURCE`` naming the original file by absolute path.
REAPER sums overlapping items on a track, so a fade-out over a fade-in is
the crossfade. Times are written with 17 significant digits, so
``round(seconds * sample_rate)`` gives back every sample position exactly.

Fade shapes: REAPER's shape 0 (linear) where the two sides are alike
(beatfix then fades at equal gain, which is linear), else shape 1 (REAPER's
equal-power-like curve). Lengths are exact; curves are close, not equal.
A stretch clip plays at the rate ``source_length / length`` with pitch not
preserved, as beatfix resamples.
"""

from __future__ import annotations

import uuid
from typing import Sequence

from .clips import Clip, Track

# Where the two sides of a fade are at least this alike, beatfix's fade is (near) equal gain: linear.
ALIKE_CORRELATION = 0.5
_SOURCE_KIND = {"WAV": "WAVE", "WAVEX": "WAVE", "RF64": "WAVE", "W64": "WAVE", "FLAC": "FLAC",
                "AIFF": "WAVE", "AIFC": "WAVE"}  # REAPER reads AIFF through its WAVE source


def _seconds(samples: float, sample_rate: int) -> str:
    return repr(float(samples) / sample_rate)


def _quote(text: str) -> str:
    # RPP strings are double-quoted; a name with a double quote is quoted with backticks instead.
    return f"`{text}`" if '"' in text else f'"{text}"'


def _guid(*parts: object) -> str:
    # Stable for the same session, so writing the project twice gives the same file.
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "beatfix:" + ":".join(map(str, parts)))).upper() + "}"


def _shape(correlation: float) -> int:
    return 0 if correlation >= ALIKE_CORRELATION else 1


def _item(track: Track, clip: Clip, index: int, sample_rate: int) -> list[str]:
    rate = clip.source_length_samples / clip.length_samples
    name = track.name if clip.piece < 0 else f"{track.name} edit {clip.piece}"
    if clip.kind == "stretch":
        name += " stretch"
    fade_in_shape, fade_out_shape = _shape(clip.fade_in_correlation), _shape(clip.fade_out_correlation)
    return [
        "    <ITEM",
        f"      POSITION {_seconds(clip.position_samples, sample_rate)}",
        "      SNAPOFFS 0",
        f"      LENGTH {_seconds(clip.length_samples, sample_rate)}",
        "      LOOP 0",
        "      ALLTAKES 0",
        f"      FADEIN {fade_in_shape} {_seconds(clip.fade_in_samples, sample_rate)} 0 {fade_in_shape} 0 0 0",
        f"      FADEOUT {fade_out_shape} {_seconds(clip.fade_out_samples, sample_rate)} 0 {fade_out_shape} 0 0 0",
        "      MUTE 0 0",
        "      SEL 0",
        f"      IGUID {_guid(track.name, index, 'item')}",
        f"      IID {index + 1}",
        f"      NAME {_quote(name)}",
        "      VOLPAN 1 0 1 -1",
        f"      SOFFS {_seconds(clip.source_offset_samples, sample_rate)}",
        f"      PLAYRATE {repr(rate)} 0 0 -1 0 0.0025",
        "      CHANMODE 0",
        f"      GUID {_guid(track.name, index, 'take')}",
        f"      <SOURCE {_SOURCE_KIND.get(track.format.upper(), 'WAVE')}",
        f"        FILE {_quote(str(track.path))}",
        "      >",
        "    >",
    ]


def rpp_text(tracks: Sequence[Track], sample_rate: int, *, notes: Sequence[str] = ()) -> str:
    """The project as text. ``notes`` go into the project notes (REAPER: File > Project settings > Notes)."""
    lines = [
        '<REAPER_PROJECT 0.1 "6.0/beatfix" 0',
        "  RIPPLE 0",
        "  AUTOXFADE 0",  # fades are the edit's own; REAPER must not add its own where items overlap
        f"  SAMPLERATE {int(sample_rate)} 1 0",
        "  TIMEMODE 5 5 -1 30 0 0 -1",  # ruler in samples
    ]
    if notes:
        lines.append("  <NOTES 0 2")
        lines += [f"    |{line}" for line in notes]
        lines.append("  >")
    index = 0
    for track in tracks:
        lines += [f"  <TRACK {_guid(track.name, 'track')}", f"    NAME {_quote(track.name)}",
                  f"    NCHAN {max(2, track.n_channels + track.n_channels % 2)}"]
        for clip in track.clips:
            lines += _item(track, clip, index, sample_rate)
            index += 1
        lines.append("  >")
    lines.append(">")
    return "\n".join(lines) + "\n"
