"""Each drum's part of a channel (overhead, room, or its bleed in another close mic), from its close mic.

A follower hears every drum through a short, static path: the drum's close
mic, later by the extra distance and scaled (inverted if wired so). Here each
path is a gain and a fractional delay, measured on the drum's own strokes::

    o(t) ~ sum_d gain_d * x_d(t - delay_d) + residual(t)

Why not a least-squares FIR fitted to the whole take: cymbals without a close
mic are the loudest thing in most overheads, and every close mic hears them
20-35 dB down; a free filter uses that bleed, 30 dB up, to "explain" the
cymbals, and its estimate of the drum's own part is worse than none. A path
measured on the drum's own attacks cannot do that.

The paths are estimated jointly, in rounds: each drum's is measured on the
follower minus the other drums' current estimates, so a hi-hat played with
every kick does not pull the kick's delay towards its own. Per round and drum:

* **delay**: the cross-correlation of the close mic's attack windows with the
  follower, summed over the strokes. Unwhitened first (the drum's own energy
  dominates its own mic, so this peak is the drum's, if broad), then refined
  to the sharpest whitened peak within :data:`REFINE_MS` of it;
* **gain**: the median over strokes of the least-squares gain at that delay
  (signed: polarity included), robust to the strokes a cymbal sits on.

What no close mic explains (cymbals, the room's tail, a colour the path does
not model) is the residual, which :mod:`beatfix.flamfix` moves with the hit.
The same holds for a close mic's bleed of the other drums: a path from each
other drum's close mic, delayed by at least nothing (``lead_ms=0``).

Pure: arrays in, arrays out. Signals are float arrays ``(n_samples,)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np
from scipy import signal as sps

WINDOW_MS = (1.0, 25.0)  # close-mic window around a stroke: 1 ms before to 25 ms after its attack
SEARCH_LEAD_MS = 3.0  # a follower may hear a drum this much earlier than its close mic (placement)...
SEARCH_LAG_MS = 40.0  # ...or this much later (a far room)
HINT_WINDOW_MS = 4.0  # with a delay from the analysis, the search stays this close to it
REFINE_MS = 0.5  # the whitened peak is sought this close to the unwhitened one
PHAT_BETA = 0.85
MAX_STROKES = 48  # per drum, the loudest, spread over the take
LOUD_WITHIN_DB = 10.0
ROUNDS = 3
_HALF_TAPS = 16  # fractional delay: Kaiser-windowed sinc, 32 taps
_KAISER_BETA = 8.0


@dataclass(frozen=True, eq=False)
class Path:
    """One close stem's path into one follower channel: ``y(t) = sum_i taps[i] x(t - start_samples - i)``."""

    stem: str
    delay_samples: float
    gain: float

    @property
    def start_samples(self) -> int:
        return int(math.floor(self.delay_samples)) - _HALF_TAPS + 1

    @cached_property
    def taps(self) -> np.ndarray:
        whole = math.floor(self.delay_samples)
        lags = whole - _HALF_TAPS + 1 + np.arange(2 * _HALF_TAPS)
        dist = self.delay_samples - lags
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (dist / _HALF_TAPS) ** 2, 0.0, 1.0))) / np.i0(_KAISER_BETA)
        return self.gain * np.sinc(dist) * window


def apply_path(path: Path, x: np.ndarray) -> np.ndarray:
    """``x`` through ``path``, same length, float32."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[-1]
    out = np.zeros(n, dtype=np.float32)
    if n == 0 or path.gain == 0.0:
        return out
    if float(path.delay_samples).is_integer():  # a whole-sample delay: exact, no filter
        d = int(path.delay_samples)
        lo, hi = max(0, d), min(n, n + d)
        if hi > lo:
            out[lo:hi] = np.float32(path.gain) * x[lo - d:hi - d]
        return out
    y = sps.oaconvolve(x, path.taps.astype(np.float32))  # y[t] = sum_i taps[i] x(t - i)
    start = path.start_samples
    lo, hi = max(0, start), min(n, y.size + start)
    if hi > lo:
        out[lo:hi] = y[lo - start:hi - start]
    return out


def _windows(x: np.ndarray, strokes: Sequence[int], before: int, after: int) -> list[tuple[int, np.ndarray]]:
    taper = np.hanning(2 * before)[:before] if before > 0 else np.zeros(0)
    out = []
    for s in strokes:
        start = s - before
        if start < 0 or start + before + after > x.size:
            continue
        seg = x[start:start + before + after].astype(np.float64)
        seg[:before] *= taper
        seg[-before:] *= taper[::-1]
        if np.any(seg):
            out.append((start, seg))
    return out


def _cross(windows, fars, base: int, lo: int, hi: int, beta: float) -> np.ndarray:
    """Sum over windows of the cross-correlation with the target at lags ``lo..hi`` (whitened by ``beta``).

    ``fars[i]`` is the target from window ``i``'s start plus ``base`` on.
    """
    segs = np.stack([seg for _, seg in windows])
    far = np.stack([f[lo - base:hi - base + segs.shape[1]] for f in fars])
    n_fft = 1 << int(math.ceil(math.log2(segs.shape[1] + far.shape[1])))
    cross = np.conj(np.fft.rfft(segs, n_fft, axis=-1)) * np.fft.rfft(far, n_fft, axis=-1)
    if beta > 0:
        weight = np.abs(cross) ** beta
        cross = cross / np.maximum(weight, 1e-12 * np.maximum(weight.max(axis=-1, keepdims=True), 1e-30))
    return np.fft.irfft(cross, n_fft, axis=-1)[:, :hi - lo + 1].sum(axis=0)


def _peak(curve: np.ndarray, k: int) -> float:
    if 0 < k < curve.size - 1:
        a, b, c = np.abs(curve[k - 1:k + 2])
        denom = a - 2.0 * b + c
        if denom < 0:
            return k + float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
    return float(k)


def _delay(windows, fars, base: int, lo: int, hi: int, refine: int) -> float | None:
    plain = _cross(windows, fars, base, lo, hi, 0.0)
    if not np.any(plain):
        return None
    k = int(np.argmax(np.abs(plain)))
    a, b = max(lo, lo + k - refine), min(hi, lo + k + refine)
    sharp = _cross(windows, fars, base, a, b, PHAT_BETA)
    return a + _peak(sharp, int(np.argmax(np.abs(sharp))))


def _gain(windows, fars, base: int, delay: float) -> float:
    """Median over windows of the least-squares gain of the target at ``delay`` on the window."""
    whole = int(math.floor(delay))
    frac = delay - whole
    gains = []
    for (_, seg), far in zip(windows, fars):
        near = far[whole - base:whole - base + seg.size + 1]
        mixed = (1.0 - frac) * near[:-1] + frac * near[1:]
        energy = float(seg @ seg)
        if energy > 0:
            gains.append(float(seg @ mixed) / energy)
    return float(np.median(gains)) if gains else 0.0


def loudest_strokes(times_s: Sequence[float], levels_db: Sequence[float], sample_rate: int,
                    limit: int = MAX_STROKES) -> list[int]:
    """The strokes (samples) within :data:`LOUD_WITHIN_DB` of the third loudest, thinned evenly to ``limit``."""
    if not len(times_s):
        return []
    order = np.argsort(times_s)
    t = np.asarray(times_s, dtype=float)[order]
    lv = np.asarray(levels_db, dtype=float)[order]
    top = np.sort(lv)[::-1][min(2, lv.size - 1)]
    keep = np.flatnonzero(lv >= top - LOUD_WITHIN_DB)
    if keep.size > limit:
        keep = keep[np.linspace(0, keep.size - 1, limit).round().astype(int)]
    return [int(round(t[i] * sample_rate)) for i in keep]


def estimate_paths(close: Mapping[str, np.ndarray], strokes: Mapping[str, Sequence[int]], follower: np.ndarray,
                   sample_rate: int, *, hints_ms: Mapping[str, float] | None = None,
                   lead_ms: float = SEARCH_LEAD_MS, lag_ms: float = SEARCH_LAG_MS) -> dict[str, Path]:
    """Every close stem's :class:`Path` into one channel ``(n_samples,)`` (a follower, or another close mic).

    ``close``: stem -> mono signal; ``strokes``: stem -> its own strongest
    attacks (samples, :func:`loudest_strokes`); ``hints_ms``: stem -> about
    where the channel hears it (a measured delay): the search stays within
    :data:`HINT_WINDOW_MS` of it. Delays are
    sought from ``lead_ms`` early to ``lag_ms`` late (another close mic hears
    a drum's bleed only after that drum's own mic: ``lead_ms=0``). A stem
    without strokes gets no path (its drum is never moved).
    """
    y = np.asarray(follower)
    n = y.size
    before, after = (int(round(ms * sample_rate / 1000.0)) for ms in WINDOW_MS)
    lead = int(round(lead_ms * sample_rate / 1000.0))
    lag = int(round(lag_ms * sample_rate / 1000.0))
    refine = max(1, int(round(REFINE_MS * sample_rate / 1000.0)))
    wins = {s: _windows(np.asarray(close[s]), strokes.get(s, ()), before, after) for s in close}
    wins = {s: w for s, w in wins.items() if w}
    paths: dict[str, Path] = {}
    for _ in range(ROUNDS):
        for s, w in wins.items():
            lo, hi = -lead, lag
            hint = (hints_ms or {}).get(s)
            if hint is not None and math.isfinite(hint):
                c, width = int(round(hint * sample_rate / 1000.0)), int(round(HINT_WINDOW_MS * sample_rate / 1000.0))
                lo, hi = max(lo, c - width), min(hi, c + width)
            # the windows' stretches of the follower minus the other drums' current parts
            usable = [(start, seg) for start, seg in w if start + lo >= 0 and start + hi + seg.size + 1 <= n]
            if lo > hi or not usable:
                continue
            fars = []
            for start, seg in usable:
                a, b = start + lo, start + hi + seg.size + 1
                far = y[a:b].astype(np.float64)
                for k, p in paths.items():
                    if k != s:
                        far -= _part(p, close[k], a, b)
                fars.append(far)
            delay = _delay(usable, fars, lo, lo, hi, refine)
            if delay is not None:
                paths[s] = Path(s, delay, _gain(usable, fars, lo, delay))
    return paths


def _part(path: Path, x: np.ndarray, a: int, b: int) -> np.ndarray:
    """Samples ``[a, b)`` of ``x`` through ``path``, float64, computed from the stretch of ``x`` they need."""
    lo = a - int(math.ceil(path.delay_samples)) - _HALF_TAPS - 1
    hi = max(b, b - int(math.floor(path.delay_samples)) + _HALF_TAPS + 1)
    piece = np.zeros(hi - lo, dtype=np.float32)
    s0, s1 = max(lo, 0), min(hi, x.shape[-1])
    if s1 > s0:
        piece[s0 - lo:s1 - lo] = x[s0:s1]
    if float(path.delay_samples).is_integer():
        d = int(path.delay_samples)
        return path.gain * piece[a - d - lo:b - d - lo].astype(np.float64)
    y = np.convolve(piece.astype(np.float64), path.taps)  # y[j] = sum_i taps[i] piece[j - i]
    first = a - path.start_samples - lo  # output time a reads y at a - start - lo
    return y[first:first + b - a]
