"""Onset candidates: sample-accurate attacks on close mics, with bleed and decays underneath."""

from __future__ import annotations

import numpy as np
import pytest
from session_fixtures import Spec, make_session, match_times

from beatfix.errors import InputError
from beatfix.onsets import Candidate, detect_candidates
from beatfix.types import Onset, Session


@pytest.fixture(scope="module")
def rock():
    synth = make_session(Spec(bpm=120, bars=3, seed=11, deliberate=((20, 25.0),), followers=()))
    return synth, detect_candidates(synth.session)


@pytest.mark.parametrize("stem", ["kick", "snare_top", "snare_bottom", "hh", "tom1"])
def test_own_onsets_found_to_a_fraction_of_a_ms(rock, stem):
    synth, cands = rock
    truth = synth.truth.onsets(stem)
    errors, tp, _, fn = match_times([c.time_s for c in cands[stem]], truth, 0.002)
    assert fn == 0, f"{fn} of {len(truth)} true onsets have no candidate within 2 ms"
    assert np.mean(np.abs(errors)) * 1000 <= 0.5
    assert np.max(np.abs(errors)) * 1000 <= 2.0


def test_ghost_notes_and_grace_notes_are_candidates(rock):
    synth, cands = rock
    soft = [e.time_s for e in synth.truth.events if e.kind in ("ghost", "grace")]
    assert len(soft) >= 4
    times = np.array([c.time_s for c in cands["snare_top"]])
    for t in soft:
        assert np.min(np.abs(times - t)) < 0.5e-3


def test_candidates_carry_judge_features(rock):
    synth, cands = rock
    kick = cands["kick"]
    assert all(isinstance(c, Candidate) and isinstance(c, Onset) for c in kick)
    truth = synth.truth.onsets("kick")
    own = [c for c in kick if np.min(np.abs(truth - c.time_s)) < 1e-3]
    bleed = [c for c in kick if np.min(np.abs(truth - c.time_s)) > 5e-3]
    assert own and bleed
    # the kick's own strokes are loud, low and steep; the snare bleed in it is none of these
    assert min(c.level_db for c in own) > max(c.level_db for c in bleed) + 10
    assert np.median([c.centroid_hz for c in own]) < np.median([c.centroid_hz for c in bleed])
    for c in own:
        assert len(c.band_db) == 9 and np.isfinite(c.band_db).all()
        assert c.rise_db > 20 and 0 <= c.activation <= 1 and np.isfinite(c.pre_level_db)


def test_48k_session_maps_times_back():
    synth = make_session(Spec(bpm=100, bars=2, seed=5, sample_rate=48000, close=("kick", "snare_top"),
                              followers=()))
    cands = detect_candidates(synth.session)
    for stem in ("kick", "snare_top"):
        errors, _, _, fn = match_times([c.time_s for c in cands[stem]], synth.truth.onsets(stem), 0.002)
        assert fn == 0 and np.mean(np.abs(errors)) * 1000 <= 0.5


def test_silent_stem_gives_no_candidates():
    synth = make_session(Spec(bars=1, close=("kick", "snare_top"), followers=(), silent=("snare_top",)))
    cands = detect_candidates(synth.session)
    assert cands["snare_top"] == [] and len(cands["kick"]) >= 3


def test_no_close_mic_is_an_input_error():
    synth = make_session(Spec(bars=1, close=("kick",), followers=("oh_l",)))
    only_overhead = Session(stems=(synth.session.stem("oh_l"),), sample_rate=synth.session.sample_rate)
    with pytest.raises(InputError, match="no close mic"):
        detect_candidates(only_overhead)


def test_dense_sixteenth_hats_over_their_own_ringing():
    synth = make_session(Spec(bpm=132, bars=2, seed=8, sixteenth_hats=True, close=("hh", "snare_top"), followers=()))
    cands = detect_candidates(synth.session)
    errors, _, _, fn = match_times([c.time_s for c in cands["hh"]], synth.truth.onsets("hh"), 0.002)
    assert fn == 0
    assert np.mean(np.abs(errors)) * 1000 <= 0.5 and np.max(np.abs(errors)) * 1000 <= 2.0
