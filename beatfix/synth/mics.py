"""Microphone setups drawn at random: which mics, and how each drum reaches each of them.

A mic is a stem of one or two channels. Every drum reaches every channel
with a gain and a delay in whole samples (so truth onsets are exact); a room
mic adds a synthetic reverb whose impulse response starts with the direct
sound at tap 0, so its onsets are exact too.

* close mics (kick, snare, hh, tom1/tom2/ft, and sometimes ride, crash,
  snare_bottom, kick_out): own drum at 0 dB and 0-1 ms, every other drum
  :data:`BLEED_DB` lower and :data:`BLEED_EXTRA_MS` later;
* overheads, one stereo ``overheads`` stem or ``oh_l`` + ``oh_r``: every drum
  2-5 ms late per side, panned by where it sits on the kit;
* a room (mono or stereo, sometimes a second ``room_far``): 8-20 ms late, with
  an exponentially decaying filtered-noise tail, RT60 0.3-1.2 s.

Stem names are ones :func:`beatfix.roles.role_from_name` recognises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

import numpy as np
from scipy import signal

from ..errors import ParameterError
from ..roles import role_from_name

BLEED_DB = (-35.0, -20.0)
BLEED_EXTRA_MS = (1.0, 4.0)
OWN_DELAY_MS = (0.0, 1.0)
OVERHEAD_DELAY_MS = (2.0, 5.0)
ROOM_DELAY_MS = (8.0, 20.0)
RT60_S = (0.3, 1.2)
MAX_CHANNELS = 16

_TOM_MICS = {"tom_high": "tom1", "tom_mid": "tom2", "tom_low": "ft"}
MIC_NAMES = ("kick", "kick_out", "snare", "snare_bottom", "hh", "tom1", "tom2", "ft", "ride", "crash",
             "overheads", "room", "room_far")
# Where a drum sits, seen from the overheads: -1 hard left (hi-hat side) .. +1 right.
_PAN = {"kick": 0.0, "snare": -0.2, "hat": -0.65, "hat_open": -0.65, "tom_high": -0.25, "tom_mid": 0.15,
        "tom_low": 0.6, "ride": 0.7, "crash": -0.45}
_OVERHEAD_DB = {"kick": (-16.0, -8.0), "snare": (-8.0, -3.0), "hat": (-8.0, -3.0), "ride": (-6.0, -1.0),
                "crash": (-4.0, 0.0)}


@dataclass(frozen=True)
class Feed:
    """How one drum reaches one stem: per channel gain and delay."""

    gain_db: tuple[float, ...]
    delay_samples: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Mic:
    name: str  # stem name, also its file name without extension
    role: str
    n_channels: int
    feeds: Mapping[str, Feed]  # drum -> feed
    polarity: int = 1  # -1: wired inverted, as a snare-bottom mic often is
    reverb_ir: np.ndarray | None = None  # (n_channels, n_taps) float32, tap 0 = 1.0 is the direct sound
    rt60_s: float | None = None
    predelay_ms: float | None = None


@dataclass(frozen=True)
class MicSetup:
    mics: tuple[Mic, ...]
    sample_rate: int

    @property
    def n_channels(self) -> int:
        return sum(m.n_channels for m in self.mics)


def _source(drum: str) -> str:
    """Open and closed hat are one instrument in one place: they share every feed."""
    return "hat" if drum == "hat_open" else drum


def _samples(ms: float, sample_rate: int) -> int:
    return int(round(ms * sample_rate / 1000.0))


def random_mics(rng: np.random.Generator, *, drums: Collection[str], sample_rate: int, n_channels: int,
                overheads_stereo_file: bool = False, room_stereo: bool = False,
                names: Sequence[str] | None = None) -> MicSetup:
    """Draw a setup of about ``n_channels`` channels (2-16) for the drums that are played.

    Kick and snare close mics are always there; others are added in a random
    priority order while they fit. The result may have fewer channels than
    asked when the kit offers no more mics. ``names`` (from :data:`MIC_NAMES`)
    fixes the mics instead; their gains and delays are still drawn.
    """
    drums = sorted(set(drums))
    if names is not None:
        unknown = [n for n in names if n not in MIC_NAMES]
        if unknown or not names:
            raise ParameterError(f"unknown mic {unknown[0] if unknown else '(none)'!r}: use {', '.join(MIC_NAMES)}")
        wanted = list(dict.fromkeys(names))
    else:
        if not 2 <= n_channels <= MAX_CHANNELS:
            raise ParameterError(f"{n_channels} channels is out of range: use 2 to {MAX_CHANNELS}")
        wanted = _choose_mics(rng, drums, n_channels, room_stereo)
    has_bottom, has_out = "snare_bottom" in wanted, "kick_out" in wanted
    mics: list[Mic] = []
    for name in wanted:
        if name in ("room", "room_far"):
            mics.append(_room(rng, name, drums, sample_rate, 2 if room_stereo else 1))
        elif name == "overheads":
            if overheads_stereo_file:
                mics.append(_overheads(rng, "overheads", drums, sample_rate, sides=(-1, 1)))
            else:
                pair = _overheads(rng, "", drums, sample_rate, sides=(-1, 1))
                for ch, side in enumerate(("oh_l", "oh_r")):
                    feeds = {d: Feed((f.gain_db[ch],), (f.delay_samples[ch],)) for d, f in pair.feeds.items()}
                    mics.append(Mic(side, "overhead", 1, feeds))
        else:
            # With a second kick or snare mic the first is named for its side, as engineers do.
            renamed = {"kick": "kick_in" if has_out else "kick", "snare": "snare_top" if has_bottom else "snare"}
            stem = renamed.get(name, name)
            mics.append(_close(rng, stem, _own_drums(name), drums, sample_rate))
    mics = _maybe_invert(rng, mics)
    return MicSetup(mics=tuple(mics), sample_rate=int(sample_rate))


def _own_drums(mic: str) -> tuple[str, ...]:
    own = {"kick": ("kick",), "kick_out": ("kick",), "snare": ("snare",), "snare_bottom": ("snare",),
           "hh": ("hat", "hat_open"), "ride": ("ride",), "crash": ("crash",)}
    if mic in own:
        return own[mic]
    return tuple(d for d, name in _TOM_MICS.items() if name == mic)


def _choose_mics(rng: np.random.Generator, drums: list[str], n_channels: int, room_stereo: bool) -> list[str]:
    room_ch = 2 if room_stereo else 1
    toms = [(_TOM_MICS[d], 1) for d in ("tom_high", "tom_mid", "tom_low") if d in drums]
    groups: list[list[tuple[str, int]]] = [[("room", room_ch)], toms]
    if "hat" in drums or "hat_open" in drums:
        groups.append([("hh", 1)])
    extras = [("snare_bottom", 1), ("kick_out", 1), ("room_far", room_ch)]
    extras += [(d, 1) for d in ("ride", "crash") if d in drums]
    order = [("overheads", 2)]
    for i in rng.permutation(len(groups)):
        order += groups[i]
    order += [extras[i] for i in rng.permutation(len(extras))]
    chosen, used = ["kick", "snare"], 2
    for name, width in order:
        if used + width <= n_channels:
            chosen.append(name)
            used += width
    return chosen


def _close(rng: np.random.Generator, name: str, own: tuple[str, ...], drums: list[str], sample_rate: int) -> Mic:
    own_delay = _samples(rng.uniform(*OWN_DELAY_MS), sample_rate)
    by_source: dict[str, Feed] = {}
    for drum in drums:
        src = _source(drum)
        if src in by_source:
            continue
        if drum in own:
            by_source[src] = Feed((0.0,), (own_delay,))
        else:
            extra = _samples(rng.uniform(*BLEED_EXTRA_MS), sample_rate)
            by_source[src] = Feed((float(rng.uniform(*BLEED_DB)),), (own_delay + extra,))
    feeds = {d: by_source[_source(d)] for d in drums}
    return Mic(name, role_from_name(name), 1, feeds)


def _overheads(rng: np.random.Generator, name: str, drums: list[str], sample_rate: int,
               sides: tuple[int, ...]) -> Mic:
    by_source: dict[str, Feed] = {}
    lo, hi = OVERHEAD_DELAY_MS
    for drum in drums:
        src = _source(drum)
        if src in by_source:
            continue
        pan = float(np.clip(_PAN[src] + rng.normal(0.0, 0.1), -1.0, 1.0))
        centre_ms = rng.uniform(lo + 0.5, hi - 0.5)
        level = float(rng.uniform(*_OVERHEAD_DB.get(src, (-10.0, -4.0))))
        gains, delays = [], []
        for side in sides:
            # The nearer side hears a drum sooner and louder.
            near = side * pan
            delay_ms = float(np.clip(centre_ms - 0.6 * near + rng.uniform(-0.2, 0.2), lo, hi))
            gains.append(level + 3.0 * near)
            delays.append(_samples(delay_ms, sample_rate))
        by_source[src] = Feed(tuple(gains), tuple(delays))
    feeds = {d: by_source[_source(d)] for d in drums}
    return Mic(name or "overheads", "overhead", len(sides), feeds)


def _room(rng: np.random.Generator, name: str, drums: list[str], sample_rate: int, n_channels: int) -> Mic:
    lo, hi = ROOM_DELAY_MS
    base_ms = rng.uniform(lo, hi)
    by_source: dict[str, Feed] = {}
    for drum in drums:
        src = _source(drum)
        if src in by_source:
            continue
        level = float(rng.uniform(-6.0, 0.0) if src in ("kick", "snare") else rng.uniform(-9.0, -2.0))
        delay_ms = np.clip(base_ms + rng.uniform(-1.5, 1.5) + rng.uniform(-0.5, 0.5, n_channels), lo, hi)
        gains = level + rng.uniform(-1.5, 1.5, n_channels)
        by_source[src] = Feed(tuple(float(g) for g in gains), tuple(_samples(d, sample_rate) for d in delay_ms))
    feeds = {d: by_source[_source(d)] for d in drums}
    rt60_s = float(rng.uniform(*RT60_S))
    predelay_ms = float(rng.uniform(3.0, 10.0))
    ir = np.stack([_reverb_ir(rng, sample_rate, rt60_s, predelay_ms) for _ in range(n_channels)])
    return Mic(name, "room", n_channels, feeds, reverb_ir=ir, rt60_s=rt60_s, predelay_ms=predelay_ms)


def _reverb_ir(rng: np.random.Generator, sample_rate: int, rt60_s: float, predelay_ms: float) -> np.ndarray:
    """Direct sound at tap 0, then a few early reflections and a decaying filtered-noise tail.

    Nothing precedes tap 0, so a drum's onset in the room is exactly its direct-sound delay.
    """
    n_taps = int(rt60_s * sample_rate)
    t = np.arange(n_taps) / sample_rate
    tail = rng.standard_normal(n_taps) * np.exp(-6.9078 * t / rt60_s)  # -60 dB at rt60
    tail = signal.sosfilt(signal.butter(2, min(rng.uniform(3000.0, 8000.0), 0.45 * sample_rate),
                                        fs=sample_rate, output="sos"), tail)
    start = _samples(predelay_ms, sample_rate)
    tail[:start] = 0.0
    # A room mic hears more room than kit: the tail carries 1-4x the direct energy.
    tail *= np.sqrt(rng.uniform(1.0, 4.0) / np.sum(tail**2))
    for _ in range(4):
        tap = _samples(rng.uniform(2.0, 25.0), sample_rate)
        if tap < n_taps:
            tail[tap] += rng.uniform(0.15, 0.45) * rng.choice([-1.0, 1.0])
    tail[0] = 1.0
    return tail.astype(np.float32)


def _maybe_invert(rng: np.random.Generator, mics: list[Mic]) -> list[Mic]:
    names = [m.name for m in mics]
    target = None
    if "snare_bottom" in names and rng.random() < 0.7:
        target = "snare_bottom"
    elif rng.random() < 0.15:
        close = [m.name for m in mics if m.role not in ("overhead", "room")]
        target = close[int(rng.integers(len(close)))]
    return [Mic(m.name, m.role, m.n_channels, m.feeds, -1, m.reverb_ir, m.rt60_s, m.predelay_ms)
            if m.name == target else m for m in mics]
