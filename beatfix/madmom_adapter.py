"""The one place that talks to madmom. Imported lazily so `import beatfix` stays fast.

madmom's networks were trained at 44.1 kHz, so every signal is resampled to
44100 Hz (soxr) before it goes in. Activations come back as frame rates in
frames per second, so times in seconds need no mapping back; sample positions
are only ever computed by the caller, at the stem's own rate.

madmom's processors are given ``Signal`` objects with an explicit sample rate:
handed a bare array without one, some of them try to decode it with ffmpeg.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ModelError

MADMOM_SAMPLE_RATE = 44100
ONSET_FPS = 100.0  # frame rate of madmom's onset and beat activations


def _to_madmom_signal(mono: np.ndarray, sample_rate: int):
    import soxr
    from madmom.audio.signal import Signal

    x = np.asarray(mono, dtype=np.float32)
    if sample_rate != MADMOM_SAMPLE_RATE:
        x = soxr.resample(x, sample_rate, MADMOM_SAMPLE_RATE, quality="HQ").astype(np.float32)
    return Signal(x, sample_rate=MADMOM_SAMPLE_RATE, num_channels=1)


def onset_activations(channels: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """CNN onset activation (0..1, ``ONSET_FPS`` frames per second) of each mono signal ``(n_samples,)``.

    Frame ``i`` is centred on ``i / ONSET_FPS`` seconds.
    """
    try:
        from madmom.features.onsets import CNNOnsetProcessor
    except ImportError as exc:  # pragma: no cover - madmom is a hard dependency
        raise ModelError(f"madmom is not installed or broken ({exc})") from None
    processor = CNNOnsetProcessor()  # cheap to build (~40 ms); not cached, to keep no global state
    out = []
    for mono in channels:
        if len(mono) < MADMOM_SAMPLE_RATE // 10:  # shorter than the network's context
            out.append(np.zeros(max(1, int(len(mono) / sample_rate * ONSET_FPS)), dtype=np.float32))
            continue
        out.append(np.asarray(processor(_to_madmom_signal(mono, sample_rate)), dtype=np.float32))
    return out


def pick_onset_peaks(activation: np.ndarray, *, threshold: float, combine_s: float) -> np.ndarray:
    """Times (s) of local maxima of an onset activation above ``threshold``, one per ``combine_s``."""
    from madmom.features.onsets import OnsetPeakPickingProcessor

    picker = OnsetPeakPickingProcessor(
        threshold=threshold, pre_max=1.0 / ONSET_FPS, post_max=1.0 / ONSET_FPS,
        combine=combine_s, fps=ONSET_FPS,
    )
    return np.asarray(picker(np.asarray(activation, dtype=np.float32)), dtype=float)


def beat_activation(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """RNN beat activation (0..1, ``ONSET_FPS`` frames per second) of a mono mix."""
    from madmom.features.beats import RNNBeatProcessor

    return np.asarray(RNNBeatProcessor()(_to_madmom_signal(mono, sample_rate)), dtype=float)


def tempo_histogram(activation: np.ndarray, *, min_bpm: float, max_bpm: float) -> np.ndarray:
    """madmom's comb-filter tempo estimate of an activation: rows of (bpm, strength), strongest first."""
    from madmom.features.tempo import CombFilterTempoHistogramProcessor, TempoEstimationProcessor

    hist = CombFilterTempoHistogramProcessor(min_bpm=min_bpm, max_bpm=max_bpm, fps=ONSET_FPS)
    proc = TempoEstimationProcessor(method=None, histogram_processor=hist, fps=ONSET_FPS,
                                    min_bpm=min_bpm, max_bpm=max_bpm, interpolate=True)
    return np.asarray(proc(np.asarray(activation, dtype=float)), dtype=float)
