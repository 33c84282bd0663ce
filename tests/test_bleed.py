"""The bleed-path check: empty tom mics come out empty, played drums, ghost notes and second mics stay.

Seeded synthetic sessions with exact truth (procedural kit, 10 s): what a user
would see in the report, measured with the benchmark's own yardstick.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from beatfix.analyse import analyse_session
from beatfix.bleed import primary_paths, reject_bleed
from beatfix.delays import measure_delays
from beatfix.evaluation import analysis_quality
from beatfix.hits import classic_judge
from beatfix.onsets import detect_candidates
from beatfix.synth import SessionSpec, procedural_kit, render_session

TOM_MICS = ("kick", "snare", "hh", "tom1", "tom2", "ft", "overheads", "room")
SR = 44100
BPM = 110.0


def _render(seed: int, style: str, n_toms: int, mics=TOM_MICS):
    spec = SessionSpec(seed=seed, style=style, bpm=BPM, duration_s=10.0, sample_rate=SR, n_channels=9,
                       overheads_stereo_file=True, n_toms=n_toms, mics=mics)
    return render_session(spec, procedural_kit(SR, 0))


def _judged(rendered):
    """(session, candidates, classic judge's accepted, rejected): the analysis up to the bleed check."""
    session = rendered.as_session()
    candidates = detect_candidates(session)
    delays = measure_delays(session, candidates)
    flat = sorted((c for cs in candidates.values() for c in cs), key=lambda o: (o.time_s, o.stem))
    accepted, rejected = classic_judge(flat, session, delays)
    return session, candidates, delays, accepted, rejected


@pytest.fixture(scope="module")
def empty_toms():
    return _render(7, "funk", n_toms=0)  # tom mics set up, no tom in the kit: they hear bleed only


@pytest.fixture(scope="module")
def second_mics():
    mics = ("kick", "kick_out", "snare", "snare_bottom", "hh", "tom1", "overheads", "room")
    return _render(9, "funk", n_toms=1, mics=mics)


def test_tom_mics_that_are_never_played_accept_nothing(empty_toms):
    analysis = analyse_session(empty_toms.as_session(), bpm=BPM)
    assert [o for o in analysis.onsets if o.stem in ("tom1", "tom2", "ft")] == []
    quality = analysis_quality(analysis, empty_toms.truth)
    assert quality["bleed_false"] <= 2  # the played mics stay clean too


def test_played_toms_are_kept():
    rendered = _render(8, "rock", n_toms=3)
    analysis = analyse_session(rendered.as_session(), bpm=BPM)
    by_stem = analysis_quality(analysis, rendered.truth)["by_stem"]
    own, found = (sum(by_stem[m][k] for m in ("tom1", "tom2", "ft")) for k in (0, 1))
    assert own >= 4
    assert found / own >= 0.95


def test_ghost_notes_on_the_snare_are_kept(empty_toms):
    session, candidates, delays, accepted, rejected = _judged(empty_toms)
    kept, _ = reject_bleed(accepted, rejected, session, delays, candidates=candidates)
    plain = analyse_session(session, bpm=BPM)
    before = analysis_quality(replace(plain, onsets=tuple(accepted)), empty_toms.truth)
    after = analysis_quality(replace(plain, onsets=tuple(kept)), empty_toms.truth)
    assert before["soft_ghosts"] >= 3
    assert after["soft_missed"] == before["soft_missed"]
    assert after["by_stem"]["snare"][1] == before["by_stem"]["snare"][1]  # every own snare stroke found stays


def test_second_mics_of_one_drum_are_left_alone(second_mics):
    session, candidates, delays, accepted, rejected = _judged(second_mics)
    roles = {s.name: s.role for s in session.close_stems}
    paths = primary_paths({m: sorted(cs, key=lambda c: c.time_s) for m, cs in candidates.items() if cs}, roles)
    assert paths and all(roles[p.mic] != roles[p.source] for p in paths)
    kept, moved = reject_bleed(accepted, rejected, session, delays, candidates=candidates)
    plain = analyse_session(session, bpm=BPM)
    before = analysis_quality(replace(plain, onsets=tuple(accepted)), second_mics.truth)["by_stem"]
    after = analysis_quality(replace(plain, onsets=tuple(kept)), second_mics.truth)["by_stem"]
    for mic in ("kick_in", "kick_out", "snare_top", "snare_bottom"):
        assert after[mic][1] == before[mic][1]  # no own stroke of either mic of a drum lost
    assert len(kept) + len(moved) == len(accepted) + len(rejected)
