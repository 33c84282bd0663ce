"""The library pipeline (beatfix.align / analyse / align_batch and their options), the provenance
edits.json records, bar|beat positions, the --dry-run preview and BWF metadata kept through align."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import beatfix
from beatfix.bars import bar_beat
from beatfix.errors import ParameterError
from beatfix.grid import Grid


def _stems(folder):
    return sorted(folder.glob("*.wav"))


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("kwargs,message", [
    ({"xfade_ms": 0.0}, "--xfade-ms 0 is out of range: use 0.1 to 50"),
    ({"xfade_ms": 60.0}, "--xfade-ms 60 is out of range: use 0.1 to 50"),
    ({"pad_ms": -1}, "--pad-ms -1 is out of range: use 0 to 50"),
    ({"strength_pct": 150}, "--strength 150 is out of range: use 0 to 100"),
    ({"exclude_within_ms": float("nan")}, "--exclude-within nan is out of range"),
    ({"bpm": 0}, "--bpm 0 is out of range"),
    ({"bpm": "fast"}, "--bpm must be a number"),
    ({"swing_pct": 80}, "--swing 80 is out of range"),
    ({"grid": "1/7"}, "unknown grid"),
    ({"grid_offset_s": float("inf")}, "--grid-offset inf"),
    ({"engine": "magic"}, "--engine 'magic'"),
    ({"device": "tpu"}, "--device 'tpu'"),
    ({"flams": "some"}, "--flams 'some'"),
    ({"roles": {"kick.wav": "cowbell"}}, "unknown role"),
])
def test_options_are_checked_once_when_made(kwargs, message):
    with pytest.raises(ParameterError) as err:
        beatfix.AlignOptions(**kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_options_are_frozen_normalised_and_extend_the_analysis_options():
    opts = beatfix.AlignOptions(bpm=120, xfade_ms=0.1, roles={"k.wav": "Kick"}, engine="CLASSIC")
    assert opts.bpm == 120.0 and opts.engine == "classic" and opts.roles == (("k.wav", "kick"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.bpm = 90  # type: ignore[misc]
    analyse_opts = opts.analyse_options()
    assert type(analyse_opts) is beatfix.AnalyseOptions
    assert analyse_opts.bpm == 120.0 and analyse_opts.roles == opts.roles
    assert json.loads(json.dumps(opts.to_dict()))["xfade_ms"] == 0.1


def test_import_is_light_and_the_api_names_survive_the_core_modules():
    code = ("import sys, beatfix; assert 'numpy' not in sys.modules, 'numpy imported';"
            "import beatfix.align, beatfix.analyse;"
            "assert callable(beatfix.align) and callable(beatfix.analyse);"
            "from beatfix.align import edits_document; assert callable(beatfix.align)")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- bar|beat


def test_bar_beat_counts_four_beats_per_bar_from_the_grid_offset():
    grid = Grid(bpm=120.0, offset_s=0.25, steps_per_beat=4.0)  # a beat is 0.5 s
    assert str(bar_beat(grid, 0.25)) == "1|1|000"
    assert str(bar_beat(grid, 0.25 + 0.5 * 5 + 0.125)) == "2|2|240"  # beat 6 and a 16th
    assert str(bar_beat(grid, 0.25 + 2.0 - 1e-7)) == "2|1|000"  # a hair early rounds onto the beat
    assert str(bar_beat(grid, 0.0)) == "0|4|480"  # before the offset: the bar before bar 1


# ----------------------------------------------------------------------------- the Python API


def test_python_api_aligns_a_session(small_session, tmp_path):
    folder, truth = small_session
    out = tmp_path / "fixed"
    seen = []
    result = beatfix.align(_stems(folder), out, beatfix.AlignOptions(bpm=truth["bpm"], engine="classic"),
                           progress=lambda stage, fraction: seen.append(stage))
    assert {p.name for p in result.outputs} == {p.name for p in _stems(folder)} | {
        "edits.json", "flam_report.json", "flam_report.csv"}
    assert all(p.exists() for p in result.outputs)
    summary = result.summary
    assert summary["status"] == "ok" and summary["tempo_bpm"] == pytest.approx(truth["bpm"])
    assert "rendering" in seen
    for name, before in summary["before"].items():
        assert summary["after"][name]["p95_abs_ms"] < before["p95_abs_ms"]
    moved = sum(1 + len(e["merged_hits"]) for e in result.edits if e["shift_samples"] != 0)
    assert summary["n_hits_moved"] == moved <= summary["n_hits"]

    doc = json.loads((out / "edits.json").read_text())
    assert doc["schema"] == "beatfix-edits/2" and doc["beatfix_version"] == beatfix.__version__
    assert doc["inputs"] == [{"file": p.name, "size_bytes": p.stat().st_size,
                              "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in _stems(folder)]
    assert doc["options"]["bpm"] == truth["bpm"] and doc["options"]["xfade_ms"] == 4.0
    assert doc["options"]["grid"] == "1/16" and doc["options"]["engine"] == "classic"
    assert (doc["engine"], doc["model"], doc["tempo_source"], doc["grid_offset_source"]) == (
        "classic", None, "given", "fitted")
    grid = Grid(doc["tempo_bpm"], doc["grid_offset_s"], doc["steps_per_beat"], doc["swing_pct"])
    for e in doc["edits"]:
        beats = (e["slot_time_s"] - grid.offset_s) * grid.bpm / 60.0
        assert (e["bar"] - 1) * 4 + (e["beat"] - 1) + e["tick"] / 960 == pytest.approx(beats, abs=0.6 / 960)
        assert e["position"] == f"{e['bar']}|{e['beat']}|{e['tick']:03d}"
        assert e["status"] in ("moved", "zero", "excluded", "capped")


def test_python_api_analyses_a_session(small_session):
    folder, truth = small_session
    result = beatfix.analyse(_stems(folder), beatfix.AnalyseOptions(bpm=truth["bpm"], grid="1/8", engine="classic"))
    assert result.engine == "classic" and result.analysis.tempo_bpm == pytest.approx(truth["bpm"])
    doc = result.document()
    assert doc["grid"]["resolution"] == "1/8" and doc["grid"]["steps_per_beat"] == 2
    assert len(doc["hits"]) == len(result.analysis.hits) > 0


def test_edits_json_names_the_model_and_its_checksum(small_session, tmp_path):
    from beatfix.neural.weights import sha256_file, tiny_model

    folder, truth = small_session
    model = tiny_model(tmp_path / "tiny", seed=1)
    out = tmp_path / "fixed"
    beatfix.align(_stems(folder), out, beatfix.AlignOptions(bpm=truth["bpm"], model_dir=model, device="cpu"))
    doc = json.loads((out / "edits.json").read_text())
    assert doc["engine"] == "neural" and doc["device"] == "cpu"
    assert doc["model"]["sha256"] == sha256_file(model / "weights.pt")
    assert doc["model"]["files_sha256"]["encoder.onnx"] == sha256_file(model / "encoder.onnx")
    assert doc["options"]["model_dir"] == str(model)


def test_align_batch_reports_each_session(small_session, tmp_path):
    folder, truth = small_session
    sessions = tmp_path / "sessions"
    shutil.copytree(folder, sessions / "a")
    (sessions / "b").mkdir()
    (sessions / "b" / "kick.wav").write_text("not audio")
    outcomes = beatfix.align_batch(sessions, tmp_path / "out", beatfix.AlignOptions(bpm=truth["bpm"], engine="classic"))
    assert [(o.session, o.ok) for o in outcomes] == [("a", True), ("b", False)]
    assert "kick.wav" in outcomes[1].error
    assert (tmp_path / "out" / "a" / "edits.json").exists()
    with pytest.raises(ParameterError, match="--jobs 0"):
        beatfix.align_batch(sessions, tmp_path / "out2", jobs=0)


# ----------------------------------------------------------------------------- --dry-run preview


def test_dry_run_lists_every_edit_and_counts_only_moved_hits(run_cli, small_session, tmp_path):
    folder, truth = small_session
    out = tmp_path / "none"
    args = ("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--engine", "classic", "--dry-run",
            "--exclude-within", "4")
    r = run_cli(*args, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    edits = doc["edits"]
    assert len(edits) == doc["n_edits"] > 0
    statuses = [e["status"] for e in edits]
    assert "excluded" in statuses and "moved" in statuses  # the session has hits both sides of 4 ms
    for e in edits:
        if e["status"] == "excluded":
            assert abs(e["deviation_ms"]) <= 4.0 and e["shift_samples"] == 0
        if e["status"] == "capped":
            assert e["shift_ms"] != e["wanted_shift_ms"]
    moved = sum(1 + len(e["merged_hits"]) for e in edits if e["shift_samples"] != 0)
    assert doc["n_hits_moved"] == moved < doc["n_hits"]
    assert doc["n_edits_excluded"] == statuses.count("excluded")

    r = run_cli(*args)  # the table
    assert r.exit_code == 0, r.stderr
    assert f"{doc['n_hits']} hits, {moved} moved" in r.stdout
    for e in edits[:5]:
        assert e["position"] in r.stdout
    assert "excluded" in r.stdout and "dry run: nothing written" in r.stdout
    assert not out.exists()


# ----------------------------------------------------------------------------- BWF metadata


def _chunk(chunk_id: bytes, payload: bytes) -> bytes:
    return struct.pack("<4sI", chunk_id, len(payload)) + payload + b"\0" * (len(payload) & 1)


def _bext(time_reference: int) -> bytes:
    """A BWF bext chunk (EBU Tech 3285 v2): description, originator, date, TimeReference, history."""
    head = (b"Snare top, take 3".ljust(256, b"\0") + b"beatfix test rig".ljust(32, b"\0")
            + b"REF-0001".ljust(32, b"\0") + b"2026-12-04" + b"16:30:00"
            + struct.pack("<IIH", time_reference & 0xFFFFFFFF, time_reference >> 32, 2)
            + b"\0" * 64 + b"\0" * 10 + b"\0" * 180)
    return head + b"A=PCM,F=44100,W=16,M=mono,T=test\r\n\0"  # odd total: a pad byte follows


def _write_bwf(path, audio: np.ndarray, sample_rate: int, chunks: list[tuple[bytes, bytes]]) -> None:
    """A 16-bit mono broadcast WAV built byte by byte: fmt, the given chunks, data."""
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    body = b"WAVE" + _chunk(b"fmt ", fmt) + b"".join(_chunk(i, p) for i, p in chunks) + _chunk(b"data", pcm)
    path.write_bytes(struct.pack("<4sI", b"RIFF", len(body)) + body)


def _read_chunks(path) -> dict[bytes, list[bytes]]:
    blob = path.read_bytes()
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WAVE"
    assert struct.unpack("<I", blob[4:8])[0] == len(blob) - 8
    found: dict[bytes, list[bytes]] = {}
    pos = 12
    while pos + 8 <= len(blob):
        chunk_id, size = struct.unpack("<4sI", blob[pos:pos + 8])
        found.setdefault(chunk_id, []).append(blob[pos + 8:pos + 8 + size])
        pos += 8 + size + (size & 1)
    assert pos == len(blob)
    return found


def test_bwf_timestamp_ixml_and_markers_survive_align(run_cli, small_session, tmp_path):
    folder, truth = small_session
    src = tmp_path / "in"
    shutil.copytree(folder, src)
    audio, sr = sf.read(str(src / "snare_top.wav"), always_2d=True)
    bext = _bext(172800000)
    ixml = b'<?xml version="1.0"?><BWFXML><PROJECT>beatfix</PROJECT><TAKE>3</TAKE></BWFXML>'  # odd length
    cue = struct.pack("<I", 2) + b"".join(struct.pack("<II4sIII", i, 0, b"data", 0, 0, pos)
                                          for i, pos in ((1, 44100), (2, 132300)))
    labels = b"adtl" + _chunk(b"labl", struct.pack("<I", 1) + b"Verse\0") + \
        _chunk(b"labl", struct.pack("<I", 2) + b"Fill\0")
    chunks = [(b"bext", bext), (b"iXML", ixml), (b"cue ", cue), (b"LIST", labels)]
    _write_bwf(src / "snare_top.wav", audio[:, 0], sr, chunks)
    out = tmp_path / "fixed"
    r = run_cli("align", *_stems(src), "--bpm", truth["bpm"], "-o", out, "--engine", "classic")
    assert r.exit_code == 0, r.stderr
    assert "warning" not in r.stderr
    written = _read_chunks(out / "snare_top.wav")
    for chunk_id, payload in chunks:
        assert written[chunk_id] == [payload], chunk_id  # byte for byte, markers at their samples
    assert struct.unpack("<II", written[b"bext"][0][338:346]) == (172800000, 0)
    edited, out_sr = sf.read(str(out / "snare_top.wav"), always_2d=True)
    assert (edited.shape, out_sr) == (audio.shape, sr)
    assert len(written[b"data"][0]) == audio.shape[0] * 2
    assert b"bext" not in _read_chunks(out / "kick.wav")  # nothing invented for plain inputs


def test_metadata_an_output_cannot_carry_is_one_warning_line(run_cli, small_session, tmp_path):
    folder, truth = small_session
    src = tmp_path / "in"
    src.mkdir()
    for p in _stems(folder):
        audio, sr = sf.read(str(p), always_2d=True)
        with sf.SoundFile(str(src / f"{p.stem}.flac"), "w", sr, audio.shape[1], subtype="PCM_24") as f:
            if p.stem in ("kick", "snare_top"):
                f.title = "take 3"
            f.write(audio)
    r = run_cli("align", *sorted(src.glob("*.flac")), "--bpm", truth["bpm"], "-o", tmp_path / "out",
                "--engine", "classic")
    assert r.exit_code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "metadata" in line]
    assert len(lines) == 1, r.stderr
    assert "kick.flac (VORBIS_COMMENT)" in lines[0] and "snare_top.flac (VORBIS_COMMENT)" in lines[0]
