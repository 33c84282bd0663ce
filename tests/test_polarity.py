"""Polarity of close mics against the overheads, and between the two mics of one drum."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from session_fixtures import SNARE_BOTTOM_DELAY_MS, Spec, make_session

from beatfix.delays import measure_delays
from beatfix.onsets import detect_candidates
from beatfix.polarity import MIN_CONFIDENCE, MIN_STROKES, _decide, _vote, check_polarity

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "session"


def _check(spec: Spec):
    synth = make_session(spec)
    cands = detect_candidates(synth.session)
    return synth, check_polarity(synth.session, cands, measure_delays(synth.session, cands))


@pytest.fixture(scope="module", params=[21, 5])
def kick_flipped(request):
    return _check(Spec(bpm=110, bars=3, seed=request.param, inverted=("kick",)))


def test_inverted_kick_mic_found_against_the_overheads(kick_flipped):
    synth, check = kick_flipped
    by = {m.stem: m for m in check.stems}
    assert [m.stem for m in check.stems] == [s.name for s in synth.session.close_stems]
    assert by["kick"].verdict == "inverted" and by["kick"].confidence >= MIN_CONFIDENCE
    # each overhead hears the kick's strokes inverted, every one of them
    overheads = [v for v in by["kick"].votes if v.follower.startswith("oh")]
    assert overheads and all(v.polarity == -1 and v.agreement == 1.0 for v in overheads)
    # the other drums arrive upright; the snare bottom is wired inverted in the fixture
    for name in ("snare_top", "hh"):
        assert by[name].verdict == "normal", (name, by[name])
    assert by["snare_bottom"].verdict == "inverted"
    for name, m in by.items():
        if m.polarity:
            assert m.polarity == synth.truth.polarity.get(name, 1), (name, m)


def test_snare_top_and_bottom_opposite_with_a_small_lag(kick_flipped):
    _, check = kick_flipped
    pair = {(p.first, p.second): p for p in check.pairs}[("snare_top", "snare_bottom")]
    assert pair.polarity == -1
    assert abs(pair.lag_ms - SNARE_BOTTOM_DELAY_MS) <= 0.1
    assert pair.as_dict()["verdict"] == "opposite"


def test_no_flip_reports_all_normal():
    synth, check = _check(Spec(bpm=110, bars=3, seed=21, close=("kick", "snare_top", "hh", "tom1")))
    by = {m.stem: m for m in check.stems}
    assert not check.pairs
    for name in ("kick", "snare_top", "hh"):
        assert by[name].verdict == "normal" and by[name].confidence >= MIN_CONFIDENCE, (name, by[name])
    assert all(m.verdict != "inverted" for m in check.stems)


def test_weak_evidence_is_unsure_not_a_guess():
    """The documented vote: a quiet drum, split signs or too few strokes give "unsure"."""
    import numpy as np

    from beatfix.delays import StrokeVotes

    def votes(signs, coefficient):
        n = len(signs)
        return StrokeVotes(np.zeros(n), np.array(signs, dtype=float), np.full(n, coefficient), n)

    def decide(*channels):
        return _decide("kick", [_vote(f"oh{i}", v) for i, v in enumerate(channels)], [1.0] * len(channels))

    clear = decide(votes([-1] * 6, 0.8), votes([-1] * 6, 0.8))
    assert clear.verdict == "inverted" and clear.confidence == pytest.approx(0.8)
    # quiet in the overheads: the strokes correlate weakly with the close mic
    assert decide(votes([-1] * 6, 0.2), votes([-1] * 6, 0.2)).verdict == "unsure"
    # half the strokes each way: no evidence either way
    assert decide(votes([-1, 1] * 3, 0.9), votes([1, -1] * 3, 0.9)).verdict == "unsure"
    # too few strokes to vote at all
    few = decide(votes([-1] * (MIN_STROKES - 1), 0.9), votes([-1] * (MIN_STROKES - 1), 0.9))
    assert few.verdict == "unsure" and few.confidence == 0.0
    # overheads disagreeing with each other cancel out
    assert decide(votes([-1] * 6, 0.8), votes([1] * 6, 0.8)).verdict == "unsure"


def test_bundled_example_kick_reported_inverted(run_cli):
    truth = json.loads((EXAMPLE / "truth.json").read_text())
    stems = sorted(EXAMPLE.glob("*.flac"))
    r = run_cli("report", *stems, "--engine", "classic", "--json")
    assert r.exit_code == 0, r.stderr
    check = json.loads(r.stdout)["mic_polarity_check"]
    true_polarity = {c["stem"]: c["polarity"] for c in truth["channels"]}
    assert true_polarity["kick"] == -1
    assert check["stems"]["kick"]["verdict"] == "inverted"
    for stem, m in check["stems"].items():
        assert m["polarity"] in (0, true_polarity[stem]), (stem, m)  # never a wrong guess, at most unsure
    assert sum(m["polarity"] != 0 for m in check["stems"].values()) >= 3
    table = run_cli("report", *stems, "--engine", "classic")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    below = lines[next(i for i, line in enumerate(lines) if "Mic delays and polarity" in line):]
    row = next(line for line in below if line.strip().startswith("kick"))
    assert "inverted" in row and "overheads" in row and "reference" not in row
