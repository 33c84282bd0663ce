"""Click tracks: recognise one among the stems, and read the song's beats from it.

A click is a train of short identical blips at a steady rate (or following
the song's tempo map), with silence between them: nothing a drum mic
records. A stem is called a click when

* it has at least MIN_BLIPS blips, each decaying below DECAY_DB within
  BLIP_MS (a drum, a cymbal or an overhead rings far longer),
* their waveforms are alike (median normalised correlation of each blip's
  first BLIP_MS with the median blip above SAME_BLIP), and
* consecutive intervals change by less than STEADY (a click never jumps
  between two beats, a drummer's strokes do).

The loud blip of a bar (the accent most clicks give beat 1) sets bar 1 and
the meter. Pure: arrays in, times and a :class:`TempoMap` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal as sps

from .tempomap import TempoMap

if TYPE_CHECKING:
    from .types import Session, Stem

MIN_BLIPS = 8
BLIP_MS = 25.0
DECAY_DB = 30.0
SAME_BLIP = 0.85
STEADY = 0.03
THRESHOLD_DB = 24.0  # blips are found within this of the loudest
REFRACTORY_S = 0.08
ACCENT_DB = 1.5
MAX_DENSITY = 0.10  # a click's blips are loud for a few ms a beat: at most a tenth of the time  # beat 1's blip is this much louder (or brighter) than the others


@dataclass(frozen=True)
class ClickTrack:
    beats_s: np.ndarray  # onset of every blip, in seconds
    beats_per_bar: int  # from the accent pattern; 0 when the click has no accent
    first_downbeat: int  # index of the first accented blip
    confidence: float  # 0..1: how identical and steady the blips are

    def tempo_map(self) -> TempoMap:
        meter = self.beats_per_bar if self.beats_per_bar in (2, 3, 4, 5, 6, 7) else 4
        first = self.first_downbeat if self.beats_per_bar else 0
        return TempoMap.from_beats(self.beats_s, meters=[(0, meter, 4)], first_beat=first)


def _blips(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Sample index of each blip's onset: where the envelope first rises within THRESHOLD_DB of the peak."""
    env = np.abs(mono)
    peak = float(env.max()) if env.size else 0.0
    if peak <= 0:
        return np.zeros(0, dtype=int)
    above = env >= peak * 10 ** (-THRESHOLD_DB / 20.0)
    idx = np.flatnonzero(above)
    if idx.size == 0:
        return idx
    gap = int(REFRACTORY_S * sample_rate)
    starts = idx[np.concatenate([[True], np.diff(idx) > gap])]
    # back to where the blip leaves the noise: 40 dB under its own peak
    out = []
    for s in starts:
        lo = max(0, s - int(0.005 * sample_rate))
        seg = env[lo: s + 1]
        local = env[s: s + int(0.005 * sample_rate)].max()
        quiet = np.flatnonzero(seg < local * 0.01)
        out.append(lo + (quiet[-1] + 1 if quiet.size else 0))
    return np.asarray(out, dtype=int)


def analyse_click(mono: np.ndarray, sample_rate: int) -> ClickTrack | None:
    """The click in ``mono`` ``(n_samples,)``, or None when it is not one."""
    if _too_dense(np.asarray(mono), sample_rate):
        return None
    mono = np.asarray(mono, dtype=np.float64)
    onsets = _blips(mono, sample_rate)
    if onsets.size < MIN_BLIPS:
        return None
    n = int(BLIP_MS / 1000.0 * sample_rate)
    onsets = onsets[onsets + 2 * n < mono.size]
    if onsets.size < MIN_BLIPS:
        return None
    blips = np.stack([mono[o: o + n] for o in onsets])
    levels = np.sqrt(np.mean(blips**2, axis=1)) + 1e-12
    # short: BLIP_MS after the blip, it has decayed by DECAY_DB
    tails = np.sqrt(np.mean(np.stack([mono[o + n: o + 2 * n] for o in onsets]) ** 2, axis=1)) + 1e-12
    if np.median(20 * np.log10(levels / tails)) < DECAY_DB:
        return None
    unit = blips / np.linalg.norm(blips, axis=1, keepdims=True)
    ref = np.median(unit, axis=0)
    ref /= np.linalg.norm(ref) + 1e-12
    # allow a blip one or two samples off (and the accent's other pitch) by the best lag within 0.5 ms
    lag = max(1, int(0.0005 * sample_rate))
    corr = np.array([np.max(sps.correlate(u, ref, mode="full")[n - 1 - lag: n + lag]) for u in unit])
    ioi = np.diff(onsets) / sample_rate
    step = np.abs(np.diff(ioi)) / ioi[1:]
    if np.median(corr) < SAME_BLIP or np.percentile(step, 90) > STEADY:
        return None
    level_db = 20 * np.log10(levels)
    bright = np.array([_centroid(b, sample_rate) for b in blips])
    per_bar, first = _accents(level_db, bright)
    confidence = float(np.clip(np.median(corr), 0, 1) * np.clip(1 - np.percentile(step, 90) / STEADY, 0, 1))
    return ClickTrack(onsets / sample_rate, per_bar, first, confidence)


def _too_dense(mono: np.ndarray, sample_rate: int) -> bool:
    """Loud for more than MAX_DENSITY of the time (ms by ms): a drum mic, an overhead, a room, never a click.

    A cheap first look (block maxima, no copy of the audio), so a long session's other stems cost little.
    """
    block = max(1, int(sample_rate // 1000))
    m = (mono.size // block) * block
    if m == 0:
        return True
    blocks = mono[:m].reshape(-1, block)
    env = np.maximum(blocks.max(axis=1), -blocks.min(axis=1))
    peak = float(env.max())
    return peak <= 0 or float(np.mean(env >= peak * 10 ** (-THRESHOLD_DB / 20.0))) > MAX_DENSITY


def _centroid(x: np.ndarray, sample_rate: int) -> float:
    spec = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(x.size, 1.0 / sample_rate)
    return float(np.sum(spec * freqs) / (np.sum(spec) + 1e-12))


def _accents(level_db: np.ndarray, bright_hz: np.ndarray) -> tuple[int, int]:
    """(beats per bar, index of the first accented blip) from a louder or higher blip every n beats."""
    accent = (level_db - np.median(level_db) > ACCENT_DB) | (bright_hz > np.median(bright_hz) * 1.15)
    idx = np.flatnonzero(accent)
    if idx.size < 2 or idx.size > level_db.size / 1.5:
        return 0, 0
    per_bar = int(np.median(np.diff(idx)))
    return (per_bar, int(idx[0])) if 2 <= per_bar <= 12 else (0, 0)


def set_aside(session: "Session") -> tuple["Session", tuple["Stem", ...], dict[str, ClickTrack], list[str]]:
    """Split off the stems beatfix must not edit: clicks (by name or by content) and non-drum instruments.

    Returns the drum session, the stems set aside (roles ``click``/``nondrum``),
    the click tracks found (stem name -> :class:`ClickTrack`) and one message per stem set aside.
    """
    from dataclasses import replace

    from .types import CLOSE_ROLES, UNTOUCHED_ROLES, Session

    keep, aside, clicks, messages = [], [], {}, []
    for stem in session.stems:
        role = stem.role
        if role not in CLOSE_ROLES and role not in UNTOUCHED_ROLES or role == "click":
            found = analyse_click(stem.mono(), session.sample_rate)
            if found is not None:
                clicks[stem.name] = found
                if role != "click":
                    stem = replace(stem, role="click")
        if stem.role in UNTOUCHED_ROLES:
            aside.append(stem)
            what = "a click track" if stem.role == "click" else "not a drum mic"
            how = "by its content" if stem.name in clicks and role != "click" else "by its name"
            tip = f" (pass --click {stem.path.name if stem.path else stem.name} to use it as the grid)" \
                if stem.role == "click" and stem.name in clicks else ""
            messages.append(f"{stem.name}: {what} ({how}), written unchanged{tip}")
        else:
            keep.append(stem)
    return Session(tuple(keep), session.sample_rate), tuple(aside), clicks, messages
