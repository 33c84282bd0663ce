"""Flams: drums of one hit apart by more than the threshold, and the deliberate rudiment."""

from __future__ import annotations

import pytest
from session_fixtures import Spec, make_session

from beatfix.analyse import analyse_session
from beatfix.flams import find_flams
from beatfix.types import Hit, Onset


@pytest.fixture(scope="module")
def analysed():
    # slot 36 (bar 3, beat 2): snare 9 ms after the hat; slot 20 (bar 2, beat 2): a grace note 25 ms early
    synth = make_session(Spec(bpm=116, bars=3, seed=41, flams=((36, 9.0),), deliberate=((20, 25.0),),
                              followers=("oh_l",)))
    return synth, analyse_session(synth.session, bpm=116)


def _truth_slot(synth, analysis, slot):
    step = 60.0 / analysis.grid.bpm / analysis.grid.steps_per_beat
    return slot + round((synth.truth.offset_s - analysis.grid.offset_s) / step)


def test_every_planted_flam_found_with_its_spread(analysed):
    synth, analysis = analysed
    found = {f.slot: f for f in analysis.flams}
    for slot, spread_ms, deliberate in synth.truth.flams:
        flam = found[_truth_slot(synth, analysis, slot)]
        assert flam.deliberate == deliberate
        assert abs(flam.spread_ms - spread_ms) <= 0.5, (slot, flam.spread_ms, spread_ms)


def test_no_flam_where_there_is_none(analysed):
    synth, analysis = analysed
    planted = {_truth_slot(synth, analysis, slot) for slot, _, _ in synth.truth.flams}
    assert {f.slot for f in analysis.flams} == planted


def test_deliberate_flam_names_its_grace_notes(analysed):
    synth, analysis = analysed
    (flam,) = [f for f in analysis.flams if f.deliberate]
    grace = [e.time_s for e in synth.truth.events if e.kind == "grace"][0]
    assert set(flam.grace_onsets) >= {"snare_top"}
    assert abs(flam.grace_onsets["snare_top"] - grace) < 0.5e-3
    hit = [h for h in analysis.hits if h.slot == flam.slot][0]
    assert hit.earliest_s <= grace + 0.5e-3  # the cut goes before the grace note


def test_threshold_is_respected():
    hit = Hit(1.0, 0.997, 8, 0.0, {"kick": 0.997, "snare": 1.003}, spread_ms=6.0)
    onsets = [Onset("kick", 0.997, -3.0), Onset("snare", 1.003, -4.0)]
    assert [f.spread_ms for f in find_flams([hit], onsets, {}, threshold_ms=4.0)] == [6.0]
    assert find_flams([hit], onsets, {}, threshold_ms=8.0) == []


def test_grace_note_in_one_stem_is_deliberate_and_spread_is_grace_to_main():
    hit = Hit(2.0, 1.98, 16, 0.0, {"tom1": 2.0}, spread_ms=0.0)
    onsets = [Onset("tom1", 1.982, -18.0), Onset("tom1", 2.0, -3.0)]
    (flam,) = find_flams([hit], onsets, {}, threshold_ms=4.0)
    assert flam.deliberate and flam.spread_ms == pytest.approx(18.0) and flam.grace_onsets == {"tom1": 1.982}
    # a second stroke as loud as the first is a double, not a grace note
    loud = [Onset("tom1", 1.982, -3.5), Onset("tom1", 2.0, -3.0)]
    assert find_flams([hit], loud, {}, threshold_ms=4.0) == []
