"""Musical time: tempo maps in and out, following the drummer, feel, and the grid-fit refusal.

Sessions are built by tests/session_fixtures.py (a generator independent of
beatfix.synth) with their slots laid on a known TempoMap, so every hit's true
slot time is known.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from beatfix.analyse import analyse_session
from beatfix.errors import InputError, ParameterError
from beatfix.grid import Grid, MapGrid
from beatfix.midi_io import read_tempo_map, tempo_map_midi_bytes
from beatfix.tempomap import Meter, TempoMap

from session_fixtures import Spec, make_session, shuffle_pattern


def _beats(bpm_of_beat, n: int, start_s: float = 0.5) -> list[float]:
    t, out = start_s, []
    for b in range(n):
        out.append(t)
        t += 60.0 / bpm_of_beat(b)
    return out


def _change_map() -> TempoMap:
    return TempoMap.from_beats(_beats(lambda b: 120.0 if b < 32 else 100.0, 80))


def _breathing_map() -> TempoMap:
    return TempoMap.from_beats(_beats(lambda b: 120.0 * (1 + 0.05 * np.sin(2 * np.pi * b / 24)), 80))


def _slot_errors_ms(analysis, synth, true_grid) -> np.ndarray:
    """For every hit: its assigned slot's time on the analysis grid minus its true slot's time."""
    events = [e for e in synth.truth.events if e.kind != "grace"]
    times = np.array([e.time_s for e in events])
    out = []
    for h in analysis.hits:
        e = events[int(np.argmin(np.abs(times - h.time_s)))]
        out.append((analysis.grid.slot_time(h.slot) - true_grid.slot_time(e.slot)) * 1000.0)
    return np.abs(np.array(out))


# ----------------------------------------------------------------------------- the map and its grid


def test_constant_map_grid_is_the_fixed_grid():
    fixed = Grid(120.0, 0.1, 4, 58.0)
    mapped = MapGrid(TempoMap.constant(120.0, offset_s=0.1), 4, 58.0, (0.0, 30.0))
    times = np.random.default_rng(0).uniform(-20, 60, 2000)  # inside and far outside the laid span
    assert np.array_equal(fixed.nearest_slot(times), mapped.nearest_slot(times))
    slots = np.arange(-100, 600)
    assert np.max(np.abs(fixed.slot_time(slots) - mapped.slot_time(slots))) < 1e-9


def test_meters_lay_their_own_slots_and_label_bars():
    # 4 bars of 4/4, 2 of 7/8, then 6/8: at 1/8 a 7/8 bar has 7 slots and a 6/8 bar 6
    tm = TempoMap(np.array([0.0, 1.0]), np.array([1.0, 1.5]), (Meter(0.0, 4, 4), Meter(16.0, 7, 8), Meter(23.0, 6, 8)))
    grid = MapGrid(tm, 2.0, 50.0, (0.0, 30.0))
    bar5 = grid.nearest_slot(tm.time_at(16.0))
    bar7 = grid.nearest_slot(tm.time_at(23.0))
    assert bar7 - bar5 == 14  # two bars of 7 eighths
    assert tm.label(16.0) == "5|1|000" and tm.label(23.0) == "7|1|000"
    assert tm.bar_beat(23.0 + 1.5) == (7, 2, 0.0)  # 6/8 counts dotted quarters
    assert tm.label(-1.0) == "0|4|000"  # a count-in bar before bar 1


def test_segments_name_ramps_changes_and_meters():
    ramp = TempoMap.from_beats(_beats(lambda b: 100.0 + b, 32))
    segs = ramp.segments()
    assert len(segs) == 1 and segs[0]["kind"] == "ramp" and segs[0]["bpm_start"] == pytest.approx(100, abs=0.01)
    change = _change_map().segments()
    assert [s["kind"] for s in change[:2]] == ["constant", "constant"]
    assert change[0]["bpm_start"] == pytest.approx(120) and change[1]["bpm_start"] == pytest.approx(100)


def test_bad_maps_are_refused():
    with pytest.raises(ParameterError):
        TempoMap(np.array([0.0, 1.0, 1.0]), np.array([0.0, 0.5, 1.0]))
    with pytest.raises(ParameterError):
        Meter(0.0, 5, 3)


# ----------------------------------------------------------------------------- MIDI and CSV


def test_midi_tempo_map_round_trips_within_a_tenth_of_a_ms(tmp_path):
    # breathing, a count-in (bar 1 at 1.3 s), 7/8 from bar 11 and back to 4/4
    beats = _beats(lambda b: 120.0 * (1 + 0.04 * np.sin(b / 9)), 120, start_s=0.3)
    tm = TempoMap.from_beats(beats, meters=[(0, 4, 4), (40, 7, 8), (68, 4, 4)], first_beat=2)
    path = tmp_path / "map.mid"
    path.write_bytes(tempo_map_midi_bytes(tm, end_s=70.0))
    back = read_tempo_map(path)
    q = np.arange(-2.0, 100.0, 0.25)
    assert np.max(np.abs(back.time_at(q) - tm.time_at(q))) < 1e-4
    assert [(m.position_q, m.label) for m in back.meters] == [(m.position_q, m.label) for m in tm.meters]


def test_a_daw_smf_with_bar_1_at_time_0(tmp_path):
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=600000, time=480 * 24))  # 120 -> 100 at bar 9
    mid.tracks.append(track)
    mid.save(tmp_path / "daw.mid")
    tm = read_tempo_map(tmp_path / "daw.mid")
    assert tm.time_at(24.0) == pytest.approx(12.0)
    assert tm.time_at(27.0) == pytest.approx(13.8)
    assert tm.label(24.0) == "9|1|000" and tm.meters[0].label == "3/4"


def test_csv_of_beats(tmp_path):
    path = tmp_path / "beats.csv"
    path.write_text("time_s,meter\n0.5,4/4\n1.0\n1.5\n2.0\n2.5,3/4\n3.0\n3.5\n4.0,6/8\n4.75\n")
    tm = read_tempo_map(path)
    assert tm.label(4.0) == "2|1|000"  # bar 2 in 3/4
    assert tm.time_at(7.0) == pytest.approx(4.0)  # bar 3 (6/8) starts at 4 + 3 = 7 quarters
    assert tm.time_at(8.5) == pytest.approx(4.75)  # one dotted quarter later
    bad = tmp_path / "bad.csv"
    bad.write_text("0.5\nsoon\n")
    with pytest.raises(InputError, match="line 2"):
        read_tempo_map(bad)


# ----------------------------------------------------------------------------- following the drummer


@pytest.mark.parametrize("make_map", [_breathing_map, _change_map], ids=["breathing", "change"])
def test_follow_mode_puts_hits_on_the_drummers_slots(make_map):
    tm = make_map()
    synth = make_session(Spec(bars=16, tempo_map=tm, jitter_ms=6.0, seed=3))
    analysis = analyse_session(synth.session)  # no --bpm, no map
    assert analysis.tempo_source == "follow" and isinstance(analysis.grid, MapGrid)
    errors = _slot_errors_ms(analysis, synth, MapGrid(tm, 4, 50.0, (0.0, 60.0)))
    assert np.percentile(errors, 95) < 10.0  # the smoothed curve, not a wrong slot (a step is 125-150 ms)
    assert np.mean(errors > 40.0) == 0.0
    assert analysis.fit.fits


def test_follow_mode_finds_the_sudden_change():
    synth = make_session(Spec(bars=16, tempo_map=_change_map(), jitter_ms=4.0, seed=4))
    analysis = analyse_session(synth.session)
    assert len(analysis.tempo_changes_s) == 1
    assert analysis.tempo_changes_s[0] == pytest.approx(0.5 + 32 * 0.5, abs=0.6)  # within a beat of bar 9


def test_a_steady_session_keeps_the_fixed_grid():
    synth = make_session(Spec(bars=8, seed=5))
    analysis = analyse_session(synth.session)
    assert analysis.tempo_source == "estimated" and isinstance(analysis.grid, Grid)


def test_a_given_tempo_map_is_the_grid():
    tm = _change_map()
    synth = make_session(Spec(bars=16, tempo_map=tm, jitter_ms=8.0, seed=6))
    analysis = analyse_session(synth.session, tempo_map=tm)
    assert analysis.tempo_source == "map"
    errors = _slot_errors_ms(analysis, synth, MapGrid(tm, 4, 50.0, (0.0, 60.0)))
    assert np.max(errors) < 1e-6  # every hit on its own true slot


# ----------------------------------------------------------------------------- feel


def test_a_shuffle_is_a_triplet_feel_and_grid_auto_takes_it():
    synth = make_session(Spec(bars=8, steps_per_beat=3, pattern=shuffle_pattern(8), seed=7))
    analysis = analyse_session(synth.session, bpm=120.0, grid="auto", swing_pct=None)
    assert analysis.feel.kind == "triplet" and analysis.grid_spec == "1/8T"
    assert analysis.fit.fits


def test_swung_sixteenths_measure_their_swing():
    synth = make_session(Spec(bars=8, tempo_map=TempoMap.constant(100.0, offset_s=0.4), swing_pct=58.0,
                              sixteenth_hats=True, seed=8))
    analysis = analyse_session(synth.session, bpm=100.0, grid="auto", swing_pct=None)
    assert analysis.feel.kind == "swing" and analysis.grid_spec == "1/16"
    assert analysis.grid.swing_pct == pytest.approx(58.0, abs=2.0)


# ----------------------------------------------------------------------------- never worse


@pytest.mark.parametrize("bpm", [123.6, 116.4, 180.0], ids=["+3%", "-3%", "x1.5"])
def test_a_wrong_bpm_is_caught(bpm):
    synth = make_session(Spec(bars=8, seed=9))
    analysis = analyse_session(synth.session, bpm=bpm)
    assert not analysis.fit.fits
    if bpm == 180.0:
        assert "--bpm 120.0" in analysis.fit.suggestion


def test_straight_grid_under_a_shuffle_is_caught_with_the_grid_to_pass():
    synth = make_session(Spec(bars=8, steps_per_beat=3, pattern=shuffle_pattern(8), seed=7))
    analysis = analyse_session(synth.session, bpm=120.0)
    assert not analysis.fit.fits
    assert "--grid 1/8T" in analysis.fit.suggestion or "--grid 1/8 --swing" in analysis.fit.suggestion


def test_a_sloppy_drummer_on_the_right_grid_is_not_refused():
    synth = make_session(Spec(bars=10, bpm=150.0, jitter_ms=25.0, seed=5))
    assert analyse_session(synth.session, bpm=150.0).fit.fits


def _write(session, folder, extra=None):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem in session.stems:
        p = folder / f"{stem.name}.wav"
        sf.write(p, stem.audio.T, session.sample_rate, subtype="FLOAT")
        paths.append(p)
    for name, audio in (extra or {}).items():
        p = folder / f"{name}.wav"
        sf.write(p, audio, session.sample_rate, subtype="FLOAT")
        paths.append(p)
    return paths


def test_align_refuses_a_wrong_bpm_and_writes_nothing(run_cli, tmp_path):
    synth = make_session(Spec(bars=8, seed=9))
    paths = _write(synth.session, tmp_path / "in")
    out = tmp_path / "out"
    res = run_cli("align", *map(str, paths), "--bpm", "123.6", "-o", str(out), "--engine", "classic")
    assert res.exit_code == 1 and not out.exists()
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("beatfix: ")]
    assert len(lines) == 1 and lines[0].startswith("error: the grid does not fit") and "--force" in lines[0]
    forced = run_cli("align", *map(str, paths), "--bpm", "123.6", "-o", str(out), "--engine", "classic", "--force")
    assert forced.exit_code == 0 and (out / "edits.json").exists()


# ----------------------------------------------------------------------------- clicks and MIDI out


def _click(sample_rate: int, n: int, bpm: float, start_s: float, length: int) -> np.ndarray:
    x = np.zeros(length)
    t = np.arange(int(0.02 * sample_rate)) / sample_rate
    for i in range(n):
        f, g = (1500.0, 1.0) if i % 4 == 0 else (1000.0, 0.6)
        blip = g * np.sin(2 * np.pi * f * t) * np.exp(-t / 0.003)
        s = int(round((start_s + i * 60.0 / bpm) * sample_rate))
        if s + blip.size <= length:
            x[s: s + blip.size] += blip
    return (x + np.random.default_rng(1).standard_normal(length) * 1e-5).astype(np.float32)


def test_a_click_among_the_stems_is_left_alone_and_can_be_the_grid(run_cli, tmp_path):
    synth = make_session(Spec(bars=8, seed=10))
    sr, n = synth.session.sample_rate, synth.session.n_samples
    click = _click(sr, 32, 120.0, synth.truth.offset_s, n)
    paths = _write(synth.session, tmp_path / "in", {"Audio 9": click})  # a name that says nothing
    out = tmp_path / "out"
    res = run_cli("align", *map(str, paths), "--click", str(paths[-1]), "-o", str(out), "--engine", "classic")
    assert res.exit_code == 0, res.stderr
    assert "Audio 9: a click track (by its content), written unchanged" in res.stderr
    written, _ = sf.read(out / "Audio 9.wav", dtype="float32")
    assert np.array_equal(written, click)
    doc = json.loads((out / "edits.json").read_text())
    assert "Audio 9" not in {s["name"] for s in doc["stems"]}


def test_report_writes_the_tempo_map_and_the_hits_as_midi(run_cli, tmp_path):
    import mido

    synth = make_session(Spec(bars=16, tempo_map=_change_map(), jitter_ms=4.0, seed=4))
    paths = _write(synth.session, tmp_path / "in")
    res = run_cli("report", *map(str, paths), "--json", "--engine", "classic",
                  "--tempo-map-out", str(tmp_path / "map.mid"), "--midi", str(tmp_path / "hits.mid"))
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["tempo_map"]["source"] == "follow" and len(doc["tempo_map"]["changes_s"]) == 1
    back = read_tempo_map(tmp_path / "map.mid")
    assert back.bpm_at(2.0) == pytest.approx(120.0, rel=0.03) and back.bpm_at(25.0) == pytest.approx(100.0, rel=0.03)
    hits = mido.MidiFile(tmp_path / "hits.mid")
    names = [t.name for t in hits.tracks]
    assert names == ["tempo map", "played", "on grid"]
    notes = [m for m in hits.tracks[1] if m.type == "note_on"]
    assert len(notes) == sum(len(h["channels"]) for h in doc["hits"])
    assert {m.note for m in notes} <= {36, 38, 42, 48} and all(m.channel == 9 for m in notes)
