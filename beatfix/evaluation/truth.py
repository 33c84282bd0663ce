"""Truth helpers: the true grid, which close stems own which drums, mic delays, where each hit belongs."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ..grid import Grid, MapGrid

OWN_WITHIN_DB = 10.0  # a close stem's own drums are this close to its loudest drum...
OWN_CLEAR_DB = 15.0  # ...and this far above every other drum (bleed is 20-35 dB down)
FOLLOWER_ROLES = ("overhead", "room", "other")


# ----------------------------------------------------------------------------- truth helpers


def truth_grid(truth: Mapping) -> Grid | MapGrid:
    """The session's true grid: a :class:`MapGrid` of its tempo map when the truth has one (tempo curves,
    meters, count-ins), else the fixed :class:`Grid` of ``bpm`` and ``grid_offset_s``, exactly as before."""
    if "tempo_map" not in truth:
        return Grid(bpm=float(truth["bpm"]), offset_s=float(truth["grid_offset_s"]),
                    steps_per_beat=float(truth["steps_per_beat"]), swing_pct=float(truth.get("swing_pct", 50.0)))
    from ..synth.timeline import truth_tempo_map

    return MapGrid(truth_tempo_map(truth), steps_per_beat=float(truth["steps_per_beat"]),
                   swing_pct=float(truth.get("swing_pct", 50.0)), span_s=(0.0, float(truth["duration_s"])))


def truth_step_s(truth: Mapping) -> float:
    """The session's shortest grid step: at its fastest tempo when the tempo moves (half of it is how far
    a hit may sit from its slot before it is nearer another)."""
    if "tempo_map" not in truth:
        return 60.0 / truth["bpm"] / truth["steps_per_beat"]
    grid = truth_grid(truth)
    return float(np.min(grid.step_at(np.linspace(0.0, float(truth["duration_s"]), 1024))))


def close_stems(truth: Mapping) -> list[dict]:
    return [ch for ch in truth["channels"] if ch["role"] not in FOLLOWER_ROLES]


def own_drums(channel: Mapping) -> list[str]:
    """Drums a close channel is the mic of: within :data:`OWN_WITHIN_DB` of its loudest drum, and clear of the rest.

    A mic hears its own drum at 0 dB and every other 20-35 dB down, so the
    own group stands at least :data:`OWN_CLEAR_DB` above the loudest bleed. A
    tom mic on a take without toms hears bleed only, and owns nothing.
    """
    drums = channel["drums"]
    gains = {d: max(info["gain_db"]) for d, info in drums.items()}
    if not gains:
        return []
    top = max(gains.values())
    own = [d for d, g in gains.items() if g >= top - OWN_WITHIN_DB]
    rest = [g for d, g in gains.items() if d not in own]
    # One source (open and closed hat share theirs): the same gains and delays.
    one_source = len({(tuple(drums[d]["gain_db"]), tuple(drums[d]["delay_samples"])) for d in own}) == 1
    return own if one_source and (not rest or top - max(rest) >= OWN_CLEAR_DB) else []


def own_stems(truth: Mapping) -> dict[str, list[str]]:
    """Drum -> close stems it is the own drum of, loudest first (kick in before kick out, say)."""
    out: dict[str, list[tuple[float, str]]] = {}
    for ch in close_stems(truth):
        for d in own_drums(ch):
            out.setdefault(d, []).append((max(ch["drums"][d]["gain_db"]), ch["stem"]))
    return {d: [s for _, s in sorted(v, reverse=True)] for d, v in out.items()}


def _channel(truth: Mapping, stem: str) -> dict:
    return next(ch for ch in truth["channels"] if ch["stem"] == stem)


def _delay(truth: Mapping, stem: str, drum: str, channel: int | None = None) -> float:
    delays = _channel(truth, stem)["drums"][drum]["delay_samples"]
    return float(delays[channel] if channel is not None else np.median(delays))


def expected_times_s(truth: Mapping) -> np.ndarray:
    """Where each truth hit belongs: its slot time; a deliberate flam's grace keeps its gap to the main stroke."""
    hits = truth["hits"]
    main = {(h["slot"], h["drum"]): h["performed_time_s"] for h in hits if h["deliberate_flam"] and not h["grace"]}
    out = np.array([h["grid_time_s"] for h in hits], dtype=float)
    for h in hits:
        if h["grace"] and (h["slot"], h["drum"]) in main:
            out[h["index"]] += h["performed_time_s"] - main[(h["slot"], h["drum"])]
    return out


def _measuring_channel(truth: Mapping, drum: str, owners: Mapping[str, list[str]]) -> tuple[str, int | None, bool]:
    """(stem, channel or None for the stem's mean, is close) where a drum's landing is measured.

    Its own close mic when it has one; else (a cymbal, a tom without a mic) the
    follower channel that hears it loudest.
    """
    if owners.get(drum):
        return owners[drum][0], None, True
    best = (-math.inf, "", 0)
    for ch in truth["channels"]:
        if ch["role"] in FOLLOWER_ROLES and drum in ch["drums"]:
            for c, g in enumerate(ch["drums"][drum]["gain_db"]):
                best = max(best, (g, ch["stem"], c))
    return best[1], best[2], False
