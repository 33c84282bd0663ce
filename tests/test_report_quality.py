"""The foundation must-show: `report --json` on sessions it has never seen.

Close mics with bleed, overheads and a room, tempo estimated (no --bpm),
44.1 and 48 kHz. The hits' per-channel onsets in the JSON are matched to the
synthetic truth: F1 >= 0.95 within 5 ms, mean onset error <= 1 ms, tempo
within 1 %.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from beatfix import evaluation as ev
from beatfix.synth import SessionSpec, procedural_kit, render_session, write_session
from beatfix.types import Onset

pytestmark = pytest.mark.slow

SESSIONS = [
    SessionSpec(seed=9101, sample_rate=48000, bpm=92.0, style="rock", duration_s=12.0, spread_ms=16.0,
                n_channels=8, n_toms=1, mics=("kick", "snare", "hh", "tom1", "overheads", "room")),
    SessionSpec(seed=9102, sample_rate=44100, bpm=152.0, style="rock", duration_s=12.0, spread_ms=10.0,
                n_channels=8, n_toms=2, mics=("kick", "snare", "hh", "tom1", "ft", "overheads", "room")),
]


@pytest.mark.parametrize("spec", SESSIONS, ids=lambda s: f"{s.style}{s.bpm:g}")
def test_report_finds_close_mic_hits(run_cli, tmp_path, spec):
    rendered = render_session(spec, procedural_kit(spec.sample_rate, seed=12))
    write_session(tmp_path, rendered)
    r = run_cli("report", *sorted(tmp_path.glob("*.wav")), "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    onsets = [Onset(stem, t, 0.0) for hit in doc["hits"] for stem, t in hit["channels"].items()]
    counts = ev.analysis_quality(SimpleNamespace(onsets=onsets, tempo_bpm=doc["tempo_bpm"]), rendered.truth)
    rates = ev.quality_rates([counts])
    assert rates["f1"] >= 0.95, (rates, counts["by_stem"])
    assert rates["onset_error_ms"] <= 1.0
    assert counts["tempo_error_pct"] <= 1.0, doc["tempo_candidates"]
