"""Seeded synthetic multitrack drum sessions with known truth, for the analysis tests.

A session is built from *events* (drum, source time, level). Each event is
rendered once as a dry one-shot, then placed in every mic with that mic's gain,
delay (fractional, by a windowed-sinc interpolator), polarity and colour: close
mics hear their own drum at 0 ms and the others as bleed 1-4 ms later at
-20...-35 dB; overheads hear everything 2-5 ms later; the room 8-20 ms later
through a decaying-noise reverb. So every onset and every mic delay is known to
a fraction of a sample.

Times in the truth are seconds in the close mic's timeline (a close mic hears
its own drum with no delay).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from beatfix.types import Session, Stem

DRUMS = ("kick", "snare", "hat", "tom")

# (mic name, role, own drum or None, polarity of own drum)
CLOSE_MICS = (
    ("kick", "kick", "kick"),
    ("snare_top", "snare", "snare"),
    ("snare_bottom", "snare", "snare"),
    ("hh", "hat", "hat"),
    ("tom1", "tom", "tom"),
)

OWN_DRUM = {mic: drum for mic, _, drum in CLOSE_MICS}

# Bleed into close mics: (mic, drum) -> (gain dB, delay ms). Own drums are (0, 0).
BLEED = {
    ("kick", "snare"): (-24.0, 2.3), ("kick", "hat"): (-34.0, 3.1), ("kick", "tom"): (-28.0, 2.7),
    ("snare_top", "kick"): (-26.0, 2.1), ("snare_top", "hat"): (-22.0, 1.4), ("snare_top", "tom"): (-22.0, 1.7),
    ("snare_bottom", "kick"): (-22.0, 1.9), ("snare_bottom", "hat"): (-30.0, 1.8),
    ("snare_bottom", "tom"): (-26.0, 1.9),
    ("hh", "kick"): (-32.0, 3.3), ("hh", "snare"): (-20.0, 1.3), ("hh", "tom"): (-30.0, 2.9),
    ("tom1", "kick"): (-22.0, 2.2), ("tom1", "snare"): (-20.0, 1.6), ("tom1", "hat"): (-28.0, 2.6),
}
SNARE_BOTTOM_DELAY_MS = 0.43  # shell depth: the bottom head is a little further from the stick
SNARE_BOTTOM_GAIN_DB = -4.0

# Followers: mic -> drum -> (gain dB, delay ms)
FOLLOWERS = {
    "oh_l": {"kick": (-12.0, 4.37), "snare": (-6.0, 2.61), "hat": (-3.0, 2.12), "tom": (-8.0, 3.05)},
    "oh_r": {"kick": (-12.0, 4.52), "snare": (-7.0, 3.18), "hat": (-9.0, 4.04), "tom": (-7.0, 2.33)},
    "room": {"kick": (-10.0, 14.21), "snare": (-9.0, 12.66), "hat": (-16.0, 13.35), "tom": (-11.0, 13.87)},
}
FOLLOWER_ROLES = {"oh_l": "overhead", "oh_r": "overhead", "room": "room"}

# Peak levels of the dry drums at 0 dB velocity, so mixes stay below full scale.
DRUM_LEVEL_DB = {"kick": -4.0, "snare": -5.0, "hat": -14.0, "tom": -7.0}


@dataclass(frozen=True)
class Event:
    drum: str
    time_s: float  # source time = onset in the drum's own close mic
    level_db: float  # velocity, dB relative to a normal stroke
    slot: int
    kind: str = "normal"  # "normal", "ghost", "grace"


@dataclass(frozen=True)
class Truth:
    bpm: float
    offset_s: float  # time of slot 0 before human timing
    steps_per_beat: int
    events: tuple[Event, ...]
    flams: tuple[tuple[int, float, bool], ...]  # (slot, spread_ms, deliberate)
    mic_delay_ms: dict  # stem -> (close mic -> delay ms of the stem against it)
    polarity: dict  # stem -> +1 / -1 against its reference

    def onsets(self, stem: str, drum: str | None = None, *, kinds=("normal", "ghost", "grace")) -> np.ndarray:
        """True onsets of ``drum`` (default: the mic's own) in close mic ``stem``, in that stem's time."""
        drum = drum or OWN_DRUM[stem]
        extra = SNARE_BOTTOM_DELAY_MS / 1000.0 if stem == "snare_bottom" else 0.0
        return np.array(sorted(e.time_s + extra for e in self.events if e.drum == drum and e.kind in kinds))

    def slots(self) -> dict[int, dict[str, float]]:
        """slot -> drum -> source time of the main (not grace) stroke."""
        out: dict[int, dict[str, float]] = {}
        for e in self.events:
            if e.kind != "grace":
                out.setdefault(e.slot, {})[e.drum] = e.time_s
        return out


@dataclass(frozen=True)
class Synth:
    session: Session
    truth: Truth


# ----------------------------------------------------------------------------- one-shots


def _env(n: int, sr: int, attack_ms: float, decay_s: float) -> np.ndarray:
    t = np.arange(n) / sr
    rise = np.clip(t / (attack_ms / 1000.0), 0.0, 1.0)
    return (np.sin(0.5 * np.pi * rise) ** 2) * np.exp(-t / decay_s)


def _highpass(x: np.ndarray, sr: int, hz: float, order: int = 2) -> np.ndarray:
    sos = sps.butter(order, hz, "highpass", fs=sr, output="sos")
    return sps.sosfilt(sos, x)  # causal: an onset never moves earlier


def _bandpass(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    sos = sps.butter(2, [lo, hi], "bandpass", fs=sr, output="sos")
    return sps.sosfilt(sos, x)


def one_shot(drum: str, sr: int, rng: np.random.Generator, *, bright: float = 1.0) -> np.ndarray:
    """A dry drum stroke whose attack starts exactly at sample 0 (peak about 1.0)."""
    if drum == "kick":
        n = int(0.6 * sr)
        t = np.arange(n) / sr
        f = 48.0 + 110.0 * np.exp(-t / 0.03)
        body = np.sin(2 * np.pi * np.cumsum(f) / sr) * _env(n, sr, 0.6, 0.18)
        click = _highpass(rng.standard_normal(n), sr, 1500.0) * _env(n, sr, 0.1, 0.004) * 0.6 * bright
        x = body + click
    elif drum == "snare":
        n = int(0.3 * sr)
        t = np.arange(n) / sr
        tone = (np.sin(2 * np.pi * 190.0 * t) + 0.5 * np.sin(2 * np.pi * 330.0 * t)) * _env(n, sr, 0.4, 0.05)
        noise = _bandpass(rng.standard_normal(n), sr, 1500.0, 9000.0) * _env(n, sr, 0.2, 0.055) * 0.9 * bright
        stick = _highpass(rng.standard_normal(n), sr, 800.0) * _env(n, sr, 0.1, 0.0015) * 1.2 * bright
        x = tone + noise + stick
    elif drum == "hat":
        n = int(0.12 * sr)
        x = _highpass(rng.standard_normal(n), sr, 7000.0, order=4) * _env(n, sr, 0.15, 0.03)
    elif drum == "tom":
        n = int(0.8 * sr)
        t = np.arange(n) / sr
        f = 110.0 + 40.0 * np.exp(-t / 0.05)
        body = np.sin(2 * np.pi * np.cumsum(f) / sr) * _env(n, sr, 0.5, 0.22)
        stick = _bandpass(rng.standard_normal(n), sr, 1000.0, 6000.0) * _env(n, sr, 0.1, 0.01) * 0.4 * bright
        x = body + stick
    else:
        raise ValueError(drum)
    fade = len(x) // 2  # ring out smoothly: a truncated tail would be an attack of its own
    x[-fade:] *= np.cos(0.5 * np.pi * np.arange(fade) / fade) ** 2
    return x / np.max(np.abs(x))


def _place(out: np.ndarray, x: np.ndarray, start_s: float, sr: int) -> None:
    """Add ``x`` to ``out`` so that its sample 0 lands at ``start_s`` (fractional, sinc-interpolated)."""
    pos = start_s * sr
    i0 = int(np.floor(pos))
    frac = pos - i0
    if frac > 1e-9:
        taps = np.arange(-15, 17)  # 32-tap Kaiser-windowed sinc: flat to ~18 kHz
        h = np.sinc(taps - frac) * np.kaiser(32, 8.0)
        h /= h.sum()
        x = np.convolve(x, h)  # output index j <-> input time j - 15 - frac
        i0 -= 15
    lo, hi = max(i0, 0), min(i0 + len(x), len(out))
    if hi > lo:
        out[lo:hi] += x[lo - i0 : hi - i0]


# ----------------------------------------------------------------------------- patterns


def rock_pattern(bars: int, steps_per_beat: int = 4, *, ghosts: bool = True, sixteenth_hats: bool = False,
                 toms: bool = True) -> list[tuple[int, str, float, str]]:
    """(slot, drum, level dB, kind): kick on 1 and 3 (+ the 'a' of 2), snare 2 and 4, hat 8ths."""
    spb = steps_per_beat
    events = []
    for bar in range(bars):
        b0 = bar * 4 * spb
        hat_step = 1 if sixteenth_hats else 2
        for s in range(0, 4 * spb, hat_step * spb // 4):
            events.append((b0 + s, "hat", -2.0 if s % spb == 0 else -6.0, "normal"))
        events += [(b0, "kick", 0.0, "normal"), (b0 + 2 * spb, "kick", -2.0, "normal"),
                   (b0 + spb + 3 * spb // 4, "kick", -5.0, "normal")]
        events += [(b0 + spb, "snare", 0.0, "normal"), (b0 + 3 * spb, "snare", 0.0, "normal")]
        if ghosts:
            # one ghost alone on a 16th, one under an 8th-note hat
            events += [(b0 + 2 * spb + 3 * spb // 4, "snare", -20.0, "ghost"),
                       (b0 + spb + spb // 2, "snare", -22.0, "ghost")]
        if toms and bar % 2 == 1:
            events += [(b0 + 3 * spb + spb // 2, "tom", -1.0, "normal"),
                       (b0 + 3 * spb + 3 * spb // 4, "tom", -3.0, "normal")]
    return events


def shuffle_pattern(bars: int) -> list[tuple[int, str, float, str]]:
    """A shuffle on 1/8 triplets (3 steps a beat): hats on the 1st and 3rd triplet, kick 1 and 3, snare 2 and 4,
    a ghost on the middle triplet of beat 4."""
    events = []
    for bar in range(bars):
        b0 = bar * 12
        for beat in range(4):
            events += [(b0 + 3 * beat, "hat", -2.0, "normal"), (b0 + 3 * beat + 2, "hat", -7.0, "normal")]
        events += [(b0, "kick", 0.0, "normal"), (b0 + 6, "kick", -2.0, "normal"), (b0 + 8, "kick", -5.0, "normal")]
        events += [(b0 + 3, "snare", 0.0, "normal"), (b0 + 9, "snare", 0.0, "normal"),
                   (b0 + 10, "snare", -20.0, "ghost")]
    return events


# ----------------------------------------------------------------------------- builder


@dataclass
class Spec:
    bpm: float = 120.0
    bars: int = 2
    sample_rate: int = 44100
    seed: int = 0
    offset_s: float = 0.31  # slot 0; the first downbeat is not at 0 s
    steps_per_beat: int = 4
    jitter_ms: float = 3.0  # std of the human timing of a whole slot
    sloppy_ms: float = 0.0  # if set: slot timing uniform in +-sloppy_ms instead of jitter_ms
    drum_jitter_ms: float = 0.6  # std of the timing between drums inside a slot (< flam threshold)
    drift_ms: float = 0.0  # amplitude of a slow sinusoidal push/pull
    drift_period_beats: float = 8.0
    ghosts: bool = True
    toms: bool = True
    sixteenth_hats: bool = False
    flams: tuple[tuple[int, float], ...] = ()  # (slot, ms): snare this late against the slot's kick/hat
    deliberate: tuple[tuple[int, float], ...] = ()  # (slot, ms): snare grace note this early
    close: tuple[str, ...] = ("kick", "snare_top", "snare_bottom", "hh", "tom1")
    followers: tuple[str, ...] = ("oh_l", "oh_r", "room")
    silent: tuple[str, ...] = ()  # stems rendered as digital silence
    bleed_boost_db: float = 0.0  # added to every close-mic bleed level
    tail_s: float = 0.8
    pattern: list | None = None  # overrides rock_pattern: (slot, drum, level dB, kind)
    tempo_map: object | None = None  # a beatfix TempoMap: slots follow it (bpm and offset_s are then unused)
    swing_pct: float = 50.0  # with tempo_map: odd steps of each bar this much later
    # drum -> dB: each stroke of that drum reaches the followers up to this much louder or softer
    # (seeded, uniform), as a hi-hat played open, closed, on its edge or tip does
    follower_gain_spread_db: tuple[tuple[str, float], ...] = ()
    inverted: tuple[str, ...] = ()  # close mics wired with their polarity flipped (a whole stem, no randomness)


def make_events(spec: Spec) -> list[Event]:
    """The performance of ``spec`` (what make_session renders), without rendering any audio."""
    return sorted(_events(spec, np.random.default_rng(spec.seed))[0], key=lambda e: e.time_s)


def _events(spec: Spec, rng: np.random.Generator) -> tuple[list[Event], list[tuple[int, float, bool]]]:
    step_s = 60.0 / spec.bpm / spec.steps_per_beat

    def slot_time(slot):
        return spec.offset_s + slot * step_s

    if spec.tempo_map is not None:
        from beatfix.grid import MapGrid

        mapped = MapGrid(spec.tempo_map, spec.steps_per_beat, spec.swing_pct, (0.0, 3600.0))
        slot_time = mapped.slot_time
    pattern = spec.pattern if spec.pattern is not None else rock_pattern(
        spec.bars, spec.steps_per_beat, ghosts=spec.ghosts, sixteenth_hats=spec.sixteenth_hats, toms=spec.toms)
    slots = sorted({p[0] for p in pattern})
    if spec.sloppy_ms:  # uniform, the worst case for slot assignment
        slot_shift = {s: float(rng.uniform(-spec.sloppy_ms, spec.sloppy_ms)) for s in slots}
    else:
        slot_shift = {s: float(np.clip(rng.normal(0.0, spec.jitter_ms), -2.5 * spec.jitter_ms,
                                       2.5 * spec.jitter_ms)) for s in slots}
    flam_ms = dict(spec.flams)
    grace_ms = dict(spec.deliberate)
    events, flams = [], []
    for slot, drum, level_db, kind in pattern:
        beats = slot / spec.steps_per_beat
        drift = spec.drift_ms * np.sin(2 * np.pi * beats / spec.drift_period_beats)
        t = float(slot_time(slot)) + (slot_shift[slot] + drift) / 1000.0
        if kind != "ghost":
            t += float(np.clip(rng.normal(0.0, spec.drum_jitter_ms), -1.5, 1.5)) / 1000.0
        if drum == "snare" and slot in flam_ms:
            t += flam_ms[slot] / 1000.0
        events.append(Event(drum, t, level_db, slot, kind))
        if drum == "snare" and slot in grace_ms:
            events.append(Event(drum, t - grace_ms[slot] / 1000.0, level_db - 14.0, slot, "grace"))
    # a planted flam's spread is between the slot's earliest and latest stroke
    for slot in flam_ms:
        times = [e.time_s for e in events if e.slot == slot and e.kind != "grace"]
        flams.append((slot, (max(times) - min(times)) * 1000.0, False))
    for slot, ms in grace_ms.items():
        flams.append((slot, ms, True))
    return events, flams


def _reverb(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.7 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-t / 0.12) * 0.08
    ir[: int(0.004 * sr)] = 0.0  # first reflections arrive a few ms after the direct sound
    ir[0] = 1.0
    return sps.fftconvolve(x, ir)[: len(x)]


def make_session(spec: Spec | None = None, **kwargs) -> Synth:
    spec = spec or Spec(**kwargs)
    sr = spec.sample_rate
    rng = np.random.default_rng(spec.seed)
    events, flams = _events(spec, rng)
    n = int((max(e.time_s for e in events) + spec.tail_s) * sr)
    mics = {name: np.zeros(n) for name in spec.close + tuple(f for f in spec.followers if f != "room")}
    spread_db = dict(spec.follower_gain_spread_db)
    stroke_rng = np.random.default_rng(spec.seed + 7919)  # its own stream: other sessions stay as they were
    room_dry = np.zeros(n)
    for e in events:
        amp = 10 ** ((e.level_db + DRUM_LEVEL_DB[e.drum]) / 20.0)
        bright = 10 ** (min(e.level_db, 0.0) / 40.0)  # soft strokes are darker
        dry = one_shot(e.drum, sr, rng, bright=bright) * amp
        dull = sps.lfilter([0.35], [1.0, -0.65], dry)  # bleed and distant mics lose top end
        for mic in spec.close:
            own = dict((m, d) for m, _, d in CLOSE_MICS)[mic]
            if own == e.drum:
                if mic == "snare_bottom":
                    wires = _highpass(dry, sr, 2500.0) * 1.5
                    _place(mics[mic], -(dry * 0.5 + wires) * 10 ** (SNARE_BOTTOM_GAIN_DB / 20),
                           e.time_s + SNARE_BOTTOM_DELAY_MS / 1000.0, sr)
                else:
                    _place(mics[mic], dry, e.time_s, sr)
            elif (mic, e.drum) in BLEED:
                gain_db, delay_ms = BLEED[(mic, e.drum)]
                gain_db += spec.bleed_boost_db
                pol = -1.0 if mic == "snare_bottom" else 1.0
                _place(mics[mic], pol * dull * 10 ** (gain_db / 20), e.time_s + delay_ms / 1000.0, sr)
        stroke_db = float(stroke_rng.uniform(-1.0, 1.0)) * spread_db[e.drum] if e.drum in spread_db else 0.0
        for mic in spec.followers:
            gain_db, delay_ms = FOLLOWERS[mic][e.drum]
            gain_db += stroke_db
            target = room_dry if mic == "room" else mics[mic]
            src = dull if mic == "room" else dry
            _place(target, src * 10 ** (gain_db / 20), e.time_s + delay_ms / 1000.0, sr)
    if "room" in spec.followers:
        mics["room"] = _reverb(room_dry, sr, rng)
    noise_floor = 10 ** (-80 / 20)
    stems = []
    roles = {m: r for m, r, _ in CLOSE_MICS} | FOLLOWER_ROLES
    for name in spec.close + spec.followers:
        audio = (-1.0 if name in spec.inverted else 1.0) * mics[name] + rng.standard_normal(n) * noise_floor
        if name in spec.silent:
            audio = np.zeros(n)
        stems.append(Stem(name=name, audio=audio[None, :].astype(np.float32), sample_rate=sr, role=roles[name]))
    truth = Truth(
        bpm=spec.bpm,
        offset_s=spec.offset_s,
        steps_per_beat=spec.steps_per_beat,
        events=tuple(sorted(events, key=lambda e: e.time_s)),
        flams=tuple(sorted(flams)),
        mic_delay_ms=_true_delays(spec),
        polarity={"snare_bottom": -1} | {name: -1 for name in spec.inverted},
    )
    return Synth(Session(stems=tuple(stems), sample_rate=sr), truth)


def _true_delays(spec: Spec) -> dict:
    own = {m: d for m, _, d in CLOSE_MICS}
    out: dict = {}
    for f in spec.followers:
        out[f] = {c: FOLLOWERS[f][own[c]][1] - (SNARE_BOTTOM_DELAY_MS if c == "snare_bottom" else 0.0)
                  for c in spec.close}
    if "snare_bottom" in spec.close and "snare_top" in spec.close:
        out["snare_bottom"] = {"snare_top": SNARE_BOTTOM_DELAY_MS}
    return out


def match_times(found, truth, tol_s: float) -> tuple[np.ndarray, int, int, int]:
    """Greedy one-to-one matching within ``tol_s``: (found - truth errors of matches, tp, fp, fn)."""
    found = sorted(float(t) for t in found)
    truth = sorted(float(t) for t in truth)
    pairs = sorted((abs(f - t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth) if abs(f - t) <= tol_s)
    used_f, used_t, errors = set(), set(), []
    for _, i, j in pairs:
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            errors.append(found[i] - truth[j])
    tp = len(errors)
    return np.array(errors), tp, len(found) - tp, len(truth) - tp
