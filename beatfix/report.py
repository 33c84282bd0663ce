"""Timing diagnostics as plain data: per-channel statistics, the JSON document, CSV text.

Pure functions of an :class:`~beatfix.types.Analysis`; the CLI renders them
as tables, ``--json`` or ``--csv``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from . import __version__
from .types import Analysis, Session

JSON_SCHEMA_VERSION = 1
TREND_MIN_SPAN_S = 20.0  # a drift slope from a few seconds of playing is noise


@dataclass(frozen=True)
class ChannelStats:
    """Timing of one close mic against the grid, its static delay removed."""

    stem: str
    role: str
    n_hits: int
    n_bleed_rejected: int
    mean_ms: float  # negative: rushing (ahead of the grid)
    sd_ms: float
    p95_abs_ms: float
    trend_ms_per_min: float  # slope of deviation over time: positive = drifting late (dragging)

    @property
    def tendency(self) -> str:
        if self.n_hits < 2:
            return "-"
        if abs(self.mean_ms) < 2.0 and abs(self.trend_ms_per_min) < 2.0:
            return "on the grid"
        word = "behind" if self.mean_ms > 0 else "ahead"
        drift = ""
        if abs(self.trend_ms_per_min) >= 2.0:
            drift = ", dragging" if self.trend_ms_per_min > 0 else ", rushing"
        return f"{word}{drift}"


def stem_deviations_ms(analysis: Analysis, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """(times_s, deviations_ms) of one stem's own onsets against their hits' slots."""
    times, devs = [], []
    delay_s = analysis.delay_s(stem)
    for hit in analysis.hits:
        if stem in hit.onsets:
            t = hit.onsets[stem] - delay_s
            times.append(t)
            devs.append((t - analysis.grid.slot_time(hit.slot)) * 1000.0)
    return np.asarray(times, dtype=float), np.asarray(devs, dtype=float)


def channel_stats(analysis: Analysis, session: Session) -> list[ChannelStats]:
    rejected: dict[str, int] = {}
    for onset in analysis.rejected:
        rejected[onset.stem] = rejected.get(onset.stem, 0) + 1
    out = []
    for stem in session.close_stems:
        times, devs = stem_deviations_ms(analysis, stem.name)
        if devs.size:
            mean, sd, p95 = float(devs.mean()), float(devs.std()), float(np.percentile(np.abs(devs), 95))
        else:
            mean = sd = p95 = 0.0
        trend = 0.0
        if devs.size >= 8 and np.ptp(times) >= TREND_MIN_SPAN_S:
            trend = float(np.polyfit(times / 60.0, devs, 1)[0])
        out.append(ChannelStats(stem.name, stem.role, int(devs.size), rejected.get(stem.name, 0),
                                mean, sd, p95, trend))
    return out


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def analysis_document(analysis: Analysis, session: Session, *, grid_spec: str) -> dict:
    """The ``report --json`` document (schema documented in the README)."""
    grid = analysis.grid
    return {
        "schema": JSON_SCHEMA_VERSION,
        "beatfix_version": __version__,
        "engine": analysis.engine,
        "sample_rate": analysis.sample_rate,
        "duration_s": _r(analysis.duration_s),
        "tempo_bpm": _r(analysis.tempo_bpm, 3),
        "tempo_candidates": [{"bpm": _r(c.bpm, 2), "strength": _r(c.strength, 3)} for c in analysis.tempo_candidates],
        "grid": {"resolution": grid_spec, "steps_per_beat": grid.steps_per_beat,
                 "offset_s": _r(grid.offset_s, 6), "swing_pct": grid.swing_pct},
        "grid_offset_s": _r(grid.offset_s, 6),
        "stems": [{"name": s.name, "role": s.role, "channels": s.n_channels} for s in session.stems],
        "mic_delays_ms": {d.stem: _r(d.delay_ms, 3) for d in analysis.mic_delays},
        "mic_polarity": {d.stem: d.polarity for d in analysis.mic_delays},
        "mic_delay_reference": {d.stem: d.reference for d in analysis.mic_delays},
        "mic_polarity_check": analysis.polarity_check.as_dict() if analysis.polarity_check is not None else None,
        "channels": [
            {k: (_r(v, 3) if isinstance(v, float) else v) for k, v in asdict(c).items()}
            for c in channel_stats(analysis, session)
        ],
        "hits": [
            {"time_s": _r(h.time_s, 6), "slot": int(h.slot), "deviation_ms": _r(h.deviation_ms, 3),
             "spread_ms": _r(h.spread_ms, 3), "channels": {k: _r(v, 6) for k, v in h.onsets.items()}}
            for h in analysis.hits
        ],
        "flams": [
            {"time_s": _r(f.time_s, 6), "slot": int(f.slot), "spread_ms": _r(f.spread_ms, 3),
             "deliberate": bool(f.deliberate), "channels": {k: _r(v, 6) for k, v in f.channels.items()}}
            for f in analysis.flams
        ],
        "bleed_rejected": [
            {"stem": o.stem, "time_s": _r(o.time_s, 6), "level_db": _r(o.level_db, 2)} for o in analysis.rejected
        ],
        "tempo_source": analysis.tempo_source,
        "tempo_map": tempo_map_document(analysis),
        "feel": analysis.feel.as_dict() if analysis.feel is not None else None,
        "grid_fit": analysis.fit.as_dict() if analysis.fit is not None else None,
    }


def tempo_map_document(analysis: Analysis) -> dict:
    """The tempo the grid follows: segments (constant or ramp, with meter), changes, bar 1."""
    tm = analysis.tempo_map if analysis.tempo_map is not None else analysis.grid.tempo_map
    segments = tm.segments(start_s=0.0, end_s=analysis.duration_s)
    return {
        "source": analysis.tempo_source,
        "bar1_s": _r(float(tm.time_at(0.0)), 6),
        "segments": segments,
        "changes_s": [_r(t, 4) for t in analysis.tempo_changes_s],
        "meters": [{"bar_beat": tm.label(m.position_q), "meter": m.label} for m in tm.meters],
    }


def session_tempo_map(analysis: Analysis):
    """The grid's tempo map, for export (a fixed tempo is a one-tempo 4/4 map)."""
    return analysis.tempo_map if analysis.tempo_map is not None else analysis.grid.tempo_map


def hits_midi_tracks(analysis: Analysis, session: Session) -> dict:
    """``played`` (each close mic's onsets as performed) and ``on grid`` (each at its hit's slot) as GM notes."""
    from .midi_io import gm_note, velocity_from_level

    roles = {s.name: s.role for s in session.stems}
    toms = sorted(n for n, r in roles.items() if r == "tom")
    tom_index = {n: i for i, n in enumerate(toms)}
    top: dict[str, float] = {}
    for o in analysis.onsets:
        top[o.stem] = max(top.get(o.stem, -200.0), o.level_db)
    level = {(o.stem, round(o.time_s, 6)): o.level_db for o in analysis.onsets}
    played, on_grid = [], []
    for h in analysis.hits:
        slot_s = float(analysis.grid.slot_time(h.slot))
        for stem, onset_s in h.onsets.items():
            note = gm_note(roles.get(stem, "perc"), stem, tom_index)
            vel = velocity_from_level(level.get((stem, round(onset_s, 6)), top.get(stem, 0.0)), top.get(stem, 0.0))
            played.append((onset_s - analysis.delay_s(stem), note, vel))
            on_grid.append((slot_s, note, vel))
    return {"played": sorted(played), "on grid": sorted(on_grid)}


def hits_csv(analysis: Analysis, stems: Sequence[str]) -> str:
    """One row per hit: time, slot, deviation, spread and each close mic's onset."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["time_s", "slot", "slot_time_s", "deviation_ms", "spread_ms", *[f"{s}_onset_s" for s in stems]])
    for h in analysis.hits:
        onsets = [f"{h.onsets[s]:.6f}" if s in h.onsets else "" for s in stems]
        writer.writerow([f"{h.time_s:.6f}", h.slot, f"{analysis.grid.slot_time(h.slot):.6f}",
                         f"{h.deviation_ms:.3f}", f"{h.spread_ms:.3f}", *onsets])
    return buf.getvalue()
