"""Resumable batches: a batch started again does only what is not done, checked against each session's
manifest (inputs' sha256, options, version); and batches listed in CSV or JSON."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace

import pytest
import soundfile as sf

import beatfix
import beatfix.pipeline.session as session_module
from batch_fixtures import CORRUPT, GOOD, make_batch, options
from beatfix.errors import InputError
from beatfix.pipeline.resume import MANIFEST
from beatfix.pipeline.sessions import read_sessions


@pytest.fixture
def analysed(monkeypatch):
    """The names of the sessions actually analysed (jobs=1 runs in this process)."""
    names = []
    real = session_module._load_and_analyse

    def counting(paths, opts, progress):
        names.append(paths[0].parent.name)
        return real(paths, opts, progress)

    monkeypatch.setattr(session_module, "_load_and_analyse", counting)
    return names


def _stamps(out):
    """(inode, mtime_ns) of every output file: unchanged when a session is skipped."""
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(out.glob("*/*"))}


class Interrupt(KeyboardInterrupt):
    pass


def test_an_interrupted_batch_resumes_without_repeating_work(small_session, tmp_path, analysed):
    folder, truth = small_session
    sessions = make_batch(folder, tmp_path)
    out = tmp_path / "out"

    def ctrl_c_in_second_session(session, stage, fraction):
        if session == GOOD[1] and stage == "judge":
            raise Interrupt()

    with pytest.raises(Interrupt):
        beatfix.align_batch(sessions, out, options(truth), progress=ctrl_c_in_second_session)
    assert analysed == [GOOD[0], GOOD[1]]
    assert (out / GOOD[0] / MANIFEST).is_file() and not (out / GOOD[1]).exists()

    analysed.clear()
    first = _stamps(out)
    outcomes = beatfix.align_batch(sessions, out, options(truth))  # the same command again, no --force
    # only the interrupted and the unstarted sessions are analysed (the corrupt one fails at loading)
    assert analysed == [GOOD[1], GOOD[2], CORRUPT]
    assert [(o.session, o.ok, o.skipped) for o in outcomes] == [
        (GOOD[0], True, True), (GOOD[1], True, False), (GOOD[2], True, False), (CORRUPT, False, False)]
    assert all(v == _stamps(out)[k] for k, v in first.items())  # session a's files untouched

    analysed.clear()
    done = _stamps(out)
    again = beatfix.align_batch(sessions, out, options(truth))
    assert analysed == [CORRUPT]  # a failed session has no manifest: it is tried again, the rest skipped
    assert _stamps(out) == done
    # a skipped session reports what it reported when it ran
    for before, after in zip(outcomes[:3], again[:3]):
        assert after.skipped and after.document() == {**before.document(), "resumed": True}


def test_a_changed_input_or_option_redoes_only_what_it_touches(small_session, tmp_path, analysed):
    folder, truth = small_session
    sessions = make_batch(folder, tmp_path)
    shutil.rmtree(sessions / CORRUPT)
    out = tmp_path / "out"
    beatfix.align_batch(sessions, out, options(truth))
    assert analysed == list(GOOD)

    # one sample of one stem changed, same size: only the checksum can tell
    analysed.clear()
    kick = sessions / GOOD[2] / "kick.wav"
    audio, rate = sf.read(str(kick), always_2d=True)
    info = sf.info(str(kick))
    audio[1000, 0] += 0.01
    size = kick.stat().st_size
    sf.write(str(kick), audio, rate, subtype=info.subtype)
    assert kick.stat().st_size == size
    outcomes = beatfix.align_batch(sessions, out, options(truth))
    assert analysed == [GOOD[2]]
    assert [o.skipped for o in outcomes] == [True, True, False]
    recorded = {i["file"]: i["sha256"] for i in json.loads((out / GOOD[2] / MANIFEST).read_text())["inputs"]}
    assert recorded["kick.wav"] == hashlib.sha256(kick.read_bytes()).hexdigest()

    # another option: every session again, and the outputs follow it
    analysed.clear()
    changed = beatfix.AlignOptions(bpm=truth["bpm"], engine="classic", strength_pct=50.0)
    outcomes = beatfix.align_batch(sessions, out, changed)
    assert analysed == list(GOOD) and not any(o.skipped for o in outcomes)
    edits = json.loads((out / GOOD[0] / "edits.json").read_text())
    assert edits["options"]["strength_pct"] == 50.0

    # --force does not change what is written: still complete
    analysed.clear()
    beatfix.align_batch(sessions, out, replace(changed, force=True))
    assert analysed == []


def test_a_folder_that_is_no_batch_output_is_still_refused(small_session, tmp_path):
    folder, truth = small_session
    sessions = make_batch(folder, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    from beatfix.errors import OutputError

    with pytest.raises(OutputError, match="not empty"):
        beatfix.align_batch(sessions, out, options(truth))


def test_csv_and_json_lists_give_each_session_its_own_stems_roles_and_tempo(small_session, tmp_path):
    folder, truth = small_session
    sessions = make_batch(folder, tmp_path)
    listing = tmp_path / "list.csv"
    stems_b = ";".join(f"sessions/{GOOD[1]}/{p.name}" for p in sorted((sessions / GOOD[1]).glob("*.wav")))
    listing.write_text("session,stems,bpm,roles,tempo_map\n"
                       f"one,sessions/{GOOD[0]},{truth['bpm']},,\n"
                       f"two,{stems_b},{truth['bpm'] * 2},oh_l.wav=room,\n"
                       f"three,sessions/{GOOD[2]},1000,,\n"
                       f"four,sessions/{GOOD[2]},,,maps/none.mid\n")
    outcomes = beatfix.align_batch(listing, tmp_path / "out", beatfix.AlignOptions(engine="classic"))
    by_name = {o.session: o for o in outcomes}
    assert by_name["one"].ok and by_name["one"].result.summary["tempo_bpm"] == pytest.approx(truth["bpm"])
    assert by_name["two"].ok and by_name["two"].result.summary["tempo_bpm"] == pytest.approx(truth["bpm"] * 2)
    assert not by_name["three"].ok and "--bpm" in by_name["three"].error  # a bad value fails its session only
    assert by_name["four"].error == f"tempo map {tmp_path / 'maps' / 'none.mid'}: no such file"
    assert (tmp_path / "out" / "one" / "kick.wav").is_file()
    recorded = json.loads((tmp_path / "out" / "two" / "edits.json").read_text())["options"]
    assert recorded["roles"] == {"oh_l.wav": "room"} and recorded["bpm"] == pytest.approx(truth["bpm"] * 2)

    doc = {"sessions": [{"session": "x", "stems": [f"sessions/{GOOD[0]}/kick.wav", f"sessions/{GOOD[0]}/oh_l.wav"],
                         "roles": {"oh_l.wav": "overhead"}, "tempo_map": "maps/x.mid"}]}
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps(doc))
    [x] = read_sessions(listing, beatfix.AlignOptions())
    assert [p.name for p in x.stems] == ["kick.wav", "oh_l.wav"] and x.options.bpm is None
    assert x.options.tempo_map == tmp_path / "maps" / "x.mid" and dict(x.options.roles) == {"oh_l.wav": "overhead"}
    assert x.inputs()[-1] == tmp_path / "maps" / "x.mid"  # a tempo map is an input: its change redoes the session


@pytest.mark.parametrize("text, message", [
    ("session,stems\na,x\na,y\n", "listed twice"),
    ("session,files\na,x\n", "header must name session and stems"),
    ("session,stems\n../up,x\n", "usable as a folder name"),
    ("session,stems,roles\na,x,kickwav\n", "use FILE=ROLE"),
    ("session,stems\n", "lists no sessions"),
])
def test_a_bad_csv_list_is_one_clear_error(tmp_path, text, message):
    listing = tmp_path / "list.csv"
    listing.write_text(text)
    with pytest.raises(InputError, match=message):
        read_sessions(listing, beatfix.AlignOptions())


def test_a_bad_json_list_is_one_clear_error(tmp_path):
    listing = tmp_path / "list.json"
    listing.write_text('{"sessions": [{"session": "a", "stems": "x", "tempo": 120}]}')
    with pytest.raises(InputError, match="unknown field 'tempo'"):
        read_sessions(listing, beatfix.AlignOptions())
    listing.write_text("{not json")
    with pytest.raises(InputError, match="cannot read it as JSON"):
        read_sessions(listing, beatfix.AlignOptions())
