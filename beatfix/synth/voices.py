"""Procedural drum voices: one-shots synthesized from a random generator.

Every voice returns a raw mono float64 one-shot, shape ``(n_samples,)``, that
starts at its attack. ``hardness`` (0 soft .. 1 hard) changes the timbre, not
only the level: harder strokes are brighter, noisier and more driven, as real
drums are. The level itself is applied from the velocity at render time, so
:func:`beatfix.synth.kits.prepare_shot` peak-normalises every shot afterwards.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

# Inharmonic ratios of the six square oscillators of an analogue hi-hat (TR-808).
_METAL_RATIOS = (2.0, 3.0, 4.16, 5.43, 6.79, 8.21)

TOM_HZ = {"tom_high": 200.0, "tom_mid": 150.0, "tom_low": 98.0}


def _time(sample_rate: int, length_s: float) -> np.ndarray:
    return np.arange(int(round(length_s * sample_rate))) / sample_rate


def _filter(x: np.ndarray, kind: str, cutoff_hz, sample_rate: int, order: int = 2) -> np.ndarray:
    # Cutoffs are specified for 44.1 kHz and up; keep them below Nyquist at any rate.
    limit = 0.45 * sample_rate
    wn = [min(c, limit) for c in cutoff_hz] if isinstance(cutoff_hz, tuple) else min(cutoff_hz, limit)
    sos = signal.butter(order, wn, btype=kind, fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _unit(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


def _swept_sine(t: np.ndarray, sample_rate: int, end_hz: float, start_hz: float, sweep_s: float) -> np.ndarray:
    freq_hz = end_hz + (start_hz - end_hz) * np.exp(-t / sweep_s)
    # Phase starts at a quarter turn so the body is at its peak on sample 0, like a struck head.
    return np.cos(2 * np.pi * np.cumsum(freq_hz) / sample_rate)


def _partials(rng: np.random.Generator, t: np.ndarray, sample_rate: int, low_hz: float, high_hz: float,
              n: int, decay_s: tuple[float, float]) -> np.ndarray:
    """Sum of ``n`` decaying sines at log-uniform frequencies: the shimmer of a cymbal."""
    freqs = np.exp(rng.uniform(np.log(low_hz), np.log(min(high_hz, 0.45 * sample_rate)), n))
    decays = rng.uniform(*decay_s, n)
    phases = rng.uniform(0, 2 * np.pi, n)
    amps = 1.0 / np.sqrt(freqs / low_hz)
    impulse = np.zeros_like(t)
    impulse[0] = 1.0
    out = np.zeros_like(t)
    for f, d, p, a in zip(freqs, decays, phases, amps):
        # A two-pole resonator rings out a * r**n * sin(w n + p): far cheaper than sin/exp per sample.
        w, r = 2 * np.pi * f / sample_rate, np.exp(-1.0 / (d * sample_rate))
        b = [a * np.sin(p), -a * r * np.sin(p - w)]
        out += signal.lfilter(b, [1.0, -2.0 * r * np.cos(w), r * r], impulse)
    return out


def kick(rng: np.random.Generator, sample_rate: int, hardness: float) -> np.ndarray:
    """Pitch-swept sine body, soft-clipped harder when hit harder, plus a beater click."""
    t = _time(sample_rate, 0.7)
    end_hz = rng.uniform(45.0, 62.0)
    start_hz = end_hz * rng.uniform(2.5, 4.0) * (0.8 + 0.4 * hardness)
    body = _swept_sine(t, sample_rate, end_hz, start_hz, rng.uniform(0.025, 0.05))
    body *= np.exp(-t / rng.uniform(0.18, 0.32))
    drive = 1.0 + 3.0 * hardness
    body = np.tanh(drive * body) / np.tanh(drive)
    click = _unit(_filter(rng.standard_normal(t.size), "highpass", 1500 + 3000 * hardness, sample_rate))
    click *= np.exp(-t / 0.0015)
    return body + (0.15 + 0.45 * hardness) * click


def snare(rng: np.random.Generator, sample_rate: int, hardness: float) -> np.ndarray:
    """Two-mode shell tone plus band-passed noise (the wires), noisier when hit harder."""
    t = _time(sample_rate, 0.5)
    f0 = rng.uniform(170.0, 230.0)
    tone = (np.cos(2 * np.pi * f0 * t) + 0.5 * np.cos(2 * np.pi * f0 * 1.62 * t)) / 1.5
    tone *= np.exp(-t / rng.uniform(0.04, 0.08))
    wires = _unit(_filter(rng.standard_normal(t.size), "bandpass", (700.0, 4000.0 + 6000.0 * hardness), sample_rate))
    wires *= np.exp(-t / rng.uniform(0.09, 0.18))
    return (1.0 - 0.4 * hardness) * tone + (0.4 + 0.8 * hardness) * wires


def hat(rng: np.random.Generator, sample_rate: int, hardness: float, *, open_hat: bool = False) -> np.ndarray:
    """High-passed metallic squares and noise; the open hat rings for hundreds of ms."""
    t = _time(sample_rate, 1.2 if open_hat else 0.3)
    base_hz = rng.uniform(300.0, 420.0)
    metal = np.zeros_like(t)
    for ratio in _METAL_RATIOS:
        f = base_hz * ratio * rng.uniform(0.98, 1.02)
        metal += np.sign(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)))
    x = 0.6 * metal / len(_METAL_RATIOS) + 0.4 * rng.standard_normal(t.size)
    x = _filter(x, "highpass", 7500.0 - 3000.0 * hardness, sample_rate, order=4)
    decay_s = rng.uniform(0.3, 0.55) if open_hat else rng.uniform(0.025, 0.055) * (0.8 + 0.4 * hardness)
    return x * np.exp(-t / decay_s)


def tom(rng: np.random.Generator, sample_rate: int, hardness: float, *, pitch_hz: float) -> np.ndarray:
    """Tuned swept sine with an overtone and a short stick noise."""
    t = _time(sample_rate, 0.9)
    f0 = pitch_hz * rng.uniform(0.96, 1.04)
    bend = 1.0 + 0.25 + 0.35 * hardness
    body = _swept_sine(t, sample_rate, f0, f0 * bend, 0.05)
    body += 0.3 * _swept_sine(t, sample_rate, f0 * 1.5, f0 * 1.5 * bend, 0.04) * np.exp(-t / 0.08)
    body *= np.exp(-t / rng.uniform(0.25, 0.5))
    stick = _unit(_filter(rng.standard_normal(t.size), "bandpass", (300.0, 2500.0 + 3000.0 * hardness), sample_rate))
    stick *= np.exp(-t / 0.008)
    return body + (0.2 + 0.4 * hardness) * stick


def ride(rng: np.random.Generator, sample_rate: int, hardness: float) -> np.ndarray:
    """Long metallic shimmer, a bell ping and a stick tick."""
    t = _time(sample_rate, 2.5)
    shimmer = _unit(_partials(rng, t, sample_rate, 400.0, 9000.0, 16, (0.8, 2.2)))
    bell = _unit(_partials(rng, t, sample_rate, 650.0, 900.0, 3, (0.6, 1.2)))
    wash = _filter(rng.standard_normal(t.size), "highpass", 3000.0, sample_rate) * np.exp(-t / 1.0)
    tick = _filter(rng.standard_normal(t.size), "highpass", 5000.0, sample_rate) * np.exp(-t / 0.006)
    return shimmer + 0.4 * bell + (0.1 + 0.2 * hardness) * _unit(wash) + (0.3 + 0.5 * hardness) * _unit(tick)


def crash(rng: np.random.Generator, sample_rate: int, hardness: float) -> np.ndarray:
    """Bright noise wash over many inharmonic partials, brighter when hit harder."""
    t = _time(sample_rate, 2.8)
    wash = _filter(rng.standard_normal(t.size), "highpass", 2500.0 - 1200.0 * hardness, sample_rate)
    wash = _unit(wash) * np.exp(-t / rng.uniform(0.9, 1.6))
    shimmer = _unit(_partials(rng, t, sample_rate, 300.0, 12000.0, 20, (0.6, 1.8)))
    return wash + (0.5 - 0.2 * hardness) * shimmer


def synthesize(drum: str, rng: np.random.Generator, sample_rate: int, hardness: float) -> np.ndarray:
    """One raw one-shot of ``drum`` (a name from :data:`beatfix.synth.kits.DRUMS`)."""
    x = _voice(drum, rng, sample_rate, hardness)
    # Fade the last fifth so a tail cut before it decays fully still ends smoothly.
    n_fade = x.size // 5
    x[-n_fade:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n_fade))
    return x


def _voice(drum: str, rng: np.random.Generator, sample_rate: int, hardness: float) -> np.ndarray:
    if drum == "kick":
        return kick(rng, sample_rate, hardness)
    if drum == "snare":
        return snare(rng, sample_rate, hardness)
    if drum in ("hat", "hat_open"):
        return hat(rng, sample_rate, hardness, open_hat=drum == "hat_open")
    if drum in TOM_HZ:
        return tom(rng, sample_rate, hardness, pitch_hz=TOM_HZ[drum])
    if drum == "ride":
        return ride(rng, sample_rate, hardness)
    if drum == "crash":
        return crash(rng, sample_rate, hardness)
    raise ValueError(f"unknown drum {drum!r}")
