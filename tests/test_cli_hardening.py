"""What the CLI does when things go wrong that tests/test_cli.py does not stage: an unwritable
output folder (as root too), Ctrl-C while writing, non-finite samples, and any option values.

Every failure: one line on stderr naming the problem, a non-zero exit, no traceback,
inputs byte-identical, no output files, no temporaries left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _one_clean_line(result, code, *needles):
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    # progress lines of a piped run ("beatfix: ...") may come first; the error is one line
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("beatfix: ")]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _no_outputs(out):
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())


@pytest.fixture
def inputs(small_session, tmp_path):
    folder, truth = small_session
    src = tmp_path / "in"
    shutil.copytree(folder, src)
    paths = sorted(src.glob("*.wav"))
    return paths, truth["bpm"], _digest(paths)


def test_unwritable_output_folder_even_as_root(run_cli, inputs, tmp_path, monkeypatch):
    paths, bpm, before = inputs
    # A folder cannot be made under a regular file, whoever you are.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("align", *paths, "--bpm", bpm, "-o", blocker / "out", "--engine", "classic")
    _one_clean_line(r, 1, str(blocker / "out"))
    # A folder the OS says we may not write into (chmod does not stop root: ask as the OS would answer).
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(locked) and mode & os.W_OK
                        else real_access(p, mode, **kw))
    r = run_cli("align", *paths, "--bpm", bpm, "-o", locked, "--engine", "classic")
    _one_clean_line(r, 1, "not writable")
    _no_outputs(locked)
    assert _digest(paths) == before


def test_permission_denied_while_writing_names_the_file(run_cli, inputs, tmp_path, monkeypatch):
    """The folder passed the check but refuses the files (a read-only mount, an ACL)."""
    import tempfile

    paths, bpm, before = inputs
    out = tmp_path / "out"
    real = tempfile.mkstemp
    calls = {"n": 0}

    def refuse_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise PermissionError(13, "Permission denied")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_third)
    r = run_cli("align", *paths, "--bpm", bpm, "-o", out, "--engine", "classic")
    _one_clean_line(r, 1, "Permission denied", str(out / paths[2].name))
    _no_outputs(out)
    assert _digest(paths) == before


def test_ctrl_c_mid_write_leaves_no_half_written_stem(run_cli, inputs, tmp_path, monkeypatch):
    import beatfix.audio_io as audio_io

    paths, bpm, before = inputs
    out = tmp_path / "out"
    real = audio_io._write_one
    calls = {"n": 0}

    def interrupted(path, audio, *args):
        calls["n"] += 1
        if calls["n"] == 3:  # the third stem: half its samples are on disk when Ctrl-C comes
            real(path, audio[:, : audio.shape[1] // 2], *args)
            raise KeyboardInterrupt
        return real(path, audio, *args)

    monkeypatch.setattr(audio_io, "_write_one", interrupted)
    r = run_cli("align", *paths, "--bpm", bpm, "-o", out, "--engine", "classic")
    _one_clean_line(r, 130, "interrupted")
    _no_outputs(out)  # no stem, no report, no .part temporaries
    assert _digest(paths) == before


def test_ctrl_c_in_the_final_renames_waits_for_them(tmp_path, monkeypatch):
    """Ctrl-C arriving during the renames is held until all are done: all outputs or none."""
    import signal

    import beatfix.audio_io as audio_io

    real_replace = os.replace
    renamed = []

    def replace_and_interrupt(src, dst):
        real_replace(src, dst)
        renamed.append(dst)
        if len(renamed) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(audio_io.os, "replace", replace_and_interrupt)
    audio = np.zeros((1, 100), dtype=np.float32)
    jobs = [(tmp_path / f"{name}.wav", audio, 44100, "WAV", "PCM_24") for name in ("a", "b", "c")]
    # CI may start us with SIGINT ignored (no terminal): give Ctrl-C its usual meaning here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            audio_io.write_files(jobs)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav", "c.wav"]


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_samples_give_one_line(run_cli, inputs, tmp_path, bad):
    paths, bpm, _ = inputs
    data, sr = sf.read(str(paths[0]), dtype="float32", always_2d=True)
    data[len(data) // 2] = bad
    sf.write(str(paths[0]), data, sr, subtype="FLOAT")
    before = _digest(paths)
    out = tmp_path / "out"
    r = run_cli("align", *paths, "--bpm", bpm, "-o", out, "--engine", "classic")
    _one_clean_line(r, 1, paths[0].name, "non-finite")
    _no_outputs(out)
    assert _digest(paths) == before


# ----------------------------------------------------------------------------- fuzzing the options


@pytest.fixture(scope="module")
def tiny_session(tmp_path_factory):
    """Two close mics, 3 s: enough for a full analysis in a fraction of a second."""
    from beatfix.synth import SessionSpec, procedural_kit, render_session, write_session

    spec = SessionSpec(seed=5, sample_rate=44100, bpm=120.0, duration_s=3.0, n_channels=2, mics=("kick", "snare"))
    folder = tmp_path_factory.mktemp("tiny")
    write_session(folder, render_session(spec, procedural_kit(44100, seed=0)))
    return sorted(folder.glob("*.wav"))


_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.integers(min_value=-10**6, max_value=10**6).map(str),
    st.sampled_from(["0", "-1", "1e309", "nan", "inf", "", "fast", "1/16", "120bpm"]),
)
_OPTIONS = {
    "--bpm": st.one_of(_NUMBER, st.floats(min_value=40, max_value=240).map(repr)),
    "--grid": st.one_of(st.sampled_from(["1/4", "1/8", "1/16", "1/32", "1/8T", "1/16T", "1/7", "16", "", "1/0"]),
                        st.text(max_size=6)),
    "--strength": st.one_of(_NUMBER, st.floats(min_value=0, max_value=100).map(repr)),
    "--swing": st.one_of(_NUMBER, st.floats(min_value=50, max_value=75).map(repr)),
    "--pad-ms": st.one_of(_NUMBER, st.floats(min_value=0, max_value=50).map(repr)),
    "--xfade-ms": st.one_of(_NUMBER, st.floats(min_value=0.1, max_value=50).map(repr)),
    "--jobs": st.one_of(_NUMBER, st.integers(min_value=-3, max_value=4).map(str)),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.fixed_dictionaries({}, optional=_OPTIONS))
def test_any_option_values_end_cleanly(run_cli, tiny_session, tmp_path_factory, chosen):
    out = tmp_path_factory.mktemp("fuzz") / "out"
    args = [a for name, value in chosen.items() for a in (name, value)]
    r = run_cli("align", *tiny_session, "-o", out, "--dry-run", "--engine", "classic", *args)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert r.exit_code in (0, 1, 2), (r.exit_code, r.stderr)
    if r.exit_code == 1:
        lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("beatfix: ")]
        assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    elif r.exit_code == 2:  # a usage error from the parser: it says which option
        assert "Error" in r.stderr or "error" in r.stderr, r.stderr
    assert not out.exists()  # --dry-run never writes
