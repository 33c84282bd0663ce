"""Sample-accurate attack points on one close mic: the refiner behind :mod:`beatfix.onsets`.

The stem is high-passed into nested bands (from 200 Hz, 1 kHz and 4 kHz;
causal filters, so nothing moves earlier) and streamed in chunks. Around a
coarse onset every local maximum of the energy ratio just after / just before
a point (STA/LTA, the largest over the bands) is a possible attack; the one
adding the most energy among the clear rises wins, moved back to the earliest
point of its build-up, and a clearly separate softer attack 7-45 ms before it
(a grace note) is kept too. An AIC change-point picker on the samples finds
the first sample of the rise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .types import Stem

DETECT_HIGHPASS_HZ = (200.0, 1000.0, 4000.0)  # nested bands: body, stick, air
SEARCH_BEFORE_MS = 30.0  # CNN peaks land up to ~1.5 frames either side of the attack
SEARCH_AFTER_MS = 25.0
POST_MS = 1.5  # STA window: the attack itself
PRE_MS = 8.0  # LTA window: what was sounding before
MIN_RISE_DB = 4.0  # an attack must stand this far above what was sounding before
CLEAR_RISE_DB = 8.0  # ...and when one rises this far, weaker rises around it are not attacks
BUILD_UP_MS = 15.0  # an attack's energy may keep growing this long after it starts
BUILD_UP_DB = 10.0
BUILD_UP_RISE_SHARE = 0.5  # ...and the start rises at least this share (in dB) of the sharpest rise there
GRACE_GAP_MS = (7.0, 45.0)  # a separate earlier attack this far before the main one is kept too
GRACE_MIN_RISE_DB = 12.0
GRACE_MAX_BELOW_DB = 24.0  # ...unless it is this much softer than the main attack
AIC_BEFORE_MS = 5.0
AIC_AFTER_MS = 1.5
ABOVE_FLOOR_DB = 12.0  # an attack adds at least this much over the stem's quiet level
ABSOLUTE_FLOOR_DB = -100.0
FLOOR_DB = -140.0


def _db(power):
    return 10.0 * np.log10(np.maximum(power, 10 ** (FLOOR_DB / 10)))


CHUNK_S = 2.0  # the refiner holds about this much of a stem's filtered bands at a time (~10 MB at 48 kHz)


def _ms(value_ms: float, sample_rate: int) -> int:
    return max(1, int(round(value_ms * sample_rate / 1000.0)))


class _StemSignal:
    """A stretch of a stem's nested high-passed copies and their running sums: what the refiner reads.

    Indices are the stem's own sample numbers. The bands and sums are the very
    numbers a single pass over the whole stem gives (the filters carry their
    state and the sums their total from chunk to chunk), but only a window of
    them is held: a 10-minute stem costs no more memory than a 20-second one.
    """

    def __init__(self, sr: int, n: int, mono: np.ndarray, min_added_db: list[float], start: int,
                 bands: list[np.ndarray], cums: list[np.ndarray]):
        self.sr, self.n, self.mono, self.min_added_db = sr, n, mono, min_added_db
        self.start = start  # bands[b][i] is sample start + i; cums[b][i] the energy of samples [0, start + i)
        self.bands, self.cums = bands, cums

    def ms(self, value_ms: float) -> int:
        return _ms(value_ms, self.sr)

    def energy_run(self, band: int, first: int, count: int, length: int) -> np.ndarray:
        """Mean energy of the ``length`` samples from each of ``first .. first + count - 1``."""
        i = first - self.start
        cum = self.cums[band]
        return (cum[i + length:i + length + count] - cum[i:i + count]) / length

    def band(self, band: int, lo: int, hi: int) -> tuple[np.ndarray, int]:
        """High-passed samples [lo, hi) clipped to the stem, and the index of the first."""
        lo, hi = max(lo, 0), min(hi, self.n)
        return self.bands[band][lo - self.start:max(hi, lo) - self.start], lo

    def samples(self, lo: int, hi: int) -> np.ndarray:
        """Mono samples [lo, hi) as float64 (``lo >= 0``; clipped at the end like a slice)."""
        return self.mono[lo:hi].astype(np.float64)


def _highpass_sections(sr: int) -> list[np.ndarray]:
    from scipy import signal as sps  # ~1 s to import: only when there is audio to analyse

    return [sps.butter(2, min(hz, 0.4 * sr), "highpass", fs=sr, output="sos") for hz in DETECT_HIGHPASS_HZ]


def _band_chunks(mono: np.ndarray, sections: list[np.ndarray], chunk: int, *, sums: bool = True):
    """Yield ``(start, [band samples], [running energy sums])`` chunk by chunk, float64.

    ``sums[b]`` holds the energy of samples ``[0, start + i)`` for ``i`` in
    ``0..len(chunk)``: one more entry than samples (empty lists unless ``sums``).
    Filtering with carried state and accumulating from the carried total repeat
    a whole-stem pass exactly.
    """
    from scipy import signal as sps

    states = [np.zeros((len(sos), 2)) for sos in sections]
    totals = [0.0] * len(sections)
    for start in range(0, len(mono), chunk):
        x = mono[start:start + chunk].astype(np.float64)
        bands, running = [], []
        for b, sos in enumerate(sections):
            y, states[b] = sps.sosfilt(sos, x, zi=states[b])  # causal: an onset never moves earlier
            bands.append(y)
            if sums:
                energy = np.empty(len(y) + 1)
                energy[0] = totals[b]
                np.multiply(y, y, out=energy[1:])
                np.cumsum(energy, out=energy)
                totals[b] = float(energy[-1])
                running.append(energy)
        yield start, bands, running


def _min_added_db(mono: np.ndarray, sr: int, sections: list[np.ndarray]) -> list[float]:
    """Per band, the level an attack must add: the stem's quiet level (hiss, hum, distant wash) + ABOVE_FLOOR_DB."""
    frame = _ms(5.0, sr)
    usable = len(mono) // frame * frame
    chunk = frame * max(1, int(CHUNK_S * sr) // frame)
    energies: list[list[np.ndarray]] = [[] for _ in sections]
    for _, bands, _ in _band_chunks(mono[:usable], sections, chunk, sums=False):
        for b, y in enumerate(bands):
            frames = y.reshape(-1, frame)
            energies[b].append(np.mean(frames * frames, axis=1))
    out = []
    for per_band in energies:
        quiet = np.percentile(np.concatenate(per_band), 10) if per_band else 0.0
        out.append(max(float(_db(quiet)) + ABOVE_FLOOR_DB, ABSOLUTE_FLOOR_DB))
    return out


def _signals(stem: Stem, centres: np.ndarray):
    """Yield ``(_StemSignal, indices)``: windows of the stem holding everything the refiner reads
    around the peaks ``centres[indices]`` (sample numbers, sorted), each peak exactly once, in order."""
    sr, mono = stem.sample_rate, stem.mono()
    n = len(mono)
    sections = _highpass_sections(sr)
    min_added_db = _min_added_db(mono, sr, sections)
    reach_before = _ms(SEARCH_BEFORE_MS + PRE_MS + AIC_BEFORE_MS + 1.0, sr)
    reach_after = _ms(SEARCH_AFTER_MS + POST_MS + AIC_AFTER_MS + 1.0, sr)
    chunk = max(int(CHUNK_S * sr), reach_before + reach_after)
    keep = reach_before + reach_after  # the end of a chunk still needed by peaks refined with the next
    done = 0
    tail = None
    for start, bands, sums in _band_chunks(mono, sections, chunk):
        if tail is not None:
            t_start, t_bands, t_sums = tail
            start = t_start
            bands = [np.concatenate([a, b]) for a, b in zip(t_bands, bands)]
            sums = [np.concatenate([a[:-1], b]) for a, b in zip(t_sums, sums)]
        stop = start + len(bands[0])
        last = len(centres) if stop >= n else int(np.searchsorted(centres, stop - reach_after, side="right"))
        if last > done:
            yield _StemSignal(sr, n, mono, min_added_db, start, bands, sums), range(done, last)
            done = last
        cut = max(0, len(bands[0]) - keep)
        tail = (start + cut, [b[cut:].copy() for b in bands], [c[cut:].copy() for c in sums])


def _attack_points(sig: _StemSignal, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample indices in [lo, hi) where an attack starts: local maxima of the STA/LTA ratio.

    The ratio is taken in nested high-passed bands and the largest counts: a
    stick's broadband click still rises in the top band when a drum's own
    ringing body, beating with the new stroke, hides it lower down.
    Returns (indices, rise dB, added level dB, band). The added level (energy
    after minus energy before) ranks attacks: a loud stroke over a soft grace
    note, a fresh attack over a wobble in the tail of an earlier, louder one.
    """
    post, pre = sig.ms(POST_MS), sig.ms(PRE_MS)
    lo, hi = max(lo, pre), min(hi, sig.n - post)
    if hi - lo < 3:
        return np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0, int)
    n = np.arange(lo, hi)
    ratios, levels = [], []
    for band in range(len(sig.bands)):
        # lo >= pre and hi <= n - post: no window reaches past the stem, so plain runs of the sums do
        after = sig.energy_run(band, lo, len(n), post)
        before = sig.energy_run(band, lo - pre, len(n), pre)
        level = _db(after - before)
        ratio = np.where(level >= sig.min_added_db[band], _db(after) - _db(before), -np.inf)
        ratios.append(ratio)
        levels.append(level)
    ratio_rows, level_rows = np.array(ratios), np.array(levels)
    which = np.argmax(ratio_rows, axis=0)
    ratio = ratio_rows[which, np.arange(len(n))]
    level = level_rows.max(axis=0)
    # local maxima over +-1.5 ms: one point per attack
    half = sig.ms(1.5)
    padded = np.pad(ratio, half, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    idx = np.flatnonzero((ratio >= windows.max(axis=1)) & (ratio >= MIN_RISE_DB))
    return n[idx], ratio[idx], level[idx], which[idx]


def _aic_onset(y: np.ndarray, lo: int, hi: int) -> int:
    """First sample of the change from 'before' to 'attack' variance in y[lo:hi] (AIC picker)."""
    lo, hi = max(lo, 0), min(hi, len(y))
    seg = y[lo:hi]
    n = len(seg)
    if n < 8:
        return lo
    energy = seg * seg
    head = np.cumsum(energy)
    k = np.arange(2, n - 2)
    var_before = head[k - 1] / k
    var_after = (head[-1] - head[k - 1]) / (n - k)
    tiny = 1e-30
    aic = k * np.log(var_before + tiny) + (n - k - 1) * np.log(var_after + tiny)
    return lo + int(k[np.argmin(aic)])


class _Attack(NamedTuple):
    onset: int  # sample
    rise_db: float
    added_db: float
    grace: bool
    coarse_s: float = 0.0
    activation: float = 0.0


def _refine(sig: _StemSignal, coarse_s: float) -> list[_Attack]:
    """The attack behind one activation peak (and a grace note the network merged into it)."""
    centre = int(round(coarse_s * sig.sr))
    points, rises, levels, bands = _attack_points(
        sig, centre - sig.ms(SEARCH_BEFORE_MS), centre + sig.ms(SEARCH_AFTER_MS))
    if len(points) == 0:
        return []
    # The added level keeps growing for a few ms as a drum's body builds up, so
    # the loudest point is often late: the attack started at the earliest point
    # shortly before it that already added comparable energy.
    # A wobble in a ringing body rises a few dB; a real start rises a good share
    # of the sharpest rise around.
    clear = np.flatnonzero(rises >= CLEAR_RISE_DB)  # a few-dB wobble never outranks a clear attack
    pool = clear if clear.size else np.arange(len(points))
    loudest = int(pool[np.argmax(levels[pool])])
    build_up = sig.ms(BUILD_UP_MS)
    near = [i for i in range(len(points))
            if 0 <= points[loudest] - points[i] <= build_up and levels[i] >= levels[loudest] - BUILD_UP_DB]
    sharpest = max(rises[i] for i in near)
    main = min(i for i in near if rises[i] >= BUILD_UP_RISE_SHARE * sharpest)
    found = [(main, False)]
    gap_lo, gap_hi = sig.ms(GRACE_GAP_MS[0]), sig.ms(GRACE_GAP_MS[1])
    earlier = [i for i in range(len(points))
               if gap_lo <= points[main] - points[i] <= gap_hi
               and rises[i] >= GRACE_MIN_RISE_DB and levels[i] >= levels[main] - GRACE_MAX_BELOW_DB]
    if earlier:
        found.append((max(earlier, key=lambda i: levels[i]), True))
    out = []
    for i, grace in found:
        p = int(points[i])
        seg, seg_lo = sig.band(int(bands[i]), p - sig.ms(AIC_BEFORE_MS), p + sig.ms(AIC_AFTER_MS))
        onset = _aic_onset(seg, 0, len(seg)) + seg_lo
        out.append(_Attack(onset, float(rises[i]), float(levels[i]), grace))
    return out


def refine_times(stem: Stem, times_s, max_move_ms: float) -> list[float | None]:
    """The main attack the refiner finds around each of ``times_s`` (sorted), in seconds, or None
    where it finds none within ``max_move_ms`` of the time given."""
    times = [float(t) for t in times_s]
    out: list[float | None] = [None] * len(times)
    if not times or not np.any(stem.audio):
        return out
    centres = np.array([int(round(t * stem.sample_rate)) for t in times], dtype=np.int64)
    limit = max_move_ms / 1000.0
    for sig, which in _signals(stem, centres):
        for i in which:
            mains = [a.onset / stem.sample_rate for a in _refine(sig, times[i]) if not a.grace]
            near = [t for t in mains if abs(t - times[i]) <= limit]
            if near:
                out[i] = min(near, key=lambda t: abs(t - times[i]))
    return out
