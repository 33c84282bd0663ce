"""The RIFF chunk reader and splicer (beatfix.riff): odd sizes and pad bytes, truncation, RF64,
and what AIFF and FLAC inputs carry that an output cannot."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from beatfix.riff import aiff_metadata, chunk_table, flac_metadata, read_payload, splice_chunks, wav_metadata


def _chunk(chunk_id: bytes, payload: bytes) -> bytes:
    return struct.pack("<4sI", chunk_id, len(payload)) + payload + b"\0" * (len(payload) & 1)


def _riff(*chunks: bytes, riff: bytes = b"RIFF") -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return struct.pack("<4sI", riff, len(body)) + body


FMT = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)


def test_reader_steps_over_pad_bytes_of_odd_sized_chunks():
    odd_a, odd_b = b"x" * 3, b"iXML-body" * 3 + b"!?"  # 3 and 29 bytes, each followed by a pad byte
    data = b"\x01\x02" * 5
    blob = _riff(_chunk(b"fmt ", FMT), _chunk(b"abcd", odd_a), _chunk(b"iXML", odd_b), _chunk(b"data", data))
    fh = io.BytesIO(blob)
    riff, form, chunks = chunk_table(fh)
    assert (riff, form) == (b"RIFF", b"WAVE")
    assert [c.id for c in chunks] == [b"fmt ", b"abcd", b"iXML", b"data"]
    assert [c.size for c in chunks] == [16, 3, 29, 10]
    # payloads read back exactly, pad bytes not included
    assert read_payload(fh, chunks[1]) == odd_a
    assert read_payload(fh, chunks[2]) == odd_b
    assert read_payload(fh, chunks[3]) == data
    carried, dropped = wav_metadata(fh)
    assert carried == [(b"iXML", odd_b)]
    assert dropped == ["abcd"]


def test_reader_stops_at_a_chunk_that_runs_past_the_end():
    blob = _riff(_chunk(b"fmt ", FMT), _chunk(b"bext", b"b" * 40), _chunk(b"data", b"\0" * 100))
    _, _, chunks = chunk_table(io.BytesIO(blob[:-10]))
    assert [c.id for c in chunks] == [b"fmt ", b"bext"]


def test_rf64_is_left_alone_with_a_note():
    blob = _riff(_chunk(b"ds64", b"\0" * 28), _chunk(b"fmt ", FMT), _chunk(b"bext", b"b" * 10), riff=b"RF64")
    carried, dropped = wav_metadata(io.BytesIO(blob))
    assert carried == [] and dropped == ["RF64 metadata (not supported)"]


def test_list_chunks_carry_markers_and_info_only():
    adtl = b"adtl" + _chunk(b"labl", struct.pack("<I", 1) + b"Verse\0")
    other = b"wxyz" + b"123"
    blob = _riff(_chunk(b"fmt ", FMT), _chunk(b"LIST", adtl), _chunk(b"LIST", other), _chunk(b"data", b"\0\0"))
    carried, dropped = wav_metadata(io.BytesIO(blob))
    assert carried == [(b"LIST", adtl)] and dropped == ["LIST/wxyz"]


def test_splice_inserts_before_data_and_fixes_the_riff_size():
    data = b"\x05\x00" * 7 + b"\x09"  # 15 bytes: odd, with its pad byte
    src = io.BytesIO(_riff(_chunk(b"fmt ", FMT), _chunk(b"data", data)))
    extra = [(b"bext", b"B" * 603), (b"iXML", b"<BWFXML/>")]
    dst = io.BytesIO()
    splice_chunks(src, dst, extra)
    out = dst.getvalue()
    assert out == _riff(_chunk(b"fmt ", FMT), _chunk(b"bext", b"B" * 603), _chunk(b"iXML", b"<BWFXML/>"),
                        _chunk(b"data", data))
    assert struct.unpack("<I", out[4:8])[0] == len(out) - 8
    with pytest.raises(ValueError):
        splice_chunks(io.BytesIO(b"RIFF\x04\0\0\0WAVE"), io.BytesIO(), extra)


def test_aiff_and_flac_report_what_they_carry(tmp_path):
    audio = np.zeros((100, 1))
    for fmt, ext in (("AIFF", "aiff"), ("FLAC", "flac")):
        plain, tagged = tmp_path / f"plain.{ext}", tmp_path / f"tagged.{ext}"
        sf.write(str(plain), audio, 44100, format=fmt, subtype="PCM_16")
        with sf.SoundFile(str(tagged), "w", 44100, 1, format=fmt, subtype="PCM_16") as f:
            f.title = "take 3"
            f.write(audio)
        read = aiff_metadata if fmt == "AIFF" else flac_metadata
        with plain.open("rb") as fh:
            assert read(fh) == []  # libFLAC's vendor-only comment block carries nothing
        with tagged.open("rb") as fh:
            assert read(fh) == (["NAME"] if fmt == "AIFF" else ["VORBIS_COMMENT"])
