"""The whole analysis: candidates -> delays -> judge -> tempo -> grid -> slots -> hits -> flams."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from session_fixtures import Spec, make_session, match_times

from beatfix.analyse import analyse_session
from beatfix.errors import InputError, ParameterError
from beatfix.hits import classic_judge
from beatfix.onsets import Candidate
from beatfix.types import Analysis, Onset, Session

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def full():
    synth = make_session(Spec(bpm=124, bars=3, seed=51, jitter_ms=1.5, deliberate=((20, 25.0),)))
    calls = []
    analysis = analyse_session(synth.session, progress=lambda stage, f: calls.append((stage, f)))
    return synth, analysis, calls


def _true_hits(synth, present=None):
    out = []
    for slot, drums in sorted(synth.truth.slots().items()):
        times = [t for d, t in drums.items() if present is None or d in present]
        if times:
            out.append((slot, 0.5 * (min(times) + max(times))))
    return out


def test_analysis_is_complete(full):
    synth, analysis, _ = full
    assert isinstance(analysis, Analysis) and analysis.engine == "classic"
    assert analysis.sample_rate == 44100 and analysis.duration_s == pytest.approx(synth.session.duration_s)
    assert abs(analysis.tempo_bpm / 124 - 1) < 0.01 and analysis.grid.bpm == analysis.tempo_bpm
    assert 0 <= analysis.grid.offset_s < 60 / analysis.tempo_bpm
    assert [d.stem for d in analysis.mic_delays] == [s.name for s in synth.session.stems]
    assert all(type(o) is Onset for o in analysis.onsets + analysis.rejected)
    assert len(analysis.hits) == len({h.slot for h in analysis.hits})


def test_hits_f1_and_slots(full):
    synth, analysis, _ = full
    truth = _true_hits(synth)
    errors, tp, fp, fn = match_times([h.time_s for h in analysis.hits], [t for _, t in truth], 0.005)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.95 and np.mean(np.abs(errors)) * 1000 <= 0.5
    step = 60 / analysis.grid.bpm / analysis.grid.steps_per_beat
    shift = round((synth.truth.offset_s - analysis.grid.offset_s) / step)
    by_time = {round(t, 3): s for s, t in truth}
    for hit in analysis.hits:
        slot = by_time.get(round(hit.time_s, 3))
        if slot is not None:
            assert hit.slot == slot + shift
    assert abs(analysis.grid.offset_s - synth.truth.offset_s % (60 / 124)) * 1000 <= 1.0


def test_progress_reports_every_stage_in_order(full):
    _, _, calls = full
    stages = [s for s, _ in calls]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == [
        "onsets", "delays", "judge", "tempo", "hits"]
    assert all(0.0 <= f <= 1.0 for _, f in calls) and calls[-1] == ("hits", 1.0)


def test_given_bpm_is_used_as_is():
    synth = make_session(Spec(bpm=100, bars=2, seed=52, close=("kick", "snare_top", "hh"), followers=()))
    analysis = analyse_session(synth.session, bpm=100.0, grid="1/8")
    assert analysis.tempo_bpm == pytest.approx(100.0) and analysis.grid.steps_per_beat == 2
    assert [c.bpm for c in analysis.tempo_candidates] == [100.0]


def test_silent_stems_pass_through():
    # a dead tom mic on a kit whose toms are not played
    synth = make_session(Spec(bpm=120, bars=2, seed=53, close=("kick", "snare_top", "tom1"), followers=("room",),
                              silent=("tom1", "room"), toms=False))
    analysis = analyse_session(synth.session, bpm=120)
    assert not any(o.stem == "tom1" for o in analysis.onsets)
    assert {d.stem for d in analysis.mic_delays} == {"kick", "snare_top", "tom1", "room"}
    truth = _true_hits(synth, present={"kick", "snare"})
    _, tp, fp, fn = match_times([h.time_s for h in analysis.hits], [t for _, t in truth], 0.005)
    assert fp == 0 and fn == 0


def test_no_close_mic_is_a_clear_input_error():
    synth = make_session(Spec(bars=1, close=("kick",), followers=("oh_l", "room")))
    followers = Session(stems=tuple(s for s in synth.session.stems if not s.is_close), sample_rate=44100)
    with pytest.raises(InputError, match="no close mic"):
        analyse_session(followers, bpm=120)


@pytest.mark.parametrize("kwargs", [{"grid": "1/5"}, {"swing_pct": 90.0}, {"flam_threshold_ms": -1.0},
                                    {"bpm": 1000.0}])
def test_bad_parameters_are_parameter_errors(kwargs):
    synth = make_session(Spec(bars=1, close=("kick",), followers=()))
    with pytest.raises(ParameterError):
        analyse_session(synth.session, **kwargs)


def test_a_replacement_judge_plugs_in():
    synth = make_session(Spec(bpm=120, bars=2, seed=54, close=("kick", "snare_top", "hh"), followers=()))
    seen = {}

    def shifting_judge(candidates, session, delays):
        seen["types"] = {type(c) for c in candidates}
        accepted, rejected = classic_judge(candidates, session, delays)
        return [replace(o, time_s=o.time_s + 0.001) for o in accepted], rejected  # a judge may refine times

    plain = analyse_session(synth.session, bpm=120)
    shifted = analyse_session(synth.session, bpm=120, judge=shifting_judge)
    assert seen["types"] == {Candidate}
    assert [o.time_s + 0.001 for o in plain.onsets] == pytest.approx([o.time_s for o in shifted.onsets])
    assert shifted.engine == "custom"


def test_importing_the_analysis_does_not_import_madmom():
    code = "import sys, beatfix.analyse; assert 'madmom' not in sys.modules, 'madmom imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
