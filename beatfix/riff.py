"""RIFF/IFF chunk tables and FLAC metadata blocks: what an input file carries beside its audio.

libsndfile writes bare ``fmt ``/``data``: a broadcast WAV's ``bext`` (its
TimeReference places the file in the DAW's timeline), ``iXML`` and markers
(``cue `` + ``LIST``/``adtl``) would be lost. These functions read them from
an input and splice them into an output; they work on open binary files, and
:mod:`beatfix.audio_io` owns the paths.

RIFF rules followed: little-endian sizes, a chunk of odd size is followed by
one pad byte that its size does not count. RF64/BW64 files (over 4 GB, sizes
in a ``ds64`` chunk) are left alone: their metadata is reported as not carried.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Sequence

# Chunks taken from an input WAV to its output. LIST is carried for these list types only.
CARRIED_CHUNKS = (b"bext", b"iXML", b"cue ", b"axml", b"LIST")
CARRIED_LISTS = (b"adtl", b"INFO")
# Chunks that describe the audio itself: libsndfile writes its own, nothing is lost.
AUDIO_CHUNKS = (b"fmt ", b"data", b"fact", b"PEAK", b"JUNK", b"junk", b"FLLR", b"PAD ", b"pad ")
AIFF_AUDIO_CHUNKS = (b"COMM", b"SSND", b"FVER")
_FLAC_BLOCKS = {2: "APPLICATION", 4: "VORBIS_COMMENT", 5: "CUESHEET", 6: "PICTURE"}
_COPY_BUFFER = 1 << 20


@dataclass(frozen=True)
class Chunk:
    id: bytes  # four bytes, e.g. b"bext"
    offset: int  # of the payload, from the start of the file
    size: int  # payload bytes, without the pad byte


def chunk_table(fh: BinaryIO, *, big_endian: bool = False) -> tuple[bytes, bytes, list[Chunk]]:
    """``(container id, form type, chunks)`` of a RIFF (or, ``big_endian``, an IFF/AIFF) file.

    Reads headers only. A chunk whose size runs past the end of the file ends
    the table (it is not returned): a truncated file gives what is whole.
    """
    fh.seek(0, 2)
    file_size = fh.tell()
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12:
        return b"", b"", []
    endian = ">" if big_endian else "<"
    chunks: list[Chunk] = []
    pos = 12
    while pos + 8 <= file_size:
        fh.seek(pos)
        chunk_id, size = struct.unpack(endian + "4sI", fh.read(8))
        if pos + 8 + size > file_size:
            break
        chunks.append(Chunk(chunk_id, pos + 8, size))
        pos += 8 + size + (size & 1)
    return head[:4], head[8:12], chunks


def read_payload(fh: BinaryIO, chunk: Chunk) -> bytes:
    fh.seek(chunk.offset)
    return fh.read(chunk.size)


def _name(chunk_id: bytes) -> str:
    return chunk_id.decode("latin-1").strip() or repr(chunk_id)


def wav_metadata(fh: BinaryIO) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """``(chunks carried as (id, payload), names of chunks that are not carried)`` of a WAV file."""
    riff, form, chunks = chunk_table(fh)
    if riff in (b"RF64", b"BW64"):
        return [], [f"{riff.decode()} metadata (not supported)"]
    if riff != b"RIFF" or form != b"WAVE":
        return [], []
    carried: list[tuple[bytes, bytes]] = []
    dropped: list[str] = []
    for chunk in chunks:
        if chunk.id in AUDIO_CHUNKS:
            continue
        if chunk.id not in CARRIED_CHUNKS:
            dropped.append(_name(chunk.id))
            continue
        payload = read_payload(fh, chunk)
        if chunk.id == b"LIST" and payload[:4] not in CARRIED_LISTS:
            dropped.append(f"LIST/{_name(payload[:4])}")
        else:
            carried.append((chunk.id, payload))
    return carried, dropped


def aiff_metadata(fh: BinaryIO) -> list[str]:
    """Chunks of an AIFF file beside its audio (markers, comments, ...): none is carried."""
    form, _, chunks = chunk_table(fh, big_endian=True)
    if form != b"FORM":
        return []
    return [_name(c.id) for c in chunks if c.id not in AIFF_AUDIO_CHUNKS]


def flac_metadata(fh: BinaryIO) -> list[str]:
    """FLAC metadata blocks that carry something (tags, cue sheet, pictures): none is carried.

    A Vorbis comment block with only the encoder's vendor string carries nothing.
    """
    fh.seek(0)
    if fh.read(4) != b"fLaC":
        return []
    found: list[str] = []
    while True:
        head = fh.read(4)
        if len(head) < 4:
            break
        last, kind, size = head[0] & 0x80, head[0] & 0x7F, int.from_bytes(head[1:4], "big")
        body = fh.read(size)
        if kind == 4 and len(body) >= 8:
            vendor = int.from_bytes(body[:4], "little")
            count = body[4 + vendor:8 + vendor]
            if len(count) == 4 and int.from_bytes(count, "little") == 0:
                kind = -1
        if kind in _FLAC_BLOCKS:
            found.append(_FLAC_BLOCKS[kind])
        if last or len(body) < size:
            break
    return found


def _write_chunk(dst: BinaryIO, chunk_id: bytes, size: int) -> None:
    dst.write(struct.pack("<4sI", chunk_id, size))


def splice_chunks(src: BinaryIO, dst: BinaryIO, extra: Sequence[tuple[bytes, bytes]]) -> None:
    """Copy the WAV ``src`` to ``dst`` with ``extra`` chunks inserted before its ``data`` chunk.

    Before ``data`` because some readers stop there; every chunk is written
    with its pad byte and the RIFF size is set to the new total.
    Raises ValueError if ``src`` is not a plain RIFF/WAVE or the result would pass 4 GB.
    """
    riff, form, chunks = chunk_table(src)
    if riff != b"RIFF" or form != b"WAVE" or not any(c.id == b"data" for c in chunks):
        raise ValueError("not a RIFF/WAVE file with audio data")
    for chunk_id, _payload in extra:
        if len(chunk_id) != 4:
            raise ValueError(f"chunk id {chunk_id!r} is not four bytes")
    padded = lambda size: 8 + size + (size & 1)  # noqa: E731
    body = 4 + sum(padded(c.size) for c in chunks) + sum(padded(len(p)) for _, p in extra)
    if body > 0xFFFFFFFF:
        raise ValueError("the output would pass the 4 GB limit of a RIFF file")
    dst.write(struct.pack("<4sI4s", b"RIFF", body, b"WAVE"))
    inserted = False
    for chunk in chunks:
        if chunk.id == b"data" and not inserted:
            for chunk_id, payload in extra:
                _write_chunk(dst, chunk_id, len(payload))
                dst.write(payload + b"\0" * (len(payload) & 1))
            inserted = True
        _write_chunk(dst, chunk.id, chunk.size)
        src.seek(chunk.offset)
        left = chunk.size
        while left:
            block = src.read(min(left, _COPY_BUFFER))
            if not block:
                raise ValueError("file ended inside a chunk")
            dst.write(block)
            left -= len(block)
        if chunk.size & 1:
            dst.write(b"\0")

