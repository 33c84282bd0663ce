"""Fuzzing the boundary: any bytes named .wav and any option values give a clean error, never a crash."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beatfix.audio_io import read_stem
from beatfix.errors import InputError, ParameterError
from beatfix.grid import check_bpm, parse_grid

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_wav_bytes(n: int = 64) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.linspace(-0.5, 0.5, n, dtype=np.float32), 44100, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _check(path) -> None:
    try:
        stem = read_stem(path)
    except InputError as exc:
        assert str(exc).startswith(str(path))
        return
    assert stem.audio.ndim == 2 and stem.audio.shape[1] > 0
    assert np.isfinite(stem.audio).all()


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_named_wav(tmp_path, data):
    path = tmp_path / "kick.wav"
    path.write_bytes(data)
    _check(path)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=200), flip=st.lists(st.tuples(st.integers(0, 170), st.integers(0, 255)), max_size=8))
def test_mangled_wav_headers(tmp_path, cut, flip):
    raw = bytearray(_valid_wav_bytes())
    for pos, value in flip:
        if pos < len(raw):
            raw[pos] = value
    path = tmp_path / "snare.wav"
    path.write_bytes(bytes(raw[: len(raw) - cut]))
    _check(path)


@FUZZ
@given(size=st.integers(min_value=0, max_value=2**32 - 1))
def test_wav_data_chunk_size_lies(tmp_path, size):
    raw = bytearray(_valid_wav_bytes())
    pos = raw.find(b"data")
    raw[pos + 4:pos + 8] = struct.pack("<I", size)
    path = tmp_path / "hh.wav"
    path.write_bytes(bytes(raw))
    _check(path)


@FUZZ
@given(spec=st.text(max_size=12))
def test_grid_specs(spec):
    try:
        assert parse_grid(spec) > 0
    except ParameterError:
        pass


@FUZZ
@given(bpm=st.floats(allow_nan=True, allow_infinity=True))
def test_bpm_values(bpm):
    try:
        assert 20 <= check_bpm(bpm) <= 400
    except ParameterError:
        pass
