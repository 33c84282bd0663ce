"""The synthetic session generator: its ground truth must be exact, its ranges as documented."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import typer
from scipy import signal
from typer.testing import CliRunner

from beatfix.audio_io import load_session
from beatfix.cli.synth import register
from beatfix.errors import InputError, ParameterError
from beatfix.roles import role_from_name
from beatfix.synth import (DRUMS, SessionSpec, complete_kit, drum_from_name, load_kit, perform, procedural_kit,
                           random_spec, render_pair, render_session, write_session)
from beatfix.synth.kits import ATTACK_THRESHOLD_DB
from beatfix.synth.mics import BLEED_DB, BLEED_EXTRA_MS, OVERHEAD_DELAY_MS, OWN_DELAY_MS, ROOM_DELAY_MS

SR = 44100
PEAK = 10 ** (-3 / 20)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kit():
    return procedural_kit(SR, 0)


@pytest.fixture(scope="module")
def spec():
    # Many channels, sloppy timing and frequent flams: the hardest case for exact truth.
    # Seed 8 plays all three toms, five written flams and an inverted snare-bottom mic.
    return SessionSpec(seed=8, sample_rate=SR, bpm=150.0, style="funk", duration_s=5.0, spread_ms=20.0,
                       n_channels=16, room_stereo=True, flam_rate=0.3)


@pytest.fixture(scope="module")
def pair(spec, kit):
    return render_pair(spec, kit)


@pytest.fixture(scope="module")
def session(pair):
    return pair[0]


def _samples(ms: float) -> int:
    return int(round(ms * SR / 1000))


def _predict(rendered, stem: str, channel: int, skip: int | None = None) -> np.ndarray:
    """A stem channel rebuilt from the truth alone: each hit's shot at onset + delay, at its gain."""
    truth = rendered.truth
    entry = next(c for c in truth["channels"] if c["stem"] == stem)
    out = np.zeros(truth["n_samples"])
    for hit in truth["hits"]:
        if hit["index"] == skip:
            continue
        feed = entry["drums"][hit["drum"]]
        start = hit["onset_sample"] + feed["delay_samples"][channel]
        shot = rendered.hit_shots[hit["index"]][: max(0, truth["n_samples"] - start)]
        gain = entry["polarity"] * 10 ** ((hit["level_db"] + feed["gain_db"][channel]) / 20)
        out[start:start + shot.size] += gain * shot
    return out


def _own_close_mics(truth) -> dict[str, list[dict]]:
    own: dict[str, list[dict]] = {}
    for entry in truth["channels"]:
        if entry["role"] in ("overhead", "room"):
            continue
        loudest = max(f["gain_db"][0] for f in entry["drums"].values())
        for drum, feed in entry["drums"].items():
            if feed["gain_db"][0] == loudest:
                own.setdefault(drum, []).append(entry)
    return own


def _best_lag(x: np.ndarray, template: np.ndarray, pos: int, max_lag: int) -> int:
    lags = np.arange(-max_lag, max_lag + 1)
    scores = [np.dot(x[pos + lag:pos + lag + template.size], template) for lag in lags]
    return int(lags[int(np.argmax(scores))])


# ----------------------------------------------------------------------------- exact truth


def test_session_covers_the_hard_cases(session):
    drums = {h["drum"] for h in session.truth["hits"]}
    assert {"tom_high", "tom_mid", "tom_low", "crash", "hat_open"} <= drums
    assert sum(h["deliberate_flam"] for h in session.truth["hits"]) >= 4
    assert [c["stem"] for c in session.truth["channels"] if c["polarity"] == -1] == ["snare_bottom"]
    assert session.truth["n_channels"] >= 14


def test_every_channel_is_rebuilt_exactly_from_truth(session):
    irs = {m.name: m.reverb_ir for m in session.mics.mics}
    for entry in session.truth["channels"]:
        for ch in range(entry["n_channels"]):
            expected = _predict(session, entry["stem"], ch)
            if entry["role"] == "room":
                # Rooms add their reverb tail after the direct sound (tap 0 of the IR is 1.0).
                ir = irs[entry["stem"]][ch]
                assert ir[0] == 1.0
                expected = signal.oaconvolve(expected, ir)[: expected.size]
            error = np.max(np.abs(session.stems[entry["stem"]][ch] - expected))
            assert error < 2e-5, (entry["stem"], ch, error)


def test_matched_filter_finds_every_hit_at_its_truth_onset(session):
    truth, window = session.truth, int(0.010 * SR)
    max_lag = _samples(2.0)
    own = _own_close_mics(truth)
    checked = 0
    for hit in truth["hits"]:
        template = session.hit_shots[hit["index"]][:window]
        for entry in own[hit["drum"]]:
            x = session.stems[entry["stem"]][0] * entry["polarity"]
            pos = hit["onset_sample"] + entry["drums"][hit["drum"]]["delay_samples"][0]
            # Every hit, isolated by removing the others as the truth describes them.
            alone = x - _predict(session, entry["stem"], 0, skip=hit["index"]) * entry["polarity"]
            assert _best_lag(alone, template, pos, max_lag) == 0
            if hit["velocity"] >= 0.35:
                # Audible strokes are found in the raw mic too, bleed and neighbours included.
                lag = _best_lag(x, template, pos, max_lag)
                assert abs(lag) / SR * 1000 < 0.05, (hit, entry["stem"], lag)
                checked += 1
    assert checked > 20


@pytest.mark.parametrize("drum", ["snare", "kick", "tom_low"])
def test_overhead_delays_match_audio(spec, kit, session, drum):
    # With only this drum playing, its strokes in each overhead sit at onset + that side's delay.
    solo = render_session(spec, kit, solo={drum})
    truth = solo.truth
    hits = [h for h in truth["hits"] if h["drum"] == drum and not h["deliberate_flam"] and h["velocity"] >= 0.5]
    overheads = [c for c in truth["channels"] if c["role"] == "overhead"]
    assert hits and overheads
    for hit in hits:
        template = solo.hit_shots[hit["index"]][: int(0.01 * SR)]
        for entry in overheads:
            for ch in range(entry["n_channels"]):
                pos = hit["onset_sample"] + entry["drums"][drum]["delay_samples"][ch]
                assert _best_lag(solo.stems[entry["stem"]][ch], template, pos, _samples(3.0)) == 0


def test_truth_is_consistent_and_json(session):
    truth = json.loads(json.dumps(session.truth))
    assert truth["sample_rate"] == SR and truth["n_samples"] == int(5.0 * SR)
    assert 0.2 <= truth["grid_offset_s"] <= 1.0
    for hit in truth["hits"]:
        assert hit["onset_sample"] == round(hit["performed_time_s"] * SR)
        assert hit["performed_time_s"] * SR == pytest.approx(hit["onset_sample"], abs=1e-6)
        assert 0.0 <= hit["velocity"] <= 1.0
    slots = np.array([h["slot"] for h in truth["hits"]])
    step_s = 60.0 / truth["bpm"] / truth["steps_per_beat"]
    swing = (slots % 2) * (2 * truth["swing_pct"] / 100 - 1) * step_s
    expected = truth["grid_offset_s"] + slots * step_s + swing
    assert np.allclose([h["grid_time_s"] for h in truth["hits"]], expected, atol=1e-9)


# ----------------------------------------------------------------------------- ideal render


def test_ideal_render_is_on_grid_and_differs_only_in_timing(pair):
    performed, ideal = pair
    p_hits, i_hits = performed.truth["hits"], ideal.truth["hits"]
    assert ideal.truth["ideal"] and not performed.truth["ideal"]
    for hit in i_hits:
        if hit["deliberate_flam"]:
            continue
        assert abs(hit["performed_time_s"] - hit["grid_time_s"]) <= 0.5 / SR + 1e-12
        assert hit["onset_sample"] == round(hit["grid_time_s"] * SR)
    key = lambda h: (h["slot"], h["drum"], h["velocity"], h["layer"], h["alternate"], h["ghost"])  # noqa: E731
    assert sorted(map(key, p_hits)) == sorted(map(key, i_hits))
    assert performed.truth["channels"] == ideal.truth["channels"]
    # Written flams stay flams: the main stroke is on the grid, the grace keeps its distance before it.
    pairs: dict[tuple[int, str], list[dict]] = {}
    for hit in i_hits:
        if hit["deliberate_flam"]:
            pairs.setdefault((hit["slot"], hit["drum"]), []).append(hit)
    assert pairs
    for grace, main in (sorted(p, key=lambda h: h["onset_sample"]) for p in pairs.values()):
        assert main["onset_sample"] == round(main["grid_time_s"] * SR)
        assert 15.0 - 0.05 <= (main["performed_time_s"] - grace["performed_time_s"]) * 1000 <= 35.0 + 0.05
    for entry in ideal.truth["channels"]:
        if entry["role"] != "room":
            assert np.max(np.abs(ideal.stems[entry["stem"]][0] - _predict(ideal, entry["stem"], 0))) < 1e-5


# ----------------------------------------------------------------------------- mics


def test_bleed_levels_measured_from_audio(spec, kit, session):
    truth = session.truth
    for drum in ("snare", "kick"):
        solo = render_session(spec, kit, solo={drum})
        own_entry = next(c for c in truth["channels"] if c["role"] == drum)
        own_peak = np.max(np.abs(solo.stems[own_entry["stem"]]))
        for entry in truth["channels"]:
            if entry["role"] in ("overhead", "room") or entry["role"] == drum:
                continue
            measured_db = 20 * np.log10(np.max(np.abs(solo.stems[entry["stem"]])) / own_peak)
            stated_db = entry["drums"][drum]["gain_db"][0] - own_entry["drums"][drum]["gain_db"][0]
            assert measured_db == pytest.approx(stated_db, abs=0.01)
            # Relative to the mic's own drum, which sits at 0 dB before normalisation.
            own_gain = max(f["gain_db"][0] for f in entry["drums"].values())
            assert BLEED_DB[0] - 1e-9 <= entry["drums"][drum]["gain_db"][0] - own_gain <= BLEED_DB[1] + 1e-9


def test_delays_are_within_their_ranges(session):
    for entry in session.truth["channels"]:
        feeds = entry["drums"]
        for feed in feeds.values():
            assert feed["delay_ms"] == pytest.approx([d * 1000 / SR for d in feed["delay_samples"]])
            for delay in feed["delay_samples"]:
                assert isinstance(delay, int) and delay >= 0
                if entry["role"] == "overhead":
                    assert _samples(OVERHEAD_DELAY_MS[0]) <= delay <= _samples(OVERHEAD_DELAY_MS[1])
                elif entry["role"] == "room":
                    assert _samples(ROOM_DELAY_MS[0]) <= delay <= _samples(ROOM_DELAY_MS[1])
        if entry["role"] not in ("overhead", "room"):
            loudest = max(f["gain_db"][0] for f in feeds.values())
            own = [f["delay_samples"][0] for f in feeds.values() if f["gain_db"][0] == loudest]
            assert 0 <= own[0] <= _samples(OWN_DELAY_MS[1])
            for f in feeds.values():
                if f["gain_db"][0] < loudest:
                    extra = f["delay_samples"][0] - own[0]
                    assert _samples(BLEED_EXTRA_MS[0]) <= extra <= _samples(BLEED_EXTRA_MS[1])
        if entry["role"] == "room":
            assert 0.3 <= entry["reverb"]["rt60_s"] <= 1.2


def test_stem_names_are_read_back_with_their_roles(session):
    as_session = session.as_session()
    for entry in session.truth["channels"]:
        assert role_from_name(entry["stem"]) == entry["role"] == session.roles[entry["stem"]]
        assert as_session.stem(entry["stem"]).role == entry["role"]
    assert session.truth["n_channels"] == sum(a.shape[0] for a in session.stems.values())


def test_random_sessions_stay_in_range_and_are_deterministic(kit):
    rng = np.random.default_rng(3)
    seen_channels = set()
    for _ in range(12):
        spec = random_spec(rng, sample_rates=(SR,), duration_s=3.0)
        rendered = render_session(spec, kit)
        n_channels = rendered.truth["n_channels"]
        seen_channels.add(n_channels)
        assert 2 <= n_channels <= spec.n_channels <= 16
        assert rendered.sample_rate == spec.sample_rate == SR
        assert 60 <= spec.bpm <= 200 and 3 <= spec.spread_ms <= 30
        for name, audio in rendered.stems.items():
            assert audio.dtype == np.float32 and audio.shape == (audio.shape[0], int(3.0 * SR))
            assert np.max(np.abs(audio)) == pytest.approx(PEAK, rel=1e-4)
            assert role_from_name(name) == rendered.roles[name]
        polarities = [c["polarity"] for c in rendered.truth["channels"]]
        assert polarities.count(-1) <= 1
    assert len(seen_channels) > 4
    again = render_session(spec, kit)
    assert json.dumps(again.truth) == json.dumps(rendered.truth)
    assert all(np.array_equal(again.stems[n], rendered.stems[n]) for n in rendered.stems)


def test_fixed_mic_names(kit):
    spec = SessionSpec(seed=2, sample_rate=SR, duration_s=3.0, overheads_stereo_file=True, room_stereo=True,
                       mics=("kick", "snare", "hh", "tom1", "overheads", "room"))
    rendered = render_session(spec, kit)
    assert [(n, a.shape[0]) for n, a in rendered.stems.items()] == [
        ("kick", 1), ("snare", 1), ("hh", 1), ("tom1", 1), ("overheads", 2), ("room", 2)]
    with pytest.raises(ParameterError, match="unknown mic"):
        render_session(SessionSpec(seed=2, sample_rate=SR, duration_s=3.0, mics=("kick", "bongo")), kit)


def test_idle_toms_are_miked_but_never_played(kit):
    mics = ("kick", "snare", "hh", "tom1", "tom2", "ft", "overheads", "room")
    spec = SessionSpec(seed=4, sample_rate=SR, duration_s=12.0, style="rock", n_toms=3, toms_played=1, mics=mics)
    rendered = render_session(spec, kit)
    played = {h["drum"] for h in rendered.truth["hits"]}
    toms_played = {d for d in played if d.startswith("tom")}
    assert len(toms_played) <= 1
    assert {"tom1", "tom2", "ft"} <= set(rendered.stems)
    # Every tom mic is there and carries bleed, even from the toms nobody hit.
    for name in ("tom1", "tom2", "ft"):
        assert np.max(np.abs(rendered.stems[name])) > 1e-3
    everything = render_session(SessionSpec(seed=4, sample_rate=SR, duration_s=12.0, style="rock", n_toms=3,
                                            mics=mics), kit)
    assert len({h["drum"] for h in everything.truth["hits"]} - played) >= 1
    with pytest.raises(ParameterError, match="toms played"):
        SessionSpec(seed=4, n_toms=2, toms_played=3)


def test_idle_tom_rate_leaves_the_other_draws_alone():
    plain = [random_spec(np.random.default_rng(8)) for _ in range(1)][0]
    rng = np.random.default_rng(8)
    idle = random_spec(rng, idle_tom_rate=1.0)
    assert idle.seed == plain.seed and idle.bpm == plain.bpm and idle.n_toms == plain.n_toms
    assert plain.toms_played is None
    assert idle.n_toms == 0 or 0 <= idle.toms_played < idle.n_toms
    with pytest.raises(ParameterError, match="idle tom rate"):
        random_spec(np.random.default_rng(8), idle_tom_rate=1.5)


def test_sample_rates_are_drawn_from_the_allowed_set():
    rng = np.random.default_rng(0)
    rates = {random_spec(rng).sample_rate for _ in range(60)}
    assert rates == {44100, 48000, 96000}


# ----------------------------------------------------------------------------- performance


def test_timing_spread_scales_with_spread_ms():
    stds = []
    for spread_ms in (3.0, 10.0, 30.0):
        perf = perform(np.random.default_rng(5), style="rock", bpm=100.0, duration_s=60.0, spread_ms=spread_ms,
                       sample_rate=SR, drums=DRUMS, flam_rate=0.0)
        dev_ms = np.array([(n.performed_time_s - n.grid_time_s) * 1000 for n in perf.notes])
        stds.append(dev_ms.std())
    assert stds[1] / stds[0] == pytest.approx(10 / 3, rel=0.1)
    assert stds[2] / stds[0] == pytest.approx(10, rel=0.1)
    assert stds[2] == pytest.approx(15.0, rel=0.35)  # spread is about two standard deviations


def test_flams_ghosts_and_styles():
    for style, steps in (("rock", 4), ("funk", 4), ("halftime", 4), ("shuffle", 3)):
        perf = perform(np.random.default_rng(1), style=style, bpm=110.0, duration_s=40.0, spread_ms=8.0,
                       sample_rate=SR, drums=DRUMS, flam_rate=0.2)
        assert perf.grid.steps_per_beat == steps
        assert 0.2 <= perf.grid.offset_s <= 1.0
        notes = perf.notes
        assert [n.performed_time_s for n in notes] == sorted(n.performed_time_s for n in notes)
        flams = [n for n in notes if n.deliberate_flam]
        assert flams
        for grace in flams:
            main = max((m for m in flams if m.slot == grace.slot and m.drum == grace.drum),
                       key=lambda m: m.performed_time_s)
            if grace is not main:
                assert 15.0 - 0.05 <= (main.performed_time_s - grace.performed_time_s) * 1000 <= 35.0 + 0.05
                assert grace.velocity < main.velocity and grace.flam and main.flam
                assert grace.grace and not main.grace
        assert all(n.drum == "snare" and n.velocity <= 0.4 for n in notes if n.ghost)
        assert {"kick", "snare"} <= {n.drum for n in notes}


# ----------------------------------------------------------------------------- kits


def test_procedural_shots_start_at_their_attack(kit):
    threshold = 10 ** (ATTACK_THRESHOLD_DB / 20)
    assert set(kit.drums) == set(DRUMS)
    for drum in kit.drums:
        assert len(kit.shots[drum]) >= 3 and len(kit.shots[drum][0]) >= 2
        for layer in kit.shots[drum]:
            for shot in layer:
                assert shot.dtype == np.float32 and np.max(np.abs(shot)) == pytest.approx(1.0)
                assert abs(shot[0]) > threshold


def test_load_kit_reads_a_folder_and_resamples(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(int(0.2 * 22050)) / 22050
    lead = np.zeros(300)
    for name, level in (("kick_v1", 0.2), ("kick_v2", 0.8), ("Snare 01", 0.5), ("snare_02", 0.9),
                        ("hh_closed", 0.4), ("ft", 0.5), ("notes", 0.5), ("snare_rim", 0.5)):
        body = level * np.sin(2 * np.pi * 120 * t) * np.exp(-t / 0.05) + 0.01 * level * rng.standard_normal(t.size)
        sf.write(tmp_path / f"{name}.wav", np.concatenate([lead, body]), 22050, subtype="PCM_24")
    (tmp_path / "readme.txt").write_text("not audio")
    loaded = load_kit(tmp_path, SR)
    assert loaded.sample_rate == SR and loaded.name == tmp_path.name
    assert set(loaded.drums) == {"kick", "snare", "hat", "tom_low"}
    assert len(loaded.shots["kick"]) == 2  # _v1 / _v2: two layers
    assert len(loaded.shots["snare"]) == 2  # no layer names: sorted by RMS
    shot = loaded.shots["kick"][0][0]
    assert shot.size == pytest.approx(0.2 * SR, rel=0.01)  # resampled, leading silence cut
    assert abs(shot[0]) > 10 ** (ATTACK_THRESHOLD_DB / 20)
    full = complete_kit(loaded, procedural_kit(SR, 0))
    assert set(full.drums) == set(DRUMS) and full.shots["kick"] is loaded.shots["kick"]


def test_load_kit_refuses_unusable_folders(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        load_kit(tmp_path / "missing", SR)
    with pytest.raises(InputError, match="no kick or snare"):
        load_kit(tmp_path, SR)
    sf.write(tmp_path / "clap.wav", np.ones(100) * 0.5, SR)
    sf.write(tmp_path / "kick.wav", np.ones(100) * 0.5, SR)
    with pytest.raises(InputError, match="no snare"):
        load_kit(tmp_path, SR)


def test_drum_names():
    names = {"kick_v1_2": "kick", "BD 01": "kick", "c3 - bass drum 1": "kick", "snare_top": "snare",
             "SD": "snare", "hh": "hat", "Closed HH": "hat", "hat_open_v1_1": "hat_open", "Open HH": "hat_open",
             "tom1": "tom_high", "Tom Mid": "tom_mid", "ft": "tom_low", "Pearl Tom Floor": "tom_low",
             "Ride Jazz": "ride", "crash_2": "crash", "Snare Rimshot": None, "Pedal HH": None, "Paiste Bell": None,
             "cowbell": None, "overheads": None}
    assert {n: drum_from_name(n) for n in names} == names


def test_held_out_kit_is_small_complete_and_loads():
    folder = REPO / "benchmarks" / "kits" / "fluidgm"
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1.5e6
    loaded = load_kit(folder, 48000)
    assert set(loaded.drums) == set(DRUMS)
    assert len(loaded.shots["snare"]) >= 2
    assert json.loads((folder / "kit.json").read_text())["licence"] == "MIT"


def test_kit_and_session_rates_must_match(kit):
    with pytest.raises(ParameterError, match="Hz"):
        render_session(SessionSpec(seed=1, sample_rate=48000, duration_s=3.0), kit)


# ----------------------------------------------------------------------------- files and CLI


def test_write_session_round_trip(tmp_path, session):
    paths = write_session(tmp_path / "s", session, fmt="FLAC", subtype="PCM_24")
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    assert {c["file"] for c in truth["channels"]} == {p.name for p in paths if p.suffix == ".flac"}
    loaded, _ = load_session([tmp_path / "s" / c["file"] for c in truth["channels"]])
    for stem in loaded.stems:
        assert stem.role == session.roles[stem.name]
        assert np.max(np.abs(stem.audio - session.stems[stem.name])) < 1e-6
    with pytest.raises(ParameterError):
        write_session(tmp_path / "t", session, fmt="FLAC", subtype="FLOAT")


def test_cli_writes_sessions_truth_and_ideal(tmp_path):
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keeps "synth" a subcommand, as in the real app
        pass

    out = tmp_path / "data"
    args = ["synth", str(out), "--sessions", "2", "--duration-s", "3", "--sample-rate", "44100",
            "--channels-max", "6", "--format", "flac", "--ideal", "--seed", "4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for i in range(2):
        folder = out / f"session_{i:04d}"
        for sub in (folder, folder / "ideal"):
            truth = json.loads((sub / "truth.json").read_text())
            assert 2 <= truth["n_channels"] <= 6 and truth["sample_rate"] == SR
            assert all((sub / c["file"]).exists() for c in truth["channels"])
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "not empty" in str(again.exception)
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--kit", str(tmp_path / "nokit")])
    assert isinstance(bad.exception, InputError)
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--duration-s", "1"])
    assert isinstance(bad.exception, ParameterError)
    assert not (tmp_path / "x").exists()  # nothing is written before every option is checked
    help_text = CliRunner().invoke(app, ["synth", "--help"]).output
    assert "Examples" in help_text and "--ideal" in help_text
