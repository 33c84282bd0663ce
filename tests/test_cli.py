"""End-to-end CLI: one fast run per command, the JSON schema, and every user-error path.

Every error must be one line on stderr, a non-zero exit, no traceback, inputs
byte-identical and no partial outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import soundfile as sf


def _stems(folder):
    return sorted(folder.glob("*.wav"))


def _digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _assert_clean_error(result, code, *needles):
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    if code == 1:
        # progress lines of a piped run ("beatfix: ...") may come first; the error is one line
        lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("beatfix: ")]
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_help_is_fast_and_has_examples(run_cli):
    for cmd in ("report", "align", "synth", "train"):
        r = run_cli(cmd, "--help")
        assert r.exit_code == 0
        assert "Example" in r.stdout or "example" in r.stdout, cmd


def test_report_json_schema(run_cli, small_session):
    folder, truth = small_session
    r = run_cli("report", *_stems(folder), "--bpm", truth["bpm"], "--json", "--engine", "classic")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout holds only JSON
    assert doc["tempo_bpm"] == pytest.approx(truth["bpm"])
    step_s = 60.0 / truth["bpm"] / truth["steps_per_beat"]
    phase_error_s = (doc["grid_offset_s"] - truth["grid_offset_s"] + step_s / 2) % step_s - step_s / 2
    # The fitted phase follows the player's average feel, which no editor can tell from the click.
    feel_s = float(np.median([h["performed_time_s"] - h["grid_time_s"] for h in truth["hits"]]))
    assert abs(phase_error_s - feel_s) < 0.0025
    names = {p.stem for p in _stems(folder)}
    assert set(doc["mic_delays_ms"]) == names
    assert doc["hits"], "no hits found"
    for hit in doc["hits"]:
        assert set(hit) >= {"time_s", "slot", "deviation_ms", "channels"}
        assert isinstance(hit["slot"], int)
        assert set(hit["channels"]) <= names
        assert all(isinstance(v, float) for v in hit["channels"].values())
    for flam in doc["flams"]:
        assert set(flam) >= {"time_s", "spread_ms", "channels"}
    assert {c["stem"] for c in doc["channels"]} <= names


def test_report_table_csv_and_plot(run_cli, small_session, tmp_path):
    folder, truth = small_session
    csv_path, png = tmp_path / "hits.csv", tmp_path / "t.png"
    r = run_cli("report", *_stems(folder), "--bpm", truth["bpm"], "--engine", "classic", "--csv", csv_path, "--plot", png)
    assert r.exit_code == 0, r.stderr
    assert "Tempo" in r.stdout and "Mic delays" in r.stdout
    assert csv_path.read_text().startswith("time_s,slot")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_align_writes_stems_and_reports(run_cli, small_session, tmp_path):
    folder, truth = small_session
    before = _digest(_stems(folder))
    out = tmp_path / "fixed"
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--engine", "classic", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["n_hits"] > 0
    for src in _stems(folder):
        a, b = sf.info(str(src)), sf.info(str(out / src.name))
        assert (a.frames, a.samplerate, a.channels, a.subtype, a.format) == (b.frames, b.samplerate, b.channels, b.subtype, b.format)
    edits = json.loads((out / "edits.json").read_text())
    assert edits["edits"] and {"cut_s", "shift_ms", "slot"} <= set(edits["edits"][0])
    assert "flams" in json.loads((out / "flam_report.json").read_text())
    assert (out / "flam_report.csv").read_text().startswith("time_s,")
    assert not list(out.glob(".*part"))
    assert _digest(_stems(folder)) == before, "inputs were modified"
    # a second run refuses the non-empty folder, --force accepts it
    _assert_clean_error(run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--engine", "classic"), 1, "not empty")
    assert run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--engine", "classic", "--force").exit_code == 0


def test_dry_run_writes_nothing(run_cli, small_session, tmp_path):
    folder, truth = small_session
    out = tmp_path / "none"
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--engine", "classic", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert not out.exists()


def test_batch_one_corrupt_session_fails_alone(run_cli, small_session, tmp_path):
    folder, truth = small_session
    sessions = tmp_path / "sessions"
    good = sessions / "a_good"
    bad = sessions / "b_bad"
    shutil.copytree(folder, good)
    bad.mkdir(parents=True)
    (bad / "kick.wav").write_text("not audio")
    out = tmp_path / "out"
    r = run_cli("align", "--batch", sessions, "-o", out, "--bpm", truth["bpm"], "--engine", "classic", "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    status = {s["session"]: s["status"] for s in doc["sessions"]}
    assert status == {"a_good": "ok", "b_bad": "failed"}
    assert (out / "a_good" / "kick.wav").exists()
    assert not (out / "b_bad").exists() or not any((out / "b_bad").iterdir())


def _session_copy(folder, tmp_path):
    dst = tmp_path / "in"
    shutil.copytree(folder, dst)
    return dst


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "empty", "nan", "rate"])
def test_bad_stems_give_one_clear_line(run_cli, small_session, tmp_path, case):
    folder, truth = small_session
    src = _session_copy(folder, tmp_path)
    victim = src / "kick.wav"
    if case == "missing":
        victim.unlink()
    elif case == "text":
        victim.write_text("hello")
    elif case == "truncated":
        victim.write_bytes(victim.read_bytes()[:5000])
    elif case == "empty":
        sf.write(str(victim), np.zeros((0, 1)), 44100, subtype="PCM_24")
    elif case == "nan":
        data = np.zeros((1000, 1), dtype=np.float32)
        data[10] = np.nan
        sf.write(str(victim), data, 44100, subtype="FLOAT")
    elif case == "rate":
        sf.write(str(victim), np.zeros((1000, 1)), 48000, subtype="PCM_24")
    paths = [src / p.name for p in _stems(folder)]
    existing = [p for p in paths if p.exists()]
    before = _digest(existing)
    out = tmp_path / "out"
    r = run_cli("align", *paths, "--bpm", truth["bpm"], "-o", out, "--engine", "classic")
    _assert_clean_error(r, 1, "kick.wav" if case != "rate" else "sample rates")
    assert _digest(existing) == before
    assert not out.exists() or not any(out.iterdir())
    r = run_cli("report", *paths, "--bpm", truth["bpm"], "--engine", "classic")
    _assert_clean_error(r, 1)


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["--bpm", "0"], 1, "--bpm"),
        (["--bpm", "-5"], 1, "--bpm"),
        (["--bpm", "100000"], 1, "--bpm"),
        (["--grid", "1/7"], 1, "unknown grid"),
        (["--strength", "150"], 1, "--strength"),
        (["--swing", "90"], 1, "swing"),
        (["--engine", "magic"], 1, "--engine"),
        (["--bpm", "fast"], 2, ""),
        (["--no-such-option"], 2, ""),
    ],
)
def test_bad_options(run_cli, small_session, tmp_path, args, code, needle):
    folder, _ = small_session
    r = run_cli("align", *_stems(folder), "-o", tmp_path / "o", *args)
    _assert_clean_error(r, code, needle)
    assert not (tmp_path / "o").exists()


def test_output_onto_inputs_is_refused(run_cli, small_session, tmp_path):
    folder, truth = small_session
    src = _session_copy(folder, tmp_path)
    paths = _stems(src)
    before = _digest(paths)
    _assert_clean_error(run_cli("align", *paths, "--bpm", truth["bpm"], "-o", src, "--force"), 1, "inputs' folder")
    _assert_clean_error(run_cli("align", *paths, "--bpm", truth["bpm"], "-o", paths[0], "--force"), 1, "input file")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _assert_clean_error(run_cli("align", *paths, "--bpm", truth["bpm"], "-o", blocker / "sub"), 1)
    assert _digest(paths) == before


def test_full_disk_while_writing_leaves_nothing(run_cli, small_session, tmp_path, monkeypatch):
    import beatfix.audio_io as audio_io

    folder, truth = small_session
    real = audio_io._write_one
    calls = {"n": 0}

    def full_disk(path, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(path, *args)

    monkeypatch.setattr(audio_io, "_write_one", full_disk)
    out = tmp_path / "out"
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--engine", "classic")
    _assert_clean_error(r, 1, "No space left")
    assert not out.exists() or list(out.iterdir()) == []


def test_silent_stem_passes_through(run_cli, small_session, tmp_path):
    folder, truth = small_session
    src = _session_copy(folder, tmp_path)
    info = sf.info(str(src / "kick.wav"))
    sf.write(str(src / "tom9.wav"), np.zeros((info.frames, 1)), info.samplerate, subtype="PCM_24")
    out = tmp_path / "out"
    r = run_cli("align", *_stems(src), "--bpm", truth["bpm"], "-o", out, "--engine", "classic")
    assert r.exit_code == 0, r.stderr
    assert not sf.read(str(out / "tom9.wav"))[0].any()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    pytest.importorskip("torch")  # making a model is training's business (the train extra)
    from beatfix.neural.weights import tiny_model

    return tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=1)


def test_neural_engine_end_to_end_with_a_tiny_model(run_cli, small_session, tmp_path, tiny_model_dir):
    folder, truth = small_session
    out = tmp_path / "fixed"
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--model", tiny_model_dir,
                "--device", "cpu", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["engine"] == "neural" and doc["device"] == "cpu"
    assert all(sf.info(str(out / p.name)).frames == sf.info(str(p)).frames for p in _stems(folder))


def test_model_errors_are_one_line(run_cli, small_session, tmp_path, tiny_model_dir):
    folder, truth = small_session
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    r = run_cli("report", *_stems(folder), "--bpm", truth["bpm"], "--model", broken)
    _assert_clean_error(r, 1, "checksum")
    r = run_cli("report", *_stems(folder), "--bpm", truth["bpm"], "--model", tmp_path / "nowhere")
    _assert_clean_error(r, 1)
    import torch

    if not torch.cuda.is_available():
        r = run_cli("report", *_stems(folder), "--bpm", truth["bpm"], "--device", "cuda")
        _assert_clean_error(r, 1, "cuda")
