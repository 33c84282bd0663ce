"""Sections and plots from the command line: --lock/--range/--sections end to end, --plot formats."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import soundfile as sf

from beatfix.errors import ParameterError
from beatfix.grid import Grid
from beatfix.plot import Lane, bar_rows, plot_format, timing_plot
from beatfix.sections_file import parse_sections


def _stems(folder):
    return sorted(folder.glob("*.wav"))


def _one_line_error(result, code, needle):
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("beatfix: ")]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_locked_bar_is_the_input_sample_for_sample_in_every_output_stem(run_cli, small_session, tmp_path):
    folder, truth = small_session
    out = tmp_path / "fixed"
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "--engine", "classic", "-o", out,
                "--lock", "bar 2-2", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["n_edits_locked"] == 1
    doc = json.loads((out / "edits.json").read_text())
    assert doc["options"]["locks"] == ["bar 2-2"]
    span = next(s for s in doc["sections"] if s["kind"] == "locked")
    assert span["start"].startswith("2|1") and span["end"].startswith("3|1")
    edits = doc["edits"]
    k = next(i for i, e in enumerate(edits) if e["status"] == "locked")
    assert edits[k]["shift_samples"] == 0 and edits[k]["position"].startswith("2|1")
    start = edits[k]["cut_sample"]
    assert start <= round(span["start_s"] * doc["sample_rate"])
    nxt = edits[k + 1]
    end = nxt["cut_sample"] + min(nxt["shift_samples"], 0)
    xfade = round(doc["xfade_ms"] * doc["sample_rate"] / 1000)
    assert end - start > doc["sample_rate"]  # most of the bar (2 s at 118 BPM) lies between the seams
    moved_elsewhere = 0
    for src in _stems(folder):
        a, _ = sf.read(str(src), dtype="int32", always_2d=True)
        b, _ = sf.read(str(out / src.name), dtype="int32", always_2d=True)
        differs = np.flatnonzero(np.any(a[start:end] != b[start:end], axis=1))
        assert differs.size == 0 or differs.min() >= end - start - xfade, src.name  # only the border crossfade
        moved_elsewhere += int(np.any(a[:start] != b[:start]))
    assert moved_elsewhere  # the rest of the session was edited


def test_range_dry_run_lists_locked_spans_and_plots_a_pdf(run_cli, small_session, tmp_path):
    folder, truth = small_session
    pdf = tmp_path / "timing.pdf"
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "--engine", "classic", "-o", tmp_path / "o",
                "--range", "bar 1-1", "--dry-run", "--json", "--plot", pdf)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert not (tmp_path / "o").exists()
    statuses = [e["status"] for e in doc["edits"]]
    assert statuses[-1] == "locked" and any(s in ("moved", "capped") for s in statuses)
    assert all(e["status"] in ("locked", "zero", "excluded") or e["position"].startswith(("1|", "0|", "2|1"))
               for e in doc["edits"])
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert str(pdf) in doc["outputs"]


def test_report_plot_formats_and_unknown_extension(run_cli, small_session, tmp_path):
    folder, truth = small_session
    svg = tmp_path / "t.svg"
    r = run_cli("report", *_stems(folder), "--bpm", truth["bpm"], "--engine", "classic", "--plot", svg)
    assert r.exit_code == 0, r.stderr
    assert b"<svg" in svg.read_bytes()[:400]
    for cmd in (("report",), ("align", "-o", tmp_path / "o")):
        bad = run_cli(*cmd, *_stems(folder), "--bpm", truth["bpm"], "--plot", tmp_path / "t.jpg")
        _one_line_error(bad, 1, "name a .png, .pdf or .svg file")
        assert not (tmp_path / "t.jpg").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, needle", [
    (["--lock", "bar 12-9"], "comes before the first"),
    (["--lock", "bar 2-40"], "after the audio's end"),
    (["--range", "1-99"], "past the audio's end"),
    (["--lock", "soon"], "use seconds"),
    (["--lock", "bar 1-1", "--flams", "fix"], "--flams keep only"),
])
def test_bad_spans_are_one_line(run_cli, small_session, tmp_path, args, needle):
    folder, truth = small_session
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "--engine", "classic", "-o", tmp_path / "o", *args)
    _one_line_error(r, 1, needle)
    assert not (tmp_path / "o").exists()


def test_overlapping_sections_file_is_one_line(run_cli, small_session, tmp_path):
    folder, truth = small_session
    toml = tmp_path / "song.toml"
    toml.write_text('[[section]]\nname = "verse"\nspan = "bar 1-2"\n\n[[section]]\nname = "fill"\nspan = "2|3-3|1"\nlock = true\n')
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "--engine", "classic", "-o", tmp_path / "o",
                "--sections", toml)
    _one_line_error(r, 1, "sections 'verse' and 'fill' overlap")


def test_sections_file_toml_and_csv_read_the_same():
    toml = parse_sections('[[section]]\nspan = "bar 1-8"\ngrid = "1/16"\n\n'
                          '[[section]]\nname = "shuffle"\nspan = "bar 9-16"\ngrid = "1/8T"\nswing = 50\nstrength = 80\n'
                          '\n[[section]]\nspan = "9|1-9|3"\nlock = true\n')
    csv = parse_sections("span,name,grid,swing,strength,exclude_within,lock\n"
                         "bar 1-8,,1/16,,,,\nbar 9-16,shuffle,1/8T,50,80,,\n9|1-9|3,,,,,,true\n")
    assert [s.to_dict() for s in toml] == [s.to_dict() for s in csv]
    assert toml[1].grid == "1/8T" and toml[1].strength_pct == 80.0 and toml[2].lock
    with pytest.raises(ParameterError, match="row 2: .*strength 130"):
        parse_sections("span,strength\nbar 1-2,130\n", name="s.csv")
    with pytest.raises(ParameterError, match="unknown key 'tempo'"):
        parse_sections('[[section]]\nspan = "bar 1-2"\ntempo = 120\n')
    with pytest.raises(ParameterError, match="unknown grid"):
        parse_sections('[[section]]\nspan = "bar 1-2"\ngrid = "1/7"\n')


def test_plot_format_by_name():
    assert [plot_format(f"x.{e}") for e in ("png", "PDF", "svg")] == ["png", "pdf", "svg"]
    for name in ("x.jpg", "x", "x.png.txt"):
        with pytest.raises(ParameterError, match="name a .png, .pdf or .svg"):
            plot_format(name)


def _lanes(duration_s: float, grid: Grid) -> list[Lane]:
    rng = np.random.default_rng(1)
    lanes = []
    for name, every in (("kick", 8), ("snare", 8), ("hh", 2)):
        slots = np.arange(0, int((duration_s - 0.2) / grid.step_s), every)
        t = grid.slot_time(slots) + rng.normal(0.0, 0.006, slots.size)
        lanes.append(Lane(name, name, t, (t - grid.slot_time(slots)) * 1000.0))
    return lanes


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_rows_grow_with_the_session_and_a_pdf_gets_pages():
    grid = Grid(120.0, 0.1, 4.0)
    rows = {d: bar_rows(grid.tempo_map, 0.1, d) for d in (15.0, 60.0, 300.0)}  # from bar 1
    assert [len(r) for r in rows.values()] == [1, 4, 19]  # 8 bars (16 s) a row
    assert rows[300.0][1].first_bar == 9 and rows[300.0][1].last_bar == 16
    heights = {}
    for d in (15.0, 60.0):
        width, heights[d] = _png_size(timing_plot(_lanes(d, grid), grid.tempo_map, span_s=(0.0, d), fmt="png"))
        assert width == 1100
    assert heights[60.0] > 3 * heights[15.0]
    pdf = timing_plot(_lanes(300.0, grid), grid.tempo_map, span_s=(0.0, 300.0), fmt="pdf")
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 5  # 19 rows, 4 a page
