"""The edit as a DAW session: REAPER .rpp and AAF parse back, and every clip matches edits.json to the sample.

Seeded synthetic sessions (tests/render_fixtures.py) whose plans hold every
kind of seam: crossfaded overlaps (hits moved earlier), gaps filled from
decay, a stretched decay, and a last hit moved earlier (fade-out at the end).
Each channel is written as a float WAV; the clips read back from each file
are compared with the clips edits.json implies, derived from its fields
alone (tests/daw_readers.py). Playing the REAPER clips back as a DAW sums
them gives the rendered stems bit for bit outside the fades and stretches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beatfix.align import edits_document
from beatfix.daw import parse_daw_kinds, plan_clips, session_files
from beatfix.daw.aaf import aaf_clips
from beatfix.errors import ParameterError
from beatfix.grid import Grid
from beatfix.plan import plan_edits
from beatfix.render import plan_seams, render, stretch
from daw_readers import expected_clips, parse_rpp, read_aaf
from render_fixtures import CHANNELS, SR, analysis, attacks_off_grid, session

SPREAD = (Grid(bpm=120.0, offset_s=0.1, steps_per_beat=2.0), [12.0, -18.0, 6.0, -25.0, 20.0, -9.0, 15.0, -22.0], 2.3)
DENSE = (Grid(bpm=150.0, offset_s=0.05, steps_per_beat=4.0), [0.0, -28.0, 0.0, 8.0, -12.0, 0.0, 4.0, 4.0], 1.1)
ENDING = (Grid(bpm=120.0, offset_s=0.1, steps_per_beat=2.0), [0.0, 7.0, -5.0, 15.0], None)


def _scenario(grid, deviations_ms, seconds, folder: Path):
    slots = list(range(len(deviations_ms)))
    attacks = attacks_off_grid(grid, slots, deviations_ms)
    n = int(seconds * SR) if seconds else attacks[-1] + SR // 5  # ENDING: the session stops mid-decay
    kinds = ["kick", "snare"] * (len(slots) // 2) + ["kick"] * (len(slots) % 2)
    audio = session(attacks, kinds, n, seed=3)
    plan = plan_edits(analysis(attacks, slots, grid, n), n_samples=n, audio=[audio])
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for c, name in enumerate(CHANNELS):
        path = folder / f"{name}.wav"
        # The room file is 40 ms shorter: a stem shorter than the session is silence past its end.
        length = n - (40 * SR // 1000 if name == "room" else 0)
        sf.write(str(path), audio[c, :length], SR, subtype="FLOAT")
        stems.append({"name": name, "path": str(path.resolve()), "n_channels": 1, "n_samples": length,
                      "format": "WAV", "subtype": "FLOAT"})
        audio[c, length:] = 0.0
    doc = json.loads(json.dumps(edits_document(analysis(attacks, slots, grid, n), plan)))
    doc["stems"] = stems
    return audio, plan, doc


@pytest.fixture(scope="module", params=["spread", "dense", "ending"])
def scenario(request, tmp_path_factory):
    spec = {"spread": SPREAD, "dense": DENSE, "ending": ENDING}[request.param]
    audio, plan, doc = _scenario(*spec, tmp_path_factory.mktemp(request.param))
    files = session_files(("rpp", "aaf"), plan, doc["stems"])
    aaf_path = tmp_path_factory.mktemp(request.param + "_aaf") / "session.aaf"
    aaf_path.write_bytes(files["session.aaf"])
    return {"name": request.param, "audio": audio, "plan": plan, "doc": doc,
            "rpp": parse_rpp(files["session.rpp"].decode("utf-8")), "aaf": read_aaf(aaf_path)}


def test_scenarios_hold_every_kind_of_seam(scenario):
    kinds = {s.kind for s in plan_seams(scenario["plan"])}
    want = {"spread": {"overlap", "fill"}, "dense": {"stretch", "overlap"}, "ending": {"overlap", "fill"}}
    assert want[scenario["name"]] <= kinds
    if scenario["name"] == "ending":
        assert scenario["plan"].edits[-1].shift_samples < 0


def _piece(name: str) -> tuple[int, str]:
    parts = name.split()
    if len(parts) == 1:
        return -1, "piece"
    return int(parts[2]), "stretch" if parts[-1] == "stretch" else "piece"


def test_rpp_every_clip_matches_edits_json_to_the_sample(scenario):
    doc, rpp = scenario["doc"], scenario["rpp"]
    assert rpp["sample_rate"] == SR
    assert list(rpp["tracks"]) == list(CHANNELS)  # one track per stem, in order
    for stem in doc["stems"]:
        items = rpp["tracks"][stem["name"]]
        want = expected_clips(doc, stem["n_samples"])
        got = [dict(zip(("piece", "kind"), _piece(i.name)), position=i.position, length=i.length,
                    source_offset=i.source_offset, fade_in=i.fade_in, fade_out=i.fade_out) for i in items]
        want_cmp = [{k: v for k, v in w.items() if k != "source_length"} for w in want]
        assert got == want_cmp, stem["name"]
        for item, w in zip(items, want):
            assert item.file == stem["path"] and Path(item.file).is_absolute()
            assert item.rate == pytest.approx(w["source_length"] / w["length"], rel=1e-12)
        # every edit's cut lands where its shift puts it: source cut_sample plays at cut + shift
        for k, e in enumerate(doc["edits"]):
            (item,) = [i for i in items if _piece(i.name) == (k, "piece")]
            cut_out = e["cut_sample"] + e["shift_samples"]
            if item.position <= cut_out < item.end:
                assert item.source_offset + (cut_out - item.position) == e["cut_sample"]


def test_aaf_every_clip_matches_edits_json_to_the_sample(scenario):
    doc, aaf = scenario["doc"], scenario["aaf"]
    assert list(aaf) == list(CHANNELS)
    for stem in doc["stems"]:
        slot = aaf[stem["name"]]
        assert slot["edit_rate"] == SR
        assert slot["urls"] == {Path(stem["path"]).as_uri()}  # linked, by absolute path
        assert slot["descriptor_length"] == stem["n_samples"]
        # AAF cannot stretch: a stretched decay plays unstretched at the end of the previous clip
        want = []
        for w in expected_clips(doc, stem["n_samples"]):
            if w["kind"] == "stretch":
                want[-1] = dict(want[-1], length=want[-1]["length"] + min(w["source_length"], w["length"]))
            else:
                want.append(w)
        got = [(i.position, i.length, i.source_offset) for i in slot["items"]]
        assert got == [(w["position"], w["length"], w["source_offset"]) for w in want], stem["name"]
        # each overlap of two clips is one transition exactly as long as the crossfade
        overlaps = [(b["position"], a["position"] + a["length"] - b["position"]) for a, b in zip(want, want[1:])
                    if a["position"] + a["length"] > b["position"]]
        assert slot["transitions"] == overlaps
        assert all(length == scenario["plan"].xfade_samples for _, length in overlaps if length)
        assert slot["length"] == doc["n_samples"]


def _daw_playback(rpp_items, sources: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """A DAW's playback of one track (items summed, linear fades); and where it is exact (no fade, no stretch)."""
    out = np.zeros(n, dtype=np.float64)
    exact = np.ones(n, dtype=bool)
    for item in rpp_items:
        src = sources[item.file]
        if item.rate != 1.0:
            n_src = round(item.length * item.rate)
            piece = stretch(src[None, :], item.source_offset, item.source_offset + n_src, item.length)[0]
            exact[item.position:item.end] = False
        else:
            piece = src[item.source_offset:item.source_offset + item.length].astype(np.float64)
        gain = np.ones(item.length)
        if item.fade_in:
            gain[:item.fade_in] = (np.arange(item.fade_in) + 0.5) / item.fade_in
            exact[item.position:item.position + item.fade_in] = False
        if item.fade_out:
            gain[item.length - item.fade_out:] = 1.0 - (np.arange(item.fade_out) + 0.5) / item.fade_out
            exact[item.end - item.fade_out:item.end] = False
        out[item.position:item.end] += piece * gain
    return out, exact


def test_rpp_plays_back_the_render_outside_fades_and_stretches(scenario):
    audio, plan, rpp = scenario["audio"], scenario["plan"], scenario["rpp"]
    rendered = render(audio, plan)
    worst_db = -np.inf
    for c, stem in enumerate(scenario["doc"]["stems"]):
        src = sf.read(stem["path"], dtype="float32")[0]
        daw, exact = _daw_playback(rpp["tracks"][stem["name"]], {stem["path"]: src}, plan.n_samples)
        assert np.array_equal(daw[exact].astype(np.float32), rendered[c, exact]), stem["name"]
        assert exact.mean() > 0.9
        diff = np.abs(daw[~exact] - rendered[c, ~exact])
        if diff.size:
            worst_db = max(worst_db, 20 * np.log10(diff.max() / np.abs(rendered[c]).max() + 1e-12))
    # fades: a linear ramp where beatfix keeps the level of unrelated sides; a DAW's resampler in stretches
    assert worst_db < -20.0  # measured: -23 dB at worst (room mic, dense session)


def test_fix_mode_session_says_what_it_leaves_out(scenario):
    plan = scenario["plan"]
    shifted = type(plan)(plan.sample_rate, plan.n_samples, plan.pad_ms, plan.xfade_ms, plan.protect_ms,
                         tuple(e.__class__(**{**vars(e), "shift_samples": e.shift_samples // 2}) for e in plan.edits))
    files = session_files(("rpp",), plan, scenario["doc"]["stems"], drum_plans={"kick": shifted}, flams="fix")
    rpp = parse_rpp(files["session.rpp"].decode("utf-8"))
    assert any("--flams fix" in line and "not in this session" in line for line in rpp["notes"])
    kick = [(i.position, i.source_offset) for i in rpp["tracks"]["kick"]]
    assert kick == [(c.position_samples, c.source_offset_samples)
                    for c in plan_clips(shifted, n_source_samples=scenario["doc"]["stems"][0]["n_samples"])]
    assert rpp["tracks"]["snare"] == scenario["rpp"]["tracks"]["snare"]


def test_no_edits_is_one_clip_per_track_and_bad_kinds_are_refused():
    from beatfix.plan import EditPlan

    plan = EditPlan(SR, 1000, 3.0, 4.0, 30.0, ())
    (clip,) = plan_clips(plan)
    assert (clip.position_samples, clip.length_samples, clip.source_offset_samples) == (0, 1000, 0)
    assert parse_daw_kinds("rpp, AAF") == ("rpp", "aaf") and parse_daw_kinds(None) == ()
    for bad in ("rpx", "rpp,", ","):
        if bad == "rpp,":
            assert parse_daw_kinds(bad) == ("rpp",)
            continue
        with pytest.raises(ParameterError, match="use rpp, aaf"):
            parse_daw_kinds(bad)


def test_aaf_refuses_media_it_cannot_link(scenario):
    stems = [dict(s, format="FLAC") for s in scenario["doc"]["stems"]]
    with pytest.raises(ParameterError, match="AAF links WAV or AIFF"):
        session_files(("aaf",), scenario["plan"], stems)
    assert aaf_clips(()) == ()
