"""Mic delays and polarity: followers against close mics, second mics against the first of a drum."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from session_fixtures import SNARE_BOTTOM_DELAY_MS, Spec, make_session

from beatfix.delays import drum_of, measure_delays
from beatfix.onsets import detect_candidates
from beatfix.types import Session


@pytest.fixture(scope="module")
def measured():
    synth = make_session(Spec(bpm=110, bars=3, seed=21))
    cands = detect_candidates(synth.session)
    return synth, measure_delays(synth.session, cands), cands


def test_one_delay_per_stem_in_session_order(measured):
    synth, delays, _ = measured
    assert [d.stem for d in delays] == [s.name for s in synth.session.stems]


def test_close_mics_of_distinct_drums_are_references(measured):
    _, delays, _ = measured
    by = {d.stem: d for d in delays}
    for name in ("kick", "snare_top", "hh", "tom1"):
        assert (by[name].delay_ms, by[name].polarity, by[name].reference) == (0.0, 1, None)


def test_inverted_snare_bottom_found_against_snare_top(measured):
    _, delays, _ = measured
    bottom = {d.stem: d for d in delays}["snare_bottom"]
    assert bottom.reference == "snare_top" and bottom.polarity == -1
    assert abs(bottom.delay_ms - SNARE_BOTTOM_DELAY_MS) <= 0.1


@pytest.mark.parametrize("follower", ["oh_l", "oh_r", "room"])
def test_follower_delays_within_a_tenth_of_a_ms(measured, follower):
    synth, delays, _ = measured
    d = {d.stem: d for d in delays}[follower]
    truth = synth.truth.mic_delay_ms[follower]
    assert d.polarity == 1 and d.reference in truth
    assert abs(d.delay_ms - truth[d.reference]) <= 0.1
    # every close mic with enough strokes of its own gets a measurement, all of them right
    assert {"kick", "snare_top", "hh"} <= set(d.per_reference_ms)
    for ref, ms in d.per_reference_ms.items():
        assert abs(ms - truth[ref]) <= 0.1, (ref, ms, truth[ref])


def test_stereo_follower_gets_one_compromise_delay(measured):
    synth, _, cands = measured
    left, right = synth.session.stem("oh_l"), synth.session.stem("oh_r")
    pair = replace(left, name="oh", audio=np.concatenate([left.audio, right.audio]))
    session = Session(stems=(*synth.session.close_stems, pair), sample_rate=synth.session.sample_rate)
    d = {d.stem: d for d in measure_delays(session, cands)}["oh"]
    truth = synth.truth.mic_delay_ms
    expected = 0.5 * (truth["oh_l"]["snare_top"] + truth["oh_r"]["snare_top"])
    assert abs(d.per_reference_ms["snare_top"] - expected) <= 0.1


def test_two_toms_are_two_drums(measured):
    synth, _, cands = measured
    # the kick mic renamed as a second tom: same role, different drum, few shared strokes
    other = replace(synth.session.stem("kick"), name="tom2", role="tom")
    session = Session(stems=(synth.session.stem("tom1"), other), sample_rate=synth.session.sample_rate)
    delays = measure_delays(session, {"tom1": cands["tom1"], "tom2": cands["kick"]})
    assert all(d.reference is None for d in delays)
    assert drum_of(delays, session) == {"tom1": "tom1", "tom2": "tom2"}


def test_silent_follower_and_close_mic_pass_through():
    synth = make_session(Spec(bars=2, close=("kick", "snare_top", "snare_bottom"), followers=("oh_l",),
                              silent=("oh_l", "snare_bottom")))
    delays = {d.stem: d for d in measure_delays(synth.session, detect_candidates(synth.session))}
    assert delays["oh_l"].reference is None and delays["oh_l"].delay_ms == 0.0
    assert delays["snare_bottom"].reference is None
