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
  follower, summed over the strokes and whitened, which makes it an estimate
  of the path's impulse response: its *first* strong peak (at least
  :data:`FIRST_PEAK_SHARE` of the strongest) is the direct sound. In a room
  the strongest peak is often an early reflection or a stretch of the tail
  (a room mic hears more room than kit), which is later. If the strokes
  disagree on the first peak's gain (see *spread*) and agree better on the
  strongest peak's, the strongest wins: a kick's broad peak has early
  sidelobes over half its height;
* **gain**: the median over strokes of the least-squares gain at that delay
  (signed: polarity included), robust to the strokes a cymbal sits on,
  measured from :data:`GAIN_WINDOW_MS` before to after the attack: the direct
  sound is alone there, before the first reflection and the tail arrive
  (measured on the whole window, a room's tail, which repeats the drum,
  reads as up to +5 dB of gain);
* **echoes** (rooms, ``echo_ms``): the early reflections, sharp copies of the
  attack a few ms after the direct sound: the later peaks of the same
  whitened curve at least :data:`ECHO_SHARE` of the direct one, each a tap
  of its own (its gain from the peaks' ratio, on the low side: see :func:`_echoes`). A drum moved without them leaves
  them behind, where a drum moved later than its own first reflection gets a
  pre-echo (a hi-hat moved 8 ms, its reflection 4 ms after it: a click).
  The diffuse tail is not modelled; it stays with the hit;
* **spread**: how far the strokes' gains scatter around that median. A
  path whose strokes disagree (a tom played four times, heard in a room
  under everybody's reverb) is not moved on its own (:func:`trusted`):
  moving a wrong part leaves its error behind as a ghost attack.

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
FIRST_PEAK_SHARE = 0.5  # the direct sound: the first whitened peak at least this share of the strongest
GAIN_WINDOW_MS = (0.5, 2.0)  # the gain is measured this long before and after the attack
ECHO_SHARE = 0.1  # a reflection: a later whitened peak at least this share of the direct sound's
ECHO_MIN_MS = 0.5  # reflections are sought this long after the direct sound (its own peak's skirt) on
MAX_ECHOES = 8
MAX_SPREAD = 0.12  # a part is moved on its own only if its strokes' gains agree this closely (relative MAD)
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
    spread: float = 0.0  # median absolute deviation of the per-stroke gains, relative to the gain
    strokes: int = 0  # strokes measured
    echoes: tuple["Path", ...] = ()  # early reflections: further taps, each a delay and a gain

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
    """``x`` through ``path`` (its echoes included), same length, float32."""
    out = _apply_tap(path, x)
    for echo in path.echoes:
        out += _apply_tap(echo, x)
    return out


def _apply_tap(path: Path, x: np.ndarray) -> np.ndarray:
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


def _local_peaks(mag: np.ndarray, floor: float) -> np.ndarray:
    """Indices of the local maxima of ``mag`` at least ``floor`` high, in order."""
    return np.flatnonzero((mag[1:-1] >= mag[:-2]) & (mag[1:-1] >= mag[2:]) & (mag[1:-1] >= floor)) + 1


def _delays(windows, fars, base: int, lo: int, hi: int) -> list[float]:
    """Candidate direct-sound delays, to a fraction of a sample: the first strong peak of the whitened
    cross-correlation, then (if another) its strongest peak."""
    sharp = _cross(windows, fars, base, lo, hi, PHAT_BETA)
    mag = np.abs(sharp)
    if not np.any(mag):
        return []
    inner = _local_peaks(mag, FIRST_PEAK_SHARE * float(mag.max()))
    best = int(np.argmax(mag))
    first = int(inner[0]) if inner.size else best
    return [lo + _peak(sharp, k) for k in dict.fromkeys((first, best))]


def _echoes(stem: str, windows, fars, base: int, direct: Path, skirt: int, last: int) -> tuple[Path, ...]:
    """The early reflections more than ``skirt`` samples after the direct sound, up to lag ``last``.

    The later peaks of the whitened curve at least :data:`ECHO_SHARE` of the
    direct sound's, each scaled from the direct gain by the peaks' ratio. That
    ratio reads a reflection 20-30 % low (the partial whitening spreads a
    peak), which leaves a trace of it behind; measured by least squares, the
    tail that overlaps it inflates it instead, and an overestimate clicks.
    """
    first = max(base, int(math.floor(direct.delay_samples)) - 2)
    at = int(round(direct.delay_samples)) - first
    curve = _cross(windows, fars, base, first, last, PHAT_BETA)
    if direct.gain == 0.0 or not 0 <= at < curve.size or curve[at] == 0.0:
        return ()
    mag = np.abs(curve)
    peaks = [int(i) for i in _local_peaks(mag, ECHO_SHARE * mag[at]) if i > at + skirt]
    strongest = sorted(sorted(peaks, key=lambda i: -mag[i])[:MAX_ECHOES])
    return tuple(Path(stem, first + _peak(curve, i), direct.gain * float(curve[i] / curve[at])) for i in strongest)


def _gain(windows, fars, base: int, delay: float, span: tuple[int, int]) -> tuple[float, float]:
    """Median over windows of the least-squares gain at ``delay`` on samples ``span`` of each window,
    and the gains' median absolute deviation relative to it."""
    whole = int(math.floor(delay))
    frac = delay - whole
    gains = []
    a, b = span
    for (_, seg), far in zip(windows, fars):
        near = far[whole - base:whole - base + seg.size + 1]
        mixed = ((1.0 - frac) * near[:-1] + frac * near[1:])[a:b]
        x = seg[a:b]
        energy = float(x @ x)
        if energy > 0:
            gains.append(float(x @ mixed) / energy)
    if not gains:
        return 0.0, math.inf
    gain = float(np.median(gains))
    spread = float(np.median(np.abs(np.asarray(gains) - gain))) / abs(gain) if gain else math.inf
    return gain, spread


def trusted(path: "Path | None") -> bool:
    """Whether a drum's part may move on its own: a path whose strokes agree on its gain."""
    return path is not None and path.gain != 0.0 and path.spread <= MAX_SPREAD


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
                   lead_ms: float = SEARCH_LEAD_MS, lag_ms: float = SEARCH_LAG_MS,
                   echo_ms: float = 0.0) -> dict[str, Path]:
    """Every close stem's :class:`Path` into one channel ``(n_samples,)`` (a follower, or another close mic).

    ``close``: stem -> mono signal; ``strokes``: stem -> its own strongest
    attacks (samples, :func:`loudest_strokes`); ``hints_ms``: stem -> about
    where the channel hears it (a measured delay): the search stays within
    :data:`HINT_WINDOW_MS` of it. Delays are
    sought from ``lead_ms`` early to ``lag_ms`` late (another close mic hears
    a drum's bleed only after that drum's own mic: ``lead_ms=0``). A stem
    without strokes gets no path (its drum is never moved). ``echo_ms``:
    early reflections up to this long after the direct sound are found too
    (a room; none by default).
    """
    y = np.asarray(follower)
    n = y.size
    before, after = (int(round(ms * sample_rate / 1000.0)) for ms in WINDOW_MS)
    lead = int(round(lead_ms * sample_rate / 1000.0))
    lag = int(round(lag_ms * sample_rate / 1000.0))
    span = (max(0, before - int(round(GAIN_WINDOW_MS[0] * sample_rate / 1000.0))),
            before + max(1, int(round(GAIN_WINDOW_MS[1] * sample_rate / 1000.0))))
    echo = int(round(echo_ms * sample_rate / 1000.0))
    skirt = max(1, int(round(ECHO_MIN_MS * sample_rate / 1000.0)))
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
            usable = [(start, seg) for start, seg in w if start + lo >= 0 and start + hi + echo + seg.size + 1 <= n]
            if lo > hi or not usable:
                continue
            fars = []
            for start, seg in usable:
                a, b = start + lo, start + hi + echo + seg.size + 1
                far = y[a:b].astype(np.float64)
                for k, p in paths.items():
                    if k != s:
                        far -= _part(p, close[k], a, b)
                fars.append(far)
            # The first arrival, unless its strokes disagree on its gain and the strongest peak's agree
            # better (a kick's broad whitened peak has early sidelobes over half its height).
            candidates = _delays(usable, fars, lo, lo, hi)
            if candidates:
                delay = candidates[0]
                gain, spread = _gain(usable, fars, lo, delay, span)
                if spread > MAX_SPREAD and len(candidates) > 1:
                    other_gain, other_spread = _gain(usable, fars, lo, candidates[1], span)
                    if other_spread < spread:
                        delay, gain, spread = candidates[1], other_gain, other_spread
                direct = Path(s, delay, gain)
                echoes = _echoes(s, usable, fars, lo, direct, skirt, hi + echo) if echo else ()
                paths[s] = Path(s, delay, gain, spread, len(usable), echoes)
    return paths


def _part(path: Path, x: np.ndarray, a: int, b: int) -> np.ndarray:
    """Samples ``[a, b)`` of ``x`` through ``path`` (echoes included), float64."""
    out = _part_tap(path, x, a, b)
    for echo in path.echoes:
        out += _part_tap(echo, x, a, b)
    return out


def _part_tap(path: Path, x: np.ndarray, a: int, b: int) -> np.ndarray:
    """Samples ``[a, b)`` of ``x`` through one tap, computed from the stretch of ``x`` they need."""
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
