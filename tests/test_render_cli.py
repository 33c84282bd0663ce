"""``beatfix render EDITS.json`` and ``align --daw``, end to end on the small synthetic session.

An unchanged edits.json re-renders bit-identical stems; a script that changes
one shift changes exactly that piece (every sample outside the piece and its
two seams is identical); every broken list is one line on stderr, exit 1,
nothing written.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from beatfix.editlist import plan_from_document
from beatfix.errors import ParameterError
from beatfix.render import plan_seams
from daw_readers import parse_rpp, read_aaf


def _stems(folder):
    return sorted(folder.glob("*.wav"))


def _clean_error(result, *needles):
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("beatfix: ")]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture(scope="module")
def aligned(small_session, tmp_path_factory):
    """The small session aligned once with --daw rpp,aaf: (inputs folder, output folder, truth)."""
    import sys

    from beatfix.cli import main

    folder, truth = small_session
    out = tmp_path_factory.mktemp("aligned") / "fixed"
    argv = sys.argv
    sys.argv = ["beatfix", "align", *map(str, _stems(folder)), "--bpm", str(truth["bpm"]), "-o", str(out),
                "--engine", "classic", "--daw", "rpp,aaf", "--json"]
    try:
        main()
    except SystemExit as exc:  # typer exits 0 after a command that went well
        assert exc.code in (0, None), exc.code
    finally:
        sys.argv = argv
    return folder, out, truth


def _read(folder):
    return {p.name: sf.read(str(p), dtype="float64", always_2d=True)[0] for p in _stems(folder)}


def test_align_daw_writes_sessions_of_the_original_files(aligned):
    folder, out, _ = aligned
    edits = json.loads((out / "edits.json").read_text())
    assert edits["schema"] == "beatfix-edits/2"
    assert [s["path"] for s in edits["stems"]] == [str(p.resolve()) for p in _stems(folder)]
    rpp = parse_rpp((out / "session.rpp").read_text())
    assert list(rpp["tracks"]) == [p.stem for p in _stems(folder)]
    for path in _stems(folder):
        items = rpp["tracks"][path.stem]
        assert {i.file for i in items} == {str(path.resolve())}
        assert len([i for i in items if i.rate == 1.0]) == len(edits["edits"]) + 1
    aaf = read_aaf(out / "session.aaf")
    assert list(aaf) == [p.stem for p in _stems(folder)]
    assert all(slot["urls"] == {p.resolve().as_uri()} for p, slot in zip(_stems(folder), aaf.values()))
    assert any("absolute path" in line for line in rpp["notes"])


def test_render_of_the_unchanged_list_is_bit_identical(aligned, run_cli, tmp_path):
    folder, out, _ = aligned
    again = tmp_path / "again"
    r = run_cli("render", out / "edits.json", "-o", again, "--json")
    assert r.exit_code == 0, r.stderr
    first, second = _read(out), _read(again)
    assert first.keys() == second.keys() and len(first) == len(_stems(folder))
    for name in first:
        assert np.array_equal(first[name], second[name]), name
    # the list it rendered is written with the stems, and renders the same again
    rendered = json.loads((again / "edits.json").read_text())
    assert rendered["edits"] == json.loads((out / "edits.json").read_text())["edits"]


def _change_one_shift(doc):
    """A script-like edit: one shift in the middle moved by a few samples (the first change that fits)."""
    mid = len(doc["edits"]) // 2
    for k in [mid, *range(1, len(doc["edits"]) - 1)]:
        for delta in (-24, 24, -8, 8, -3, 3):
            changed = json.loads(json.dumps(doc))
            changed["edits"][k]["shift_samples"] += delta
            del changed["edits"][k]["shift_ms"]
            try:
                plan_from_document(changed)
            except ParameterError:
                continue
            return k, changed
    raise AssertionError("no shift could be changed")


def test_changing_one_shift_changes_exactly_that_piece(aligned, run_cli, tmp_path):
    folder, out, _ = aligned
    doc = json.loads((out / "edits.json").read_text())
    k, changed = _change_one_shift(doc)
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(changed))
    r = run_cli("render", mine, "-o", tmp_path / "moved", *_stems(folder))
    assert r.exit_code == 0, r.stderr
    # piece k spans seam k's start to seam k+1's end, in the old plan or the new
    old, new = plan_seams(plan_from_document(doc)), plan_seams(plan_from_document(changed))
    lo = min(old[k].out_start, new[k].out_start)
    hi = max(old[k + 1].out_stop, new[k + 1].out_stop)
    before, after = _read(out), _read(tmp_path / "moved")
    differs = False
    for name in before:
        outside = np.ones(before[name].shape[0], dtype=bool)
        outside[lo:hi] = False
        assert np.array_equal(before[name][outside], after[name][outside]), name
        differs |= not np.array_equal(before[name][lo:hi], after[name][lo:hi])
    assert differs
    # the moved piece itself: its attack now plays exactly delta samples away
    delta = changed["edits"][k]["shift_samples"] - doc["edits"][k]["shift_samples"]
    cut, shift = doc["edits"][k]["cut_sample"], doc["edits"][k]["shift_samples"]
    body = slice(cut + shift + 100, cut + shift + 400)  # after the seam's fade, inside the piece
    moved = slice(body.start + delta, body.stop + delta)
    loudest = max(before, key=lambda name: float(np.abs(before[name][body]).max()))
    assert np.abs(before[loudest][body]).max() > 0.01  # not silence
    assert np.array_equal(before[loudest][body], after[loudest][moved])


def test_deleting_an_edit_and_moving_a_cut_render(aligned, run_cli, tmp_path):
    _, out, _ = aligned
    doc = json.loads((out / "edits.json").read_text())
    changed = json.loads(json.dumps(doc))
    del changed["edits"][-1]  # the last piece now keeps playing with the one before it
    changed["edits"][1]["cut_sample"] -= 5
    del changed["edits"][1]["cut_s"]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(changed))
    r = run_cli("render", path, "-o", tmp_path / "o", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["n_edits"] == len(doc["edits"]) - 1


def _broken(doc, how):
    d = json.loads(json.dumps(doc))
    e = d["edits"]
    if how == "order":
        e[1], e[2] = e[2], e[1]
    elif how == "past":
        e[1]["cut_sample"] = e[1]["attack_sample"] + 1
        del e[1]["cut_s"]
    elif how == "outside":
        e[-1]["cut_sample"] = d["n_samples"] + 10
        del e[-1]["cut_s"]
    elif how == "nan":
        e[0]["shift_samples"] = float("nan")
    elif how == "disagree":
        e[0]["shift_ms"] += 5.0
    elif how == "schema":
        d["schema"] = "beatfix-edits/99"
    elif how == "fix":
        d["flams"] = "fix"
    elif how == "room":
        e[2]["shift_samples"] = e[1]["shift_samples"] - 40000  # far more than the decay room
        del e[2]["shift_ms"]
    return d


@pytest.mark.parametrize("how, needle", [
    ("order", "cuts must be in order"), ("past", "after the piece's attack"), ("outside", "outside the audio"),
    ("nan", "not finite"),
    ("disagree", "disagree"), ("schema", "unknown schema"), ("fix", "--flams fix"), ("room", "edit 2"),
])
def test_a_broken_list_is_one_line_and_writes_nothing(aligned, run_cli, tmp_path, how, needle):
    _, out, _ = aligned
    path = tmp_path / "e.json"
    path.write_text(json.dumps(_broken(json.loads((out / "edits.json").read_text()), how)))
    r = run_cli("render", path, "-o", tmp_path / "o")
    _clean_error(r, needle)
    assert not (tmp_path / "o").exists()


def test_stems_that_do_not_match_are_one_line(aligned, run_cli, tmp_path):
    folder, out, _ = aligned
    edits = out / "edits.json"
    # a listed stem is missing
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    (partial / "kick.wav").unlink()
    _clean_error(run_cli("render", edits, "-o", tmp_path / "o1", *_stems(partial)), "kick", "not given")
    # another sample rate
    odd = tmp_path / "odd"
    shutil.copytree(folder, odd)
    audio, sr = sf.read(str(odd / "kick.wav"))
    sf.write(str(odd / "kick.wav"), audio, 48000, subtype="PCM_24")
    _clean_error(run_cli("render", edits, "-o", tmp_path / "o2", *_stems(odd)), "48000 Hz")
    # another length
    sf.write(str(odd / "kick.wav"), audio[:-10], sr, subtype="PCM_24")
    _clean_error(run_cli("render", edits, "-o", tmp_path / "o3", *_stems(odd)), "not the same file")
    # listed files gone, none given
    doc = json.loads(edits.read_text())
    doc["stems"][0]["path"] = str(tmp_path / "gone.wav")
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(doc))
    _clean_error(run_cli("render", moved, "-o", tmp_path / "o4"), "no such file")
    _clean_error(run_cli("render", tmp_path / "none.json", "-o", tmp_path / "o5"), "no such file")
    (tmp_path / "bad.json").write_text("{")
    _clean_error(run_cli("render", tmp_path / "bad.json", "-o", tmp_path / "o6"), "not valid JSON")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 7))


def test_align_refuses_aaf_of_flac_before_any_work(small_session, run_cli, tmp_path):
    folder, truth = small_session
    flac = tmp_path / "flac"
    flac.mkdir()
    for p in _stems(folder):
        audio, sr = sf.read(str(p))
        sf.write(str(flac / (p.stem + ".flac")), audio, sr)
    r = run_cli("align", *sorted(flac.glob("*.flac")), "--bpm", truth["bpm"], "-o", tmp_path / "o",
                "--engine", "classic", "--daw", "aaf")
    _clean_error(r, "AAF links WAV or AIFF")
    assert not (tmp_path / "o").exists()
    _clean_error(run_cli("align", *_stems(folder), "-o", tmp_path / "o", "--daw", "pt"), "use rpp, aaf")


def test_render_help_has_examples(run_cli):
    r = run_cli("render", "--help")
    assert r.exit_code == 0 and "Examples" in r.stdout


def test_align_flams_fix_session_follows_each_drums_shifts_and_says_what_it_leaves_out(
        small_session, run_cli, tmp_path):
    folder, truth = small_session
    out = tmp_path / "fix"
    r = run_cli("align", *_stems(folder), "--bpm", truth["bpm"], "-o", out, "--engine", "classic",
                "--flams", "fix", "--daw", "rpp")
    assert r.exit_code == 0, r.stderr
    doc = json.loads((out / "edits.json").read_text())
    rpp = parse_rpp((out / "session.rpp").read_text())
    assert any("--flams fix" in line and "not in this session" in line for line in rpp["notes"])
    drum_of = {stem: drum for drum, stems in doc["drums"].items() for stem in stems}
    own_moves = 0
    for name, items in rpp["tracks"].items():
        for k, e in enumerate(doc["edits"]):
            shift = e["drum_shifts_samples"].get(drum_of.get(name), e["shift_samples"])
            (item,) = [i for i in items if i.name == f"{name} edit {k}"]
            assert item.position - item.source_offset == shift, (name, k)
            own_moves += shift != e["shift_samples"]
    assert own_moves > 0  # some drum really moved on its own
    _clean_error(run_cli("render", out / "edits.json", "-o", tmp_path / "again"), "--flams fix")


def test_a_dry_run_preview_edited_by_script_renders_as_align_would(small_session, run_cli, tmp_path):
    """The issue's round trip: --dry-run --json, a script changes one shift, beatfix render; unchanged, it is align."""
    from pathlib import Path

    folder, _ = small_session
    stems = sorted(str(p) for p in folder.iterdir() if p.suffix == ".wav")
    preview = run_cli("align", *stems, "--engine", "classic", "--dry-run", "--json", "-o", str(tmp_path / "none"))
    assert preview.exit_code == 0, preview.stderr
    plan = tmp_path / "plan.json"
    plan.write_text(preview.stdout)
    aligned = run_cli("align", *stems, "--engine", "classic", "-o", str(tmp_path / "aligned"))
    assert aligned.exit_code == 0, aligned.stderr
    rendered = run_cli("render", str(plan), "-o", str(tmp_path / "rendered"))
    assert rendered.exit_code == 0, rendered.stderr
    for name in (Path(s).name for s in stems):
        a, _ = sf.read(tmp_path / "aligned" / name, dtype="int32", always_2d=True)
        b, _ = sf.read(tmp_path / "rendered" / name, dtype="int32", always_2d=True)
        assert np.array_equal(a, b), name
    doc = json.loads(plan.read_text())
    moved = next(e for e in doc["edit_list"]["edits"] if e["shift_samples"] != 0)
    moved["shift_samples"] += 24
    del moved["shift_ms"]
    plan.write_text(json.dumps(doc))
    changed = run_cli("render", str(plan), "-o", str(tmp_path / "changed"))
    assert changed.exit_code == 0, changed.stderr
    name = Path(stems[0]).name
    a, _ = sf.read(tmp_path / "rendered" / name, dtype="int32", always_2d=True)
    b, _ = sf.read(tmp_path / "changed" / name, dtype="int32", always_2d=True)
    differs = np.flatnonzero(np.any(a != b, axis=1))
    # nothing changes before that piece's seam (its crossfade and fill reach at most 10 ms back)
    assert differs.size and differs.min() >= moved["cut_sample"] - int(0.010 * doc["edit_list"]["sample_rate"])
