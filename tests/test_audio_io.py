"""Stems in, stems out: formats, validation at the boundary, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from beatfix.audio_io import load_session, prepare_output_dir, read_stem, write_files, write_stems
from beatfix.errors import InputError, OutputError

RNG = np.random.default_rng(7)


def _write(path, n_channels=1, n=4410, sr=44100, subtype="PCM_24", fmt=None, data=None):
    if data is None:
        data = (RNG.standard_normal((n, n_channels)) * 0.1).astype(np.float32)
    sf.write(str(path), data, sr, subtype=subtype, format=fmt)
    return path


@pytest.mark.parametrize(
    "suffix,fmt,subtype,channels,sr",
    [
        (".wav", "WAV", "PCM_16", 1, 44100),
        (".wav", "WAV", "PCM_24", 2, 48000),
        (".wav", "WAV", "FLOAT", 1, 96000),
        (".aiff", "AIFF", "PCM_24", 2, 44100),
        (".flac", "FLAC", "PCM_16", 1, 48000),
        (".flac", "FLAC", "PCM_24", 2, 88200),
    ],
)
def test_round_trip_keeps_name_format_subtype_rate_and_length(tmp_path, suffix, fmt, subtype, channels, sr):
    src = _write(tmp_path / f"kick{suffix}", n_channels=channels, n=1234, sr=sr, subtype=subtype, fmt=fmt)
    stem = read_stem(src)
    assert stem.audio.shape == (channels, 1234) and stem.audio.dtype == np.float32
    assert (stem.format, stem.subtype, stem.sample_rate, stem.role) == (fmt, subtype, sr, "kick")
    out = tmp_path / "out"
    out.mkdir()
    (written,) = write_stems([stem], out)
    assert written.name == src.name
    info = sf.info(str(written))
    assert (info.format, info.subtype, info.samplerate, info.frames, info.channels) == (fmt, subtype, sr, 1234, channels)
    back, _ = sf.read(str(written), dtype="float32", always_2d=True)
    np.testing.assert_allclose(back.T, stem.audio, atol=1e-4)


def test_different_lengths_are_padded_with_a_warning_and_written_back_at_their_own_length(tmp_path):
    a = _write(tmp_path / "kick.wav", n=1000)
    b = _write(tmp_path / "snare.wav", n=1200)
    session, warnings = load_session([a, b])
    assert session.n_samples == 1200
    assert any("kick.wav" in w and "padded" in w for w in warnings)
    out = tmp_path / "out"
    out.mkdir()
    write_stems(session.stems, out)
    assert sf.info(str(out / "kick.wav")).frames == 1000


def test_different_sample_rates_are_refused(tmp_path):
    a = _write(tmp_path / "kick.wav", sr=44100)
    b = _write(tmp_path / "snare.wav", sr=48000)
    with pytest.raises(InputError, match="different sample rates"):
        load_session([a, b])


def test_bad_files_name_the_file(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(InputError, match="notes.wav: not a readable audio file"):
        read_stem(text)
    with pytest.raises(InputError, match="no such file"):
        read_stem(tmp_path / "missing.wav")
    empty = _write(tmp_path / "empty.wav", data=np.zeros((0, 1), dtype=np.float32))
    with pytest.raises(InputError, match="empty.wav: empty"):
        read_stem(empty)


def test_truncated_wav_is_refused(tmp_path):
    src = _write(tmp_path / "snare.wav", n=44100)
    raw = src.read_bytes()
    src.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="snare.wav: truncated"):
        read_stem(src)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_refused(tmp_path, bad):
    data = np.zeros((100, 1), dtype=np.float32)
    data[50] = bad
    src = _write(tmp_path / "hh.wav", subtype="FLOAT", data=data)
    with pytest.raises(InputError, match="hh.wav: non-finite"):
        read_stem(src)


def test_silent_stem_is_legal(tmp_path):
    src = _write(tmp_path / "tom1.wav", data=np.zeros((500, 1), dtype=np.float32))
    assert not read_stem(src).audio.any()


def test_role_overrides_and_duplicate_names(tmp_path):
    a = _write(tmp_path / "mic1.wav")
    (tmp_path / "x").mkdir()
    b = _write(tmp_path / "x" / "mic1.wav")
    with pytest.raises(InputError, match="share the name"):
        load_session([a, b])
    session, _ = load_session([a], roles={"mic1.wav": "snare"})
    assert session.stems[0].role == "snare"
    with pytest.raises(InputError, match="not an input"):
        load_session([a], roles={"other.wav": "kick"})


def test_output_folder_rules(tmp_path):
    src = _write(tmp_path / "kick.wav")
    with pytest.raises(OutputError, match="inputs' folder"):
        prepare_output_dir(tmp_path, [src], force=True)
    with pytest.raises(OutputError, match="is an input file"):
        prepare_output_dir(src, [src], force=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        prepare_output_dir(out, [src], force=False)
    prepare_output_dir(out, [src], force=True)
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputError):
            prepare_output_dir(locked / "sub", [src], force=False)


def test_integer_formats_clip_instead_of_wrapping(tmp_path):
    loud = np.full((1, 100), 1.7, dtype=np.float32)
    (path,) = write_files([(tmp_path / "k.wav", loud, 44100, "WAV", "PCM_16")])
    back, _ = sf.read(str(path))
    assert back.min() > 0.99


def test_failed_write_leaves_no_partial_files(tmp_path, monkeypatch):
    """A full disk on the second file: neither output appears, no temporaries remain."""
    import beatfix.audio_io as audio_io

    calls = {"n": 0}
    real = audio_io._write_one

    def flaky(path, *args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(path, *args)

    monkeypatch.setattr(audio_io, "_write_one", flaky)
    audio = np.zeros((1, 100), dtype=np.float32)
    with pytest.raises(OutputError, match="No space left"):
        write_files([(tmp_path / "a.wav", audio, 44100, "WAV", "PCM_24"), (tmp_path / "b.wav", audio, 44100, "WAV", "PCM_24")])
    assert list(tmp_path.iterdir()) == []
