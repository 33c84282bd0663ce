"""Signal helpers: high-passed stems and normalised cross-correlation of attack templates."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import signal as sps

HIGHPASS_HZ = 2000.0


# ----------------------------------------------------------------------------- signal helpers


def highpass(x: np.ndarray, sample_rate: int, cutoff_hz: float = HIGHPASS_HZ) -> np.ndarray:
    """Zero-phase 4th-order Butterworth high-pass along the last axis, float64."""
    sos = sps.butter(4, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    return sps.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)


class _Bank:
    """High-passed signals of a set of stems, computed once per (stem, channel)."""

    def __init__(self, stems: Mapping[str, np.ndarray], sample_rate: int):
        self.stems, self.sr = stems, sample_rate
        self.cache: dict[tuple[str, int | None], np.ndarray] = {}

    def get(self, stem: str, channel: int | None) -> np.ndarray:
        key = (stem, channel)
        if key not in self.cache:
            audio = np.asarray(self.stems[stem])
            x = audio.mean(axis=0) if channel is None else audio[channel]
            self.cache[key] = highpass(x, self.sr)
        return self.cache[key]


def ncc_curve(template: np.ndarray, x: np.ndarray, lo: int, hi: int) -> tuple[int, np.ndarray]:
    """Normalised correlation of ``template`` with ``x`` at every start ``lo..hi`` (clipped to ``x``).

    Returns (first start, correlations); empty when no start fits.
    """
    n = template.size
    lo, hi = max(0, int(lo)), min(x.size - n, int(hi))
    if hi < lo or n == 0:
        return lo, np.zeros(0)
    seg = x[lo:hi + n]
    corr = sps.correlate(seg, template, mode="valid", method="fft" if hi - lo > 256 else "direct")
    csum = np.concatenate([[0.0], np.cumsum(seg * seg)])
    t_energy = float(template @ template)
    # Differences of running sums are exact to ~1e-16 of the total: the floor keeps near-silent
    # windows from dividing by that rounding noise.
    energy = np.maximum(csum[n:] - csum[:-n], 1e-9 * csum[-1] + 1e-30)
    return lo, corr / (np.sqrt(energy * t_energy) + 1e-30)


def _peak(lo: int, ncc: np.ndarray, k: int | None = None) -> float:
    """Sub-sample position of the peak at index ``k`` (the maximum by default), by a parabola."""
    k = int(np.argmax(ncc)) if k is None else k
    frac = 0.0
    if 0 < k < ncc.size - 1:
        a, b, c = ncc[k - 1], ncc[k], ncc[k + 1]
        denom = a - 2.0 * b + c
        frac = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) if denom < 0 else 0.0
    return lo + k + frac


def find_template(template: np.ndarray, x: np.ndarray, lo: int, hi: int) -> tuple[float, float, bool]:
    """Best normalised-correlation start of ``template`` in ``x`` among starts ``lo..hi``.

    Returns (start, sub-sample by a parabola; nan if no start fits),
    correlation at the peak, and whether the peak is at the range's edge (so
    the true best may lie outside it).
    """
    lo, ncc = ncc_curve(template, x, lo, hi)
    if ncc.size == 0:
        return math.nan, 0.0, True
    k = int(np.argmax(ncc))
    return _peak(lo, ncc, k), float(ncc[k]), k == 0 or k == ncc.size - 1


def _echoes(lo: int, ncc: np.ndarray, main: float, threshold: float, apart: int) -> list[float]:
    """Other local maxima of ``ncc`` reaching ``threshold``, at least ``apart`` samples from ``main``."""
    if ncc.size < 3:
        return []
    inner = ncc[1:-1]
    k = np.flatnonzero((inner >= threshold) & (inner >= ncc[:-2]) & (inner > ncc[2:])) + 1
    return [lo + int(i) for i in k if abs(lo + int(i) - main) >= apart]
