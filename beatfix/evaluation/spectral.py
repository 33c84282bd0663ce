"""Colour: log-magnitude STFT distance."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import signal as sps

SPECTRAL_N_FFT = 2048
SPECTRAL_RANGE_DB = 80.0


# ----------------------------------------------------------------------------- colour


def log_spectrogram(x: np.ndarray) -> np.ndarray:
    """dB magnitude STFT of each channel, ``(n_channels, n_bins, n_frames)``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    _, _, z = sps.stft(x, nperseg=SPECTRAL_N_FFT, noverlap=SPECTRAL_N_FFT // 2, axis=-1)
    return 20.0 * np.log10(np.abs(z) + 1e-9)


def spectral_distance_db(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Mean |difference| (dB) of log spectrograms over the bins within :data:`SPECTRAL_RANGE_DB` of the top."""
    total, count = 0.0, 0
    for ma, mb in zip(a, b):
        floor = max(ma.max(), mb.max()) - SPECTRAL_RANGE_DB
        mask = (ma > floor) | (mb > floor)
        total += float(np.abs(np.maximum(ma, floor) - np.maximum(mb, floor))[mask].sum())
        count += int(mask.sum())
    return total / max(1, count)
