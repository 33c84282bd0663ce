"""Datasets of synthetic sessions: specs drawn from one seed, rendered and written folder by folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ParameterError
from .kits import Kit
from .session import (SAMPLE_RATES, SessionSpec, check_format, random_spec, render_pair, render_session,
                      write_session)


def draw_specs(n_sessions: int, *, seed: int, sample_rates: Sequence[int] = SAMPLE_RATES,
               duration_s: float = 20.0, bpm_range: tuple[float, float] = (60.0, 200.0),
               spread_ms_range: tuple[float, float] = (3.0, 30.0),
               channels_range: tuple[int, int] = (2, 16), idle_tom_rate: float = 0.0,
               tempo_curves: Sequence[str] = ("steady",), meters: Sequence[str] = ("4/4",),
               feels: Sequence[str | None] = (None,), count_in_rate: float = 0.0) -> list[SessionSpec]:
    """The specs of a dataset, drawn from one seed; drawing all first validates every option before any writing.

    The musical-time choices are those of :func:`~beatfix.synth.session.random_spec`; their defaults draw
    the fixed-tempo 4/4 sessions the same seed always drew.
    """
    if n_sessions < 1:
        raise ParameterError(f"--sessions {n_sessions}: use 1 or more")
    rng = np.random.default_rng(seed)
    return [random_spec(rng, sample_rates=sample_rates, bpm_range=bpm_range, spread_ms_range=spread_ms_range,
                        channels_range=channels_range, duration_s=duration_s, idle_tom_rate=idle_tom_rate,
                        tempo_curves=tempo_curves, meters=meters, feels=feels, count_in_rate=count_in_rate)
            for _ in range(n_sessions)]


def write_dataset(out_dir: Path | str, specs: Sequence[SessionSpec], *, kit_for_rate: Callable[[int], Kit],
                  ideal: bool = False, fmt: str = "WAV", subtype: str = "PCM_24",
                  progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Render ``specs`` into ``out_dir/session_0000`` ...; returns the session folders.

    ``kit_for_rate(sample_rate)`` supplies the kit at each spec's rate (the
    spec's kit name is replaced by the kit's). With ``ideal``, each session
    folder also gets an ``ideal/`` subfolder. ``progress(done, total)`` is
    called after each session.
    """
    check_format(fmt, subtype)
    folders = []
    for i, spec in enumerate(specs):
        kit = kit_for_rate(spec.sample_rate)
        spec = replace(spec, kit=kit.name)
        folder = Path(out_dir) / f"session_{i:04d}"
        if ideal:
            performed, on_grid = render_pair(spec, kit)
            write_session(folder / "ideal", on_grid, fmt=fmt, subtype=subtype)
            write_session(folder, performed, fmt=fmt, subtype=subtype)
        else:
            write_session(folder, render_session(spec, kit), fmt=fmt, subtype=subtype)
        folders.append(folder)
        if progress is not None:
            progress(i + 1, len(specs))
    return folders
