"""Seeded synthetic drum sessions for the plan and render tests, and what a listener would measure.

Three one-shots with known sample-exact attacks: a "kick" (click, then a
pitch sweep 120 -> 50 Hz with a little shell noise), a "snare" (noise and a
190 Hz tone) and a "cymbal" (bright noise ringing for half a second). Four
channels: kick close, snare close, an overhead hearing every drum 3 ms late
at other gains, and a room hearing them 12 ms late through a decaying-noise
tail. The cymbal has no close mic: only the overhead and the room hear it.
Every hit has one close-mic onset, so its anchor and earliest attack are the
same sample.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps
from scipy.ndimage import minimum_filter1d

from beatfix.grid import Grid
from beatfix.types import Analysis, Hit, MicDelay

SR = 48000
OH_DELAY = 144  # 3 ms
ROOM_DELAY = 576  # 12 ms
CHANNELS = ("kick", "snare", "overhead", "room")
SHOT_SAMPLES = SR // 4
OVERHEAD_GAIN = {"kick": 0.35, "snare": 0.5, "cymbal": 0.6}
TEMPLATE_SAMPLES = 240  # the first 5 ms: what makes an attack an attack


def _shots() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(SHOT_SAMPLES) / SR
    freq = 50.0 + 70.0 * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t / 0.08)
    click = rng.standard_normal(t.size) * np.exp(-t / 0.0008)
    shell = 0.1 * rng.standard_normal(t.size) * np.exp(-t / 0.06)
    kick = body + 0.5 * click + shell
    rattle = rng.standard_normal(t.size) * np.exp(-t / 0.04)
    tone = np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.04)
    snare = 0.6 * rattle + 0.5 * tone
    wash = sps.sosfilt(sps.butter(2, 3000.0, "highpass", fs=SR, output="sos"), rng.standard_normal(t.size))
    cymbal = wash * np.exp(-t / 0.5)
    return {"kick": (kick / np.abs(kick).max()).astype(np.float32),
            "snare": (snare / np.abs(snare).max()).astype(np.float32),
            "cymbal": (cymbal / np.abs(cymbal).max()).astype(np.float32)}


def highpass(channel: np.ndarray, cutoff_hz: float) -> np.ndarray:
    sos = sps.butter(4, cutoff_hz, "highpass", fs=SR, output="sos")
    return sps.sosfiltfilt(sos, channel.astype(np.float64))


SHOTS = _shots()
# Matched above 1 kHz: the kick's pitched body would otherwise match itself all through its decay.
TEMPLATES = {kind: highpass(np.pad(shot, (SR // 100, 0)), 1000.0)[SR // 100:][:TEMPLATE_SAMPLES]
             for kind, shot in SHOTS.items()}


def _place(track: np.ndarray, shot: np.ndarray, at: int, gain: float) -> None:
    stop = min(track.size, at + shot.size)
    if stop > at:
        track[at:stop] += gain * shot[:stop - at]


def session(attacks: list[int], kinds: list[str], n_samples: int, *, seed: int = 0,
            gains: list[float] | None = None) -> np.ndarray:
    """Audio ``(4, n_samples)`` float32 with one one-shot per attack sample.

    Each stroke's gain is drawn from 0.6-0.9 unless ``gains`` gives them (a
    soft grace note). A cymbal is heard in the overhead and the room only.
    """
    rng = np.random.default_rng(seed)
    audio = np.zeros((4, n_samples))
    dry = np.zeros(n_samples)
    for i, (at, kind) in enumerate(zip(attacks, kinds)):
        gain = float(rng.uniform(0.6, 0.9))
        if gains is not None:
            gain = gains[i]
        if kind in CHANNELS:
            _place(audio[CHANNELS.index(kind)], SHOTS[kind], at, gain)
        _place(audio[2], SHOTS[kind], at + OH_DELAY, gain * OVERHEAD_GAIN[kind])
        _place(dry, SHOTS[kind], at + ROOM_DELAY, gain * 0.4)
    ir = np.zeros(SR // 2)
    ir[0] = 1.0
    tail = np.arange(96, ir.size)
    ir[tail] = 0.012 * rng.standard_normal(tail.size) * np.exp(-(tail / SR) / 0.15)
    audio[3] = sps.fftconvolve(dry, ir)[:n_samples]
    return audio.astype(np.float32)


def analysis(attacks: list[int], slots: list[int], grid: Grid, n_samples: int) -> Analysis:
    """An Analysis whose hits are exactly the given attack samples, in time order."""
    hits = []
    for at, slot in sorted(zip(attacks, slots)):
        t = at / SR
        hits.append(Hit(time_s=t, earliest_s=t, slot=slot,
                        deviation_ms=float(grid.deviation_ms(t, slot)), onsets={}))
    delays = (MicDelay("kick", 0.0, 1, None), MicDelay("snare", 0.0, 1, "kick"),
              MicDelay("overhead", 3.0, 1, "kick"), MicDelay("room", 12.0, 1, "kick"))
    return Analysis(sample_rate=SR, duration_s=n_samples / SR, tempo_bpm=grid.bpm,
                    tempo_candidates=(), grid=grid, mic_delays=delays, onsets=(),
                    rejected=(), hits=tuple(hits), flams=())


def attacks_off_grid(grid: Grid, slots: list[int], deviations_ms: list[float]) -> list[int]:
    return [int(round((grid.slot_time(s) + d / 1000.0) * SR)) for s, d in zip(slots, deviations_ms)]


# --- What a listener measures ---------------------------------------------------------


def match(channel: np.ndarray, kind: str) -> np.ndarray:
    """Normalised cross-correlation with a one-shot's attack, one value per start sample."""
    x = highpass(channel, 1000.0)
    template = TEMPLATES[kind]
    num = sps.correlate(x, template, mode="valid")
    energy = np.convolve(x * x, np.ones(template.size), mode="valid")
    return num / (np.linalg.norm(template) * np.sqrt(np.maximum(energy, 1e-20)))


def locate(channel: np.ndarray, kind: str, near: int, radius: int = SR // 20) -> int:
    """The sample where the one-shot's attack matches best within ``radius`` of ``near``."""
    score = match(channel, kind)
    lo, hi = max(0, near - radius), min(score.size, near + radius)
    return lo + int(np.argmax(score[lo:hi]))


def strong_matches(channel: np.ndarray, kind: str, threshold: float = 0.8) -> list[int]:
    """Every place the one-shot's attack sounds (peaks of the match at least 10 ms apart)."""
    score = match(channel, kind)
    peaks, _ = sps.find_peaks(score, height=threshold, distance=SR // 100)
    return [int(p) for p in peaks]


def envelope_onsets(channel: np.ndarray, *, rise_db: float = 10.0) -> list[int]:
    """Attacks a listener hears: the 1 kHz+ envelope jumps ``rise_db`` within 3 ms, near full level."""
    hp = highpass(channel, 1000.0)
    env = 10 * np.log10(np.convolve(hp * hp, np.ones(48) / 48, mode="same") + 1e-12)
    look = 144
    # Trailing minimum over the last 3 ms: origin shifts scipy's centred window back.
    prior = minimum_filter1d(env, size=look, origin=(look - 1) // 2)
    hot = np.flatnonzero((env - prior > rise_db) & (env > env.max() - 30.0))
    onsets: list[int] = []
    for i in hot:
        if not onsets or i - onsets[-1] > SR // 50:
            onsets.append(int(i))
    return onsets


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-20))
