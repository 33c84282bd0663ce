"""An AAF composition of the edit (``pyaaf2``): the original files linked, cut and moved.

Every stem's file is linked, not embedded: a source mob whose descriptor
carries a network locator (``file://`` URL of the absolute path), a master
mob over it, as AAF importers (Pro Tools, Media Composer, Nuendo, Logic)
expect. The composition has one timeline slot per stem channel (one for a
mono stem; ``name.1``, ``name.2`` for a stereo one, as AAF audio tracks are
mono), edit rate = the session's sample rate, so every position, source
offset and length is in samples. Clips are source clips; where two overlap
(a crossfade) the overlap is an audio-dissolve transition; gaps are fillers.

AAF has no portable way to time-stretch a clip, so a ``stretch`` seam is not
resampled here: the previous clip plays its decay unstretched to its cut
and a filler (silence) covers the rest of the gap. The project notes and
:data:`STRETCH_NOTE` say so.
"""

from __future__ import annotations

import struct
import tempfile
import uuid
from pathlib import Path
from typing import Sequence

from ..errors import ParameterError
from .clips import Clip, Track

STRETCH_NOTE = ("AAF: where beatfix time-stretches a decay to fill a gap, the AAF plays the decay unstretched "
                "and leaves the rest of the gap silent (AAF importers cannot stretch)")
# SMPTE: OperationDef_MonoAudioDissolve
_AUDIO_DISSOLVE = uuid.UUID("0c3bea41-fc05-11d2-8a29-0050040ef7d2")
_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64}
LINKABLE_FORMATS = ("WAV", "WAVEX", "AIFF")


def _wave_summary(track: Track, sample_rate: int) -> bytearray:
    """RIFF header and ``fmt `` chunk of the linked file, as a WAVEDescriptor's Summary holds."""
    bits = _BITS.get(track.subtype.upper(), 24)
    tag = 3 if track.subtype.upper() in ("FLOAT", "DOUBLE") else 1
    block = track.n_channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, track.n_channels, sample_rate, sample_rate * block, block, bits)
    data_bytes = track.n_samples * block
    return bytearray(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt)


def aaf_clips(clips: Sequence[Clip]) -> tuple[Clip, ...]:
    """``clips`` as the AAF plays them: a stretch becomes the previous clip's unstretched decay."""
    out: list[Clip] = []
    for clip in clips:
        if clip.kind != "stretch":
            out.append(clip)
            continue
        if out and out[-1].end_samples == clip.position_samples:
            prev = out[-1]
            grow = min(clip.source_length_samples, clip.length_samples)
            out[-1] = Clip(prev.piece, prev.kind, prev.position_samples, prev.length_samples + grow,
                           prev.source_offset_samples, prev.source_length_samples + grow, prev.shift_samples,
                           prev.fade_in_samples, 0, prev.fade_in_correlation, prev.fade_out_correlation)
    return tuple(out)


def _link(f, track: Track, sample_rate: int):
    """Source mob (linked file) and master mob for ``track``; the master's slot ``c + 1`` is channel ``c``."""
    fmt = track.format.upper()
    if fmt not in LINKABLE_FORMATS:
        raise ParameterError(f"--daw aaf: {track.path.name} is {track.format}; AAF links WAV or AIFF media "
                             "(use --daw rpp, or convert the stems)")
    if fmt == "AIFF":
        desc = f.create.AIFCDescriptor()
        bits = _BITS.get(track.subtype.upper(), 24)
        desc["Summary"].value = bytearray(b"FORM" + struct.pack(">I", 0) + b"AIFF" + b"COMM"
                                          + struct.pack(">IhIh", 18, track.n_channels, track.n_samples, bits)
                                          + _extended(sample_rate))
    else:
        desc = f.create.WAVEDescriptor()
        desc["Summary"].value = _wave_summary(track, sample_rate)
    desc["SampleRate"].value = sample_rate
    desc["Length"].value = track.n_samples
    desc["ContainerFormat"].value = f.dictionary.lookup_containerdef("AAF")
    locator = f.create.NetworkLocator()
    locator["URLString"].value = track.path.as_uri()
    desc["Locator"].append(locator)

    source = f.create.SourceMob()
    source.name = track.path.name
    source.descriptor = desc
    f.content.mobs.append(source)
    master = f.create.MasterMob()
    master.name = track.name
    f.content.mobs.append(master)
    for c in range(track.n_channels):
        slot = source.create_empty_sequence_slot(sample_rate, slot_id=c + 1, media_kind="sound")
        slot["PhysicalTrackNumber"].value = c + 1
        original = f.create.SourceClip(media_kind="sound")  # the file is the original: no mob behind it
        original.length = track.n_samples
        slot.segment.components.append(original)
        slot.segment.length = track.n_samples
        mslot = master.create_empty_sequence_slot(sample_rate, slot_id=c + 1, media_kind="sound")
        mslot["PhysicalTrackNumber"].value = c + 1
        mslot.segment.components.append(source.create_source_clip(slot_id=c + 1, media_kind="sound"))
        mslot.segment.length = track.n_samples
    return master


def _extended(value: float) -> bytes:
    """An IEEE 754 80-bit extended float (AIFF's sample rate field), for whole positive rates."""
    value = int(value)
    exponent = value.bit_length() - 1
    mantissa = value << (63 - exponent)
    return struct.pack(">HQ", 16383 + exponent, mantissa)


def _dissolve(f):
    opdef = f.dictionary.lookup_operationdef(_AUDIO_DISSOLVE)
    if opdef is None:
        opdef = f.create.OperationDef(_AUDIO_DISSOLVE, "Audio Dissolve", "")
        opdef.media_kind = "sound"
        opdef["NumberInputs"].value = 2
        f.dictionary.register_def(opdef)
    return opdef


def _sequence(f, master, channel: int, clips: Sequence[Clip], n_out: int):
    seq = f.create.Sequence(media_kind="sound")
    at = 0  # output sample where the sequence's last component ends
    for clip in clips:
        overlap = at - clip.position_samples
        if overlap < 0:
            seq.components.append(f.create.Filler("sound", -overlap))
        elif overlap > 0:
            opdef = _dissolve(f)  # first: pyaaf2's factory remembers only the last class asked for
            group = f.create.OperationGroup(opdef, overlap)
            group.media_kind = "sound"
            fade = f.create.Transition("sound", overlap)
            fade["CutPoint"].value = overlap // 2
            fade["OperationGroup"].value = group
            seq.components.append(fade)
        seq.components.append(master.create_source_clip(slot_id=channel + 1, start=clip.source_offset_samples,
                                                        length=clip.length_samples, media_kind="sound"))
        at = clip.end_samples
    if at < n_out:
        seq.components.append(f.create.Filler("sound", n_out - at))
    seq.length = max(at, n_out)
    return seq


def aaf_bytes(tracks: Sequence[Track], sample_rate: int, n_samples: int, *, name: str = "beatfix edit",
              notes: Sequence[str] = ()) -> bytes:
    """The AAF file's bytes: one composition ``name`` over the linked original files."""
    import aaf2

    # pyaaf2 finishes a file only when closing it, and closes its stream then: it writes into a private
    # temporary folder, and the caller gets the bytes to write where (and as atomically as) it wants.
    with tempfile.TemporaryDirectory(prefix="beatfix-aaf-") as folder:
        path = Path(folder) / "session.aaf"
        with aaf2.open(str(path), "w") as f:
            _compose(f, tracks, sample_rate, n_samples, name, notes)
        return path.read_bytes()


def _compose(f, tracks: Sequence[Track], sample_rate: int, n_samples: int, name: str, notes: Sequence[str]) -> None:
    comp = f.create.CompositionMob()
    comp.name = name
    comp.usage = "Usage_TopLevel"  # the sequence an importer opens (Avid marks its own edits so)
    for i, line in enumerate(notes):
        comp.comments[f"beatfix note {i + 1}"] = line
    f.content.mobs.append(comp)
    for track in tracks:
        master = _link(f, track, sample_rate)
        clips = aaf_clips(track.clips)
        for c in range(track.n_channels):
            slot = comp.create_timeline_slot(sample_rate)
            slot.name = track.name if track.n_channels == 1 else f"{track.name}.{c + 1}"
            slot.segment = _sequence(f, master, c, clips, n_samples)
