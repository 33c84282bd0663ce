"""Shared fixtures: small synthetic sessions rendered once per test run, and an in-process CLI runner."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test helper modules import as top-level


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``beatfix ARGS`` through the real entry point, in-process."""
    from beatfix.cli import main

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["beatfix", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture(scope="session")
def small_session(tmp_path_factory):
    """A 5 s, 44.1 kHz session: kick, snare, hh, tom, overheads, room with bleed; returns (folder, truth)."""
    from beatfix.synth import SessionSpec, procedural_kit, render_session, write_session

    spec = SessionSpec(seed=321, sample_rate=44100, bpm=118.0, style="rock", duration_s=5.0, spread_ms=12.0,
                       n_channels=8)
    rendered = render_session(spec, procedural_kit(44100, seed=0))
    folder = tmp_path_factory.mktemp("session")
    write_session(folder, rendered)
    return folder, rendered.truth
