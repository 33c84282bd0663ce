"""Musical time in the synthesizer: tempo curves, meters, feels and count-ins, with an exact true tempo map.

Every truth onset must sit on the true map's slot plus the timing model's
deviation, the map must survive a MIDI file, old specs must render exactly
as before, and the evaluation must measure against the map's slots.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from beatfix import evaluation as ev
from beatfix.errors import ParameterError
from beatfix.grid import Grid, MapGrid
from beatfix.midi_io import read_tempo_map
from beatfix.synth import SessionSpec, procedural_kit, random_spec, render_pair, render_session, write_session
from beatfix.synth.timeline import truth_tempo_map

SR = 44100


@pytest.fixture(scope="module")
def kit():
    return procedural_kit(SR, 0)


def _spec(**kw) -> SessionSpec:
    args = dict(seed=5, sample_rate=SR, bpm=120.0, style="rock", duration_s=10.0, spread_ms=14.0, n_channels=6,
                flam_rate=0.1)
    args.update(kw)
    return SessionSpec(**args)


CASES = {
    "ramp": dict(tempo_curve="ramp", tempo_to_bpm=144.0, tempo_change_bar=2, tempo_ramp_bars=3),
    "change": dict(tempo_curve="change", tempo_to_bpm=100.0, tempo_change_bar=3),
    "meter_change": dict(meter="4/4", meter_change="7/8", meter_change_bar=3),
    "swing": dict(feel="swing", swing_pct=58.0, bpm=96.0),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, kit):
    spec = _spec(**CASES[request.param])
    performed, ideal = render_pair(spec, kit)
    return request.param, spec, performed, ideal


def _map_grid(truth) -> MapGrid:
    return MapGrid(truth_tempo_map(truth), steps_per_beat=truth["steps_per_beat"], swing_pct=truth["swing_pct"],
                   span_s=(0.0, truth["duration_s"]))


def test_truth_onsets_are_the_true_maps_slots_plus_the_timing_model(case):
    name, spec, performed, ideal = case
    truth = performed.truth
    grid = _map_grid(truth)
    hits = truth["hits"]
    slots = np.array([h["slot"] for h in hits])
    grid_s = np.array([h["grid_time_s"] for h in hits])
    # grid_time_s is the true map's slot time, to well under a sample
    assert np.max(np.abs(grid.slot_time(slots) - grid_s)) * SR < 1.0
    # performed = slot time + a deviation the timing model allows (inside 0.45 of the local step)
    mains = [h for h in hits if not h["grace"]]
    dev_s = np.array([h["performed_time_s"] - h["grid_time_s"] for h in mains])
    limit_s = 0.45 * np.asarray(grid.step_at(np.array([h["grid_time_s"] for h in mains])))
    assert np.all(np.abs(dev_s) <= limit_s + 1.0 / SR)
    assert np.std(dev_s) * 1000.0 > 2.0  # really humanized
    for h in hits:
        assert h["onset_sample"] == round(h["performed_time_s"] * SR)
    # the ideal render puts every main stroke on its slot, to the sample
    for h in ideal.truth["hits"]:
        if not h["grace"]:
            assert abs(h["performed_time_s"] - h["grid_time_s"]) <= 0.5 / SR + 1e-12
    assert isinstance(performed.performance.grid, MapGrid)


def test_the_map_is_the_curve_asked_for(case):
    name, spec, performed, _ = case
    truth = performed.truth
    tm = truth_tempo_map(truth)
    bar = lambda n: float(tm.time_at(4.0 * (n - 1)))  # noqa: E731 - bars of 4/4 before any meter change
    if name == "ramp":
        assert tm.bpm_at(bar(1) + 0.1) == pytest.approx(120.0, rel=0.01)
        assert tm.bpm_at(bar(5) + 0.1) == pytest.approx(144.0, rel=0.001)  # held after bars 2-4
        mid = tm.bpm_at(bar(3) + 0.05)
        assert 125.0 < mid < 140.0
    elif name == "change":
        assert tm.bpm_at(bar(3) - 0.01) == pytest.approx(120.0)
        assert tm.bpm_at(bar(3) + 0.01) == pytest.approx(100.0)
        # bar 3 starts exactly two 4/4 bars at 120 after bar 1
        assert bar(3) - bar(1) == pytest.approx(4.0, abs=1e-9)
    elif name == "meter_change":
        assert truth["meter"] == ["4/4", "7/8"]
        assert [m.label for m in tm.meters] == ["4/4", "7/8"] and tm.meters[1].position_q == 8.0
        # a 7/8 bar is 14 sixteenths: slots of bar 4 start 14 after bar 3's
        grid = _map_grid(truth)
        assert grid.label(32) == "3|1|000" and grid.label(46) == "4|1|000"
    else:
        assert truth["swing_pct"] == 58.0 and truth["grid_resolution"] == "1/16"
        grid = _map_grid(truth)
        step = 60.0 / 96.0 / 4
        assert grid.slot_time(1) - grid.slot_time(0) == pytest.approx(1.16 * step)


def test_grooves_put_the_kick_on_one_and_the_snare_on_the_backbeats(kit):
    expected = {"3/4": ({"1"}, {"2", "3"}), "5/4": ({"1", "4"}, {"3", "5"}), "6/8": ({"1"}, {"2"}),
                "7/8": ({"1", "5"}, {"3", "7"}), "12/8": ({"1", "3"}, {"2", "4"})}
    for meter, (kick_beats, snare_beats) in expected.items():
        performed = render_session(_spec(meter=meter, duration_s=8.0, flam_rate=0.0, bpm=80.0 if "12" in meter
                                         else 120.0), kit)
        grid = _map_grid(performed.truth)
        labels = {}
        for h in performed.truth["hits"]:
            if h["drum"] in ("kick", "snare") and not h["ghost"]:
                labels.setdefault(h["drum"], []).append(grid.label(h["slot"]).split("|"))
        bars = {int(b) for b, _, _ in labels["kick"]}
        # every bar has a kick on its first beat
        downbeats = {int(b) for b, beat, tick in labels["kick"] if beat == "1" and tick == "000"}
        assert downbeats >= bars - {max(bars)}, meter
        on_beat = {beat for _, beat, tick in labels["snare"] if tick == "000"}
        assert snare_beats <= on_beat, meter
        assert {beat for _, beat, tick in labels["kick"] if tick == "000"} >= kick_beats, meter


def test_count_in_is_a_bar_of_hats_before_bar_one(kit):
    performed = render_session(_spec(count_in_bars=1, style="shuffle", bpm=100.0), kit)
    truth = performed.truth
    grid = _map_grid(truth)
    before = [h for h in truth["hits"] if h["slot"] < 0]
    assert [h["drum"] for h in before] == ["hat"] * 4
    assert [h["slot"] for h in before] == [-12, -9, -6, -3]  # the four beats of bar 0 on a triplet grid
    assert [grid.label(h["slot"]) for h in before] == ["0|1|000", "0|2|000", "0|3|000", "0|4|000"]
    assert all(h["grid_time_s"] < truth["grid_offset_s"] for h in before)
    assert truth["grid_offset_s"] - before[0]["grid_time_s"] == pytest.approx(4 * 0.6)
    assert truth["count_in_bars"] == 1 and truth["grid_resolution"] == "1/8T"


def test_tempo_map_mid_is_read_back_within_a_tenth_of_a_ms(tmp_path, kit):
    spec = _spec(tempo_curve="breathing", breathing_pct=5.0, meter="3/4", meter_change="5/4", meter_change_bar=4,
                 count_in_bars=1)
    rendered = render_session(spec, kit)
    write_session(tmp_path, rendered)
    truth = json.loads((tmp_path / "truth.json").read_text())
    true_map, back = truth_tempo_map(truth), read_tempo_map(tmp_path / "tempo_map.mid")
    beats = np.arange(true_map.positions_q[0], float(true_map.position_at(truth["duration_s"])), 0.5)
    assert np.max(np.abs(back.time_at(beats) - true_map.time_at(beats))) * 1000.0 < 0.1
    assert [(m.position_q, m.label) for m in back.meters] == [(0.0, "3/4"), (9.0, "5/4")]
    # the breathing is really there: the tempo moves by several percent
    bpm = true_map.bpm_at(np.linspace(1.0, 9.0, 50))
    assert 100.0 * (bpm.max() - bpm.min()) / 120.0 > 3.0 and np.all(np.abs(bpm / 120.0 - 1.0) <= 0.05 + 1e-9)


# Hashes of these specs' stems and truth (all but its "spec" entry, which lists the new fields), rendered by
# the synthesizer before musical time existed (commit f5074a0).
OLD_SPECS = [
    (dict(seed=8, sample_rate=SR, bpm=150.0, style="funk", duration_s=4.0, spread_ms=20.0, n_channels=10,
          flam_rate=0.3), "a428bedbff3e92821b783b5969c8df41ebed2f4878e27d0fa67bf9a1e16fd60e"),
    (dict(seed=3, sample_rate=SR, bpm=92.0, style="shuffle", duration_s=4.0, spread_ms=12.0, n_channels=6),
     "2d34e375ab7fb12eddeab341b98cd351651621e807bdd2882bac28e8778d2a84"),
    (dict(seed=21, sample_rate=SR, bpm=104.0, style="funk", duration_s=4.0, spread_ms=10.0, n_channels=5),
     "fc02bede93cba2d8dcee9925ecf66d2569025c9235ae84128540a4a332700345"),  # swung 55.6 %
]


@pytest.mark.parametrize("kwargs,digest", OLD_SPECS)
def test_old_specs_render_bit_identically(kwargs, digest, kit):
    spec = SessionSpec(**kwargs)
    assert not spec.musical_time
    h = hashlib.sha256()
    for rendered in render_pair(spec, kit):
        for name in sorted(rendered.stems):
            h.update(name.encode())
            h.update(np.ascontiguousarray(rendered.stems[name]).tobytes())
        h.update(json.dumps({k: v for k, v in rendered.truth.items() if k != "spec"}, sort_keys=True).encode())
        assert "tempo_map" not in rendered.truth
    assert h.hexdigest() == digest


def test_random_specs_draw_as_before_unless_asked(kit):
    plain = [random_spec(np.random.default_rng(4)) for _ in range(3)]
    again = [random_spec(np.random.default_rng(4), tempo_curves=("steady",), meters=("4/4",)) for _ in range(3)]
    assert plain == again and not any(s.musical_time for s in plain)
    rng = np.random.default_rng(4)
    drawn = [random_spec(rng, tempo_curves=("ramp", "breathing", "change"), meters=("7/8", "change"),
                         feels=("triplet",), count_in_rate=1.0) for _ in range(6)]
    assert all(s.musical_time and s.count_in_bars == 1 and s.tempo_curve != "steady" for s in drawn)
    assert all(s.feel == "straight" for s in drawn if s.meter == "7/8" or (s.meter_change or "").endswith("/8"))
    with pytest.raises(ParameterError):
        _spec(meter="7/8", feel="triplet")
    with pytest.raises(ParameterError):
        _spec(meter="9/8")
    with pytest.raises(ParameterError):
        _spec(tempo_curve="wobbly")


def test_evaluation_measures_against_the_true_maps_slots(kit):
    spec = _spec(**CASES["change"], duration_s=8.0, mics=("kick", "snare", "hh", "tom1", "overheads", "room"),
                 n_toms=1, flam_rate=0.0)
    performed, ideal = render_pair(spec, kit)
    truth = performed.truth
    assert isinstance(ev.truth_grid(truth), MapGrid)
    assert ev.truth_step_s(truth) == pytest.approx(60.0 / 120.0 / 4)  # the fastest tempo's sixteenth
    old = {k: v for k, v in truth.items() if k != "tempo_map"}
    assert isinstance(ev.truth_grid(old), Grid)
    locator = ev.Locator(performed.stems, truth, performed.hit_shots)
    summary = ev.residual_summary(locator.locate(ideal.stems))
    assert summary["n_hits"] >= 20 and summary["lost"] == 0 and summary["all"]["p95_ms"] < 0.05
    # the untouched input scores its humanization against the map's slots, after the change too
    expected = ev.expected_times_s(truth)
    after = 0
    for l in locator.locate(performed.stems):
        if l.close and not l.grace and not l.weak:
            hit = truth["hits"][l.hit]
            assert l.residual_ms == pytest.approx((hit["performed_time_s"] - expected[l.hit]) * 1000.0, abs=0.05)
            after += hit["grid_time_s"] > float(truth_tempo_map(truth).time_at(8.0))
    assert after >= 10
    # a fixed grid at the first tempo would put the strokes after the change far off their slots
    fixed = Grid(bpm=120.0, offset_s=truth["grid_offset_s"], steps_per_beat=4)
    late = [h for h in truth["hits"] if h["slot"] > 40]
    assert max(abs(fixed.deviation_ms(h["grid_time_s"], h["slot"])) for h in late) > 100.0
    # the oracle analysis is built on the same map grid
    oracle = ev.oracle_analysis(truth)
    assert max(abs(h.deviation_ms) for h in oracle.hits) < 0.45 * 125.0


def test_cli_renders_musical_time_and_refuses_unknown_values(tmp_path):
    import typer
    from typer.testing import CliRunner

    from beatfix.cli.synth import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    out = tmp_path / "data"
    args = ["synth", str(out), "--sessions", "2", "--duration-s", "6", "--sample-rate", "44100", "--channels-max", "4",
            "--tempo-curve", "change", "--meter", "7/8", "--feel", "swing", "--count-in", "--seed", "9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for i in range(2):
        folder = out / f"session_{i:04d}"
        truth = json.loads((folder / "truth.json").read_text())
        assert truth["tempo_curve"] == "change" and truth["meter"] == ["7/8"] and truth["feel"] == "swing"
        assert truth["count_in_bars"] == 1 and 54.0 <= truth["swing_pct"] <= 62.0
        back = read_tempo_map(folder / "tempo_map.mid")
        assert [m.label for m in back.meters] == ["7/8"]
    for bad in (["--meter", "9/8"], ["--tempo-curve", "wobbly"], ["--feel", "bossa"]):
        r = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), *bad])
        assert isinstance(r.exception, ParameterError), bad
    assert not (tmp_path / "x").exists()
    help_text = CliRunner().invoke(app, ["synth", "--help"]).output
    assert "--tempo-curve" in help_text and "--count-in" in help_text


def test_every_meter_feel_and_curve_plays_on_its_map():
    from beatfix.synth import perform
    from beatfix.synth.timeline import FEELS, METERS, TEMPO_CURVES, resolve_timeline

    drums = ["kick", "snare", "hat", "hat_open", "ride", "crash", "tom_high", "tom_low"]
    played = 0
    for i, (meter, feel, curve) in enumerate((m, f, c) for m in METERS for f in FEELS for c in TEMPO_CURVES):
        kwargs = dict(style="rock", bpm=110.0, duration_s=9.0, curve=curve, to_bpm=None, change_bar=None,
                      ramp_bars=None, depth_pct=5.0, meter=meter, meter_change=None, meter_change_bar=None,
                      feel=feel, swing_pct=None, count_in_bars=i % 2)
        if feel in ("shuffle", "triplet") and meter.endswith("/8"):
            with pytest.raises(ParameterError):
                resolve_timeline(np.random.default_rng(i), **kwargs)
            continue
        timeline = resolve_timeline(np.random.default_rng(i), **kwargs)
        perf = perform(np.random.default_rng([i, 1]), style="rock", bpm=110.0, duration_s=9.0, spread_ms=12.0,
                       sample_rate=SR, drums=drums, timeline=timeline)
        grid = perf.grid
        slots = np.array([n.slot for n in perf.notes])
        assert np.array_equal(grid.slot_time(slots), [n.grid_time_s for n in perf.notes])
        kick_downbeats = {grid.label(n.slot).split("|")[0] for n in perf.notes
                          if n.drum == "kick" and grid.label(n.slot).endswith("|1|000")}
        bars = {grid.label(s).split("|")[0] for s in slots if s >= 0}
        assert kick_downbeats == bars, (meter, feel, curve)
        assert sum(s < 0 for s in slots) == (i % 2) * round(grid.tempo_map.meters[0].bar_q
                                                            / grid.tempo_map.meters[0].beat_q)
        played += 1
    assert played == len(METERS) * len(TEMPO_CURVES) * len(FEELS) - 3 * 2 * len(TEMPO_CURVES)
