"""Model inputs from arrays: band envelopes around candidate onsets, plus grid context.

Pure numpy/scipy, no file access. Shapes, with ``E`` events (candidate onsets on
close mics), ``C`` channels (one per stem, stereo stems summed to mono), ``B``
bands and ``F``/``K`` fine/coarse frames:

- ``fine``    (E, C, B, F) float32: log band energy, 0.25 ms frames, +-8 ms around each event
- ``coarse``  (E, C, B, K) float32: the same at 4 ms frames, +-100 ms
- ``chan``    (C, 1) float32: each channel's loud-hit reference level, dBFS / 40
- ``roles``   (C,) int64: index into :data:`ROLE_LIST`
- ``target``  (E,) int64: channel the event was detected on
- ``context`` (E, G) float32: grid phase, local drift, tempo, neighbours (see :func:`grid_context`)

Every channel sees the same window times (the event's time): a snare's bleed in
the kick mic arrives a little later and weaker than in the snare mic, and that
difference is the cue the model reads. Envelopes are causal (trailing window)
so nothing leaks before an attack.

Memory: nothing session-long is built. Each band is filtered block by block
with the filter state carried (so every sample is what one pass over the whole
signal gives), and only the stretch around the events being featurized is kept;
:func:`iter_event_features` hands the events over in batches, so a caller that
encodes batch by batch never holds the features of the whole session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

import numpy as np
from scipy.signal import butter, sosfilt

from ..types import ROLES, UNTOUCHED_ROLES

# The model's role embedding is indexed by this list: it must not change with new roles (stems of the
# untouched roles never reach the model).
ROLE_LIST: tuple[str, ...] = tuple(sorted(ROLES - UNTOUCHED_ROLES))
N_CONTEXT = 15
FLOOR_DB = -100.0
GROUP_S = 1.0  # events featurized together span at most this: bounds the band stretches kept
BLOCK_SAMPLES = 1 << 14  # samples filtered at once
BATCH_EVENTS = 512  # events per batch from iter_event_features


@dataclass(frozen=True)
class FeatureConfig:
    fine_hop_ms: float = 0.25
    fine_frames: int = 64  # centred: frames at t + (k - F/2) * hop
    coarse_hop_ms: float = 4.0
    coarse_frames: int = 50
    # Band edges in Hz; ``None`` = open. The last band is broadband.
    bands_hz: tuple[tuple[float | None, float | None], ...] = field(
        default=((None, 150.0), (150.0, 1000.0), (1000.0, 5000.0), (5000.0, None), (None, None))
    )
    drift_window_s: float = 2.0

    @property
    def n_bands(self) -> int:
        return len(self.bands_hz)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bands_hz"] = [list(b) for b in self.bands_hz]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        d = dict(d)
        if "bands_hz" in d:
            d["bands_hz"] = tuple(tuple(b) for b in d["bands_hz"])
        return cls(**d)


def role_index(role: str) -> int:
    return ROLE_LIST.index(role) if role in ROLE_LIST else ROLE_LIST.index("other")


def band_sos(sample_rate: int, band: tuple[float | None, float | None]) -> np.ndarray | None:
    """Second-order sections of a band's filter; ``None`` for the broadband band."""
    lo, hi = band
    nyq = sample_rate / 2.0
    if hi is not None and hi >= nyq * 0.95:
        hi = None
    if lo is None and hi is None:
        return None
    if lo is None:
        return butter(2, hi, btype="lowpass", fs=sample_rate, output="sos")
    if hi is None:
        return butter(2, lo, btype="highpass", fs=sample_rate, output="sos")
    return butter(2, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")


def _read(x, lo: int, hi: int) -> np.ndarray:
    """Samples ``[lo, hi)`` of a channel as float32 (``x``: an array, or anything sliceable with a length)."""
    return np.asarray(x[lo:hi], dtype=np.float32)


class _BandEnergies:
    """Squared band signals of every channel, ``(bands, channels, samples)`` float32, left to right.

    Each filter's state is carried from block to block, so the samples equal
    those of one ``sosfilt`` over the whole channel. Only the stretch asked for
    last (and anything filtered after it) is kept, in one buffer reused from call
    to call; the next call's ``lo`` may not be smaller. A channel shorter than
    the others reads as silence past its end.
    """

    def __init__(self, channels: Sequence, soses: Sequence[np.ndarray | None], capacity: int = 0):
        self.channels, self.soses = channels, soses
        self.zi = [None if sos is None else np.zeros((sos.shape[0], len(channels), 2)) for sos in soses]
        self.done = 0  # samples filtered so far
        self.lo = 0  # buffer[..., 0] is this sample; the buffer holds [lo, done)
        self.buffer = np.zeros((len(soses), len(channels), capacity), dtype=np.float32)

    def _read(self, lo: int, hi: int) -> np.ndarray:
        out = np.zeros((len(self.channels), hi - lo), dtype=np.float32)
        for c, x in enumerate(self.channels):
            part = _read(x, lo, hi)
            out[c, : part.size] = part
        return out

    def get(self, lo: int, hi: int) -> np.ndarray:
        """Energy of samples ``[lo, hi)``, a view valid until the next call; ``lo`` may not move back."""
        if lo < self.lo:
            raise ValueError(f"band energy asked from sample {lo}, after {self.lo}: requests must move forward")
        held = max(0, self.done - lo)
        if held and lo > self.lo:
            self.buffer[:, :, :held] = self.buffer[:, :, lo - self.lo: lo - self.lo + held].copy()
        self.lo = lo
        if self.buffer.shape[2] < hi - lo:
            grown = np.empty(self.buffer.shape[:2] + (hi - lo,), dtype=np.float32)
            grown[:, :, :held] = self.buffer[:, :, :held]
            self.buffer = grown
        while self.done < hi:
            end = min(hi, self.done + BLOCK_SAMPLES)
            x, skip = self._read(self.done, end), max(0, lo - self.done)
            for b, sos in enumerate(self.soses):
                y = x
                if sos is not None:
                    filtered, self.zi[b] = sosfilt(sos, x, axis=-1, zi=self.zi[b])
                    y = filtered.astype(np.float32)
                if end > lo:
                    np.square(y[:, skip:], out=self.buffer[b, :, self.done + skip - lo: end - lo])
            self.done = end
        return self.buffer[:, :, : max(0, hi - lo)]


def reference_db(mono, sample_rate: int) -> float:
    """A channel's loud-hit level: the 99.9th percentile of its 4 ms energy, dBFS.

    The energy is the centred 4 ms mean of the squared signal, read every 1 ms,
    computed block by block.
    """
    width = max(1, int(round(0.004 * sample_rate)))
    stride, half, n = max(1, width // 4), width // 2, len(mono)
    levels = []
    per_block = max(1, BLOCK_SAMPLES // stride)
    for first in range(0, n, per_block * stride):
        pos = np.arange(first, min(n, first + per_block * stride), stride)
        lo, hi = max(0, int(pos[0]) - half), min(n, int(pos[-1]) - half + width)
        cum = np.concatenate(([0.0], np.cumsum(_read(mono, lo, hi) ** 2, dtype=np.float64)))
        start = np.clip(pos - half, lo, hi) - lo
        end = np.clip(pos - half + width, lo, hi) - lo
        levels.append(((cum[end] - cum[start]) / width).astype(np.float32))
    level = float(np.percentile(np.concatenate(levels), 99.9)) if levels else 0.0
    return max(FLOOR_DB, 10.0 * np.log10(level + 1e-10))


def _frame_positions(times_s: np.ndarray, sample_rate: int, hop_ms: float, n_frames: int) -> np.ndarray:
    """Sample index of every frame of every event, (E, n_frames): frame k at t + (k - n_frames // 2) * hop."""
    offsets_s = (np.arange(n_frames) - n_frames // 2) * hop_ms / 1000.0
    return np.rint((times_s[:, None] + offsets_s[None, :]) * sample_rate).astype(np.int64)


def _window_index(pos: np.ndarray, lo: int, hi: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the trailing windows ending at ``pos`` start and end in a cumulative sum of samples ``[lo, hi)``.

    Samples before 0 count as silence (the mean still divides by ``width``).
    """
    return np.clip(pos - width + 1, lo, hi) - lo, np.clip(pos + 1, lo, hi) - lo


def _groups(sorted_times_s: np.ndarray, most: int) -> Iterator[slice]:
    """Runs of sorted events spanning at most ``GROUP_S`` and at most ``most`` events."""
    i, n = 0, sorted_times_s.size
    while i < n:
        j = int(np.searchsorted(sorted_times_s, sorted_times_s[i] + GROUP_S, side="right"))
        j = max(i + 1, min(j, i + most))
        yield slice(i, j)
        i = j


def _group_features(channels: Sequence, refs: Sequence[float], sample_rate: int, times_s: np.ndarray,
                    cfg: FeatureConfig, most: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(indices, fine, coarse)`` of runs of events in time order, each within ``GROUP_S``, at most ``most``."""
    order = np.argsort(times_s, kind="stable")
    sizes = [len(x) for x in channels]
    n_max = max(sizes, default=0)
    w_fine = max(1, int(round(cfg.fine_hop_ms * sample_rate / 1000.0)))
    w_coarse = max(1, int(round(cfg.coarse_hop_ms * sample_rate / 1000.0)))
    # the longest stretch a group can ask for, so the buffers are made once
    before_ms = max(cfg.fine_frames // 2 * cfg.fine_hop_ms, cfg.coarse_frames // 2 * cfg.coarse_hop_ms)
    after_ms = max((cfg.fine_frames - 1 - cfg.fine_frames // 2) * cfg.fine_hop_ms,
                   (cfg.coarse_frames - 1 - cfg.coarse_frames // 2) * cfg.coarse_hop_ms)
    reach = int(np.ceil((GROUP_S * 1000.0 + before_ms + after_ms) * sample_rate / 1000.0))
    capacity = min(n_max, reach + max(w_fine, w_coarse) + 4)
    energies = _BandEnergies(channels, [band_sos(sample_rate, band) for band in cfg.bands_hz], capacity)
    # cumulative energy of each channel, a leading 0 first; reused: a fresh array costs more than the sum
    cum_buf = np.zeros(len(channels) * (capacity + 1))
    for group in _groups(times_s[order], most):
        idx = order[group]
        t = times_s[idx]
        pos_f = _frame_positions(t, sample_rate, cfg.fine_hop_ms, cfg.fine_frames)
        pos_k = _frame_positions(t, sample_rate, cfg.coarse_hop_ms, cfg.coarse_frames)
        lo = min(max(0, min(int(pos_f.min()) - w_fine + 1, int(pos_k.min()) - w_coarse + 1)), n_max)
        hi = max(lo, min(n_max, max(int(pos_f.max()), int(pos_k.max())) + 1))
        s_f, e_f = _window_index(pos_f, lo, hi, w_fine)
        s_k, e_k = _window_index(pos_k, lo, hi, w_coarse)
        # frame means per band: (E, C, B, frames), float32
        fine = np.empty((idx.size, len(channels), cfg.n_bands, cfg.fine_frames), dtype=np.float32)
        coarse = np.empty((idx.size, len(channels), cfg.n_bands, cfg.coarse_frames), dtype=np.float32)
        if cum_buf.size < len(channels) * (hi - lo + 1):
            cum_buf = np.zeros(len(channels) * (hi - lo + 1))
        cum = cum_buf[: len(channels) * (hi - lo + 1)].reshape(len(channels), hi - lo + 1)
        cum[:, 0] = 0.0
        for b, energy in enumerate(energies.get(lo, hi)):
            np.cumsum(energy, axis=-1, dtype=np.float64, out=cum[:, 1:])
            fine[:, :, b] = ((cum[:, e_f] - cum[:, s_f]) / w_fine).transpose(1, 0, 2)
            coarse[:, :, b] = ((cum[:, e_k] - cum[:, s_k]) / w_coarse).transpose(1, 0, 2)
        # silence outside the channel, dB, then relative to the channel's loud hits
        for c, (n, ref) in enumerate(zip(sizes, refs)):
            for out, pos in ((fine, pos_f), (coarse, pos_k)):
                mean = np.where(((pos >= 0) & (pos < n))[:, None, :], out[:, c], np.float32(0.0))
                out[:, c] = np.clip((10.0 * np.log10(mean + 1e-10) - ref) / 20.0, -4.0, 1.5)
        yield idx, fine, coarse


def _batches(channels: Sequence, refs: Sequence[float], sample_rate: int, times_s: np.ndarray, cfg: FeatureConfig,
             batch_events: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(indices, fine, coarse)`` of the events in time order, ``batch_events`` at a time (the last
    batch aside): a model sees few input shapes (each new one costs memory in its kernels' caches)."""
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    count = 0
    for part in _group_features(channels, refs, sample_rate, times_s, cfg, batch_events):
        pending.append(part)
        count += part[0].size
        while count >= batch_events:
            idx, fine, coarse = (np.concatenate(p) for p in zip(*pending))
            yield idx[:batch_events], fine[:batch_events], coarse[:batch_events]
            pending = [(idx[batch_events:], fine[batch_events:], coarse[batch_events:])]
            count -= batch_events
    if count:
        idx, fine, coarse = (np.concatenate(p) for p in zip(*pending))
        yield idx, fine, coarse


def channel_features(mono, sample_rate: int, times_s: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Fine (E, B, F) and coarse (E, B, K) features of one channel, and its reference dBFS.

    Values are dB relative to the channel's reference, divided by 20 and
    clipped to [-4, 1.5]: a loud hit of this channel sits near 0.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    ref = reference_db(mono, sample_rate)
    fine = np.empty((times_s.size, cfg.n_bands, cfg.fine_frames), dtype=np.float32)
    coarse = np.empty((times_s.size, cfg.n_bands, cfg.coarse_frames), dtype=np.float32)
    for idx, f, k in _group_features([mono], [ref], sample_rate, times_s, cfg, BATCH_EVENTS):
        fine[idx], coarse[idx] = f[:, 0], k[:, 0]
    return fine, coarse, ref


def _wrap(x):
    """Into [-0.5, 0.5): a phase in grid steps."""
    return x - np.floor(x + 0.5)


def grid_context(times_s: np.ndarray, target: np.ndarray, *, step_s, slot_of, slot_time_of,
                 swing_pct: float = 50.0, steps_per_beat: float = 4.0, drift_window_s: float = 2.0) -> np.ndarray:
    """Grid context per event, shape (E, N_CONTEXT). ``times_s`` must be sorted.

    Columns: 0 phase on the grid (-0.5..0.5 steps); 1 local drift: circular
    mean phase of the other events within +-``drift_window_s`` (the band
    rushing or dragging against the grid, or a grid whose tempo is a little
    off); 2 the phase against that drift; 3 step length / 250 ms; 4 swing;
    5 odd slot; 6-7 position in the beat (sin, cos); 8-11 previous and next
    event on the same channel (distance in steps / 8, phase); 12 events of
    other channels within 5 ms / 4; 13 grid known (1); 14 the slot change the
    drift implies (-1, 0, +1): a hit played half a step late on a grid that
    the whole band is ahead of belongs to the earlier slot.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    n = times_s.size
    out = np.zeros((n, N_CONTEXT), dtype=np.float32)
    if n == 0:
        return out
    slots = np.asarray(slot_of(times_s)).reshape(-1)
    step_s = np.broadcast_to(np.asarray(step_s, dtype=np.float64), times_s.shape)  # one, or one per event
    phase = (times_s - np.asarray(slot_time_of(slots)).reshape(-1)) / step_s
    lo = np.searchsorted(times_s, times_s - drift_window_s, side="left")
    hi = np.searchsorted(times_s, times_s + drift_window_s, side="right")
    # circular mean: a drift near half a step wraps, and a plain median would split it in two
    cs = np.concatenate([[0.0], np.cumsum(np.cos(2 * np.pi * phase))])
    sn = np.concatenate([[0.0], np.cumsum(np.sin(2 * np.pi * phase))])
    c = cs[hi] - cs[lo] - np.cos(2 * np.pi * phase)
    s = sn[hi] - sn[lo] - np.sin(2 * np.pi * phase)
    drift = np.where(hi - lo > 1, np.arctan2(s, c) / (2 * np.pi), 0.0)
    against = _wrap(phase - drift)
    out[:, 0] = phase
    out[:, 1] = drift
    out[:, 2] = against
    out[:, 3] = step_s / 0.25
    out[:, 4] = (swing_pct - 50.0) / 25.0
    out[:, 5] = (slots % 2 == 1).astype(np.float32)
    angle = 2.0 * np.pi * slots / max(steps_per_beat, 1.0)
    out[:, 6] = np.sin(angle)
    out[:, 7] = np.cos(angle)
    for ch in np.unique(target):
        idx = np.flatnonzero(target == ch)
        t = times_s[idx]
        gap_prev = np.full(idx.size, 8.0)
        gap_next = np.full(idx.size, 8.0)
        ph_prev = np.zeros(idx.size)
        ph_next = np.zeros(idx.size)
        if idx.size > 1:
            gap_prev[1:] = np.minimum(np.diff(t) / step_s[idx[1:]], 8.0)
            gap_next[:-1] = np.minimum(np.diff(t) / step_s[idx[:-1]], 8.0)
            ph_prev[1:] = phase[idx[:-1]]
            ph_next[:-1] = phase[idx[1:]]
        out[idx, 8] = gap_prev / 8.0
        out[idx, 9] = ph_prev
        out[idx, 10] = gap_next / 8.0
        out[idx, 11] = ph_next
    near_lo = np.searchsorted(times_s, times_s - 0.005, side="left")
    near_hi = np.searchsorted(times_s, times_s + 0.005, side="right")
    out[:, 12] = (near_hi - near_lo - 1) / 4.0
    out[:, 13] = 1.0
    out[:, 14] = np.rint(phase - drift - against)
    return out


@dataclass(frozen=True)
class EventFeatures:
    fine: np.ndarray  # (E, C, B, F) float32
    coarse: np.ndarray  # (E, C, B, K) float32
    chan: np.ndarray  # (C, 1) float32
    roles: np.ndarray  # (C,) int64
    target: np.ndarray  # (E,) int64
    context: np.ndarray  # (E, G) float32

    @property
    def n_events(self) -> int:
        return int(self.target.shape[0])


def _feature_parts(channels, roles, sample_rate, times_s, target, context):
    times_s = np.asarray(times_s, dtype=np.float64)
    refs = [reference_db(x, sample_rate) for x in channels]
    chan = np.array([ref / 40.0 for ref in refs], dtype=np.float32).reshape(len(channels), 1)
    role_ids = np.array([role_index(r) for r in roles], dtype=np.int64)
    return times_s, refs, chan, role_ids, np.asarray(target, dtype=np.int64), np.asarray(context, dtype=np.float32)


def iter_event_features(channels: Sequence, roles: Sequence[str], sample_rate: int, times_s: np.ndarray,
                        target: np.ndarray, context: np.ndarray, cfg: FeatureConfig, *,
                        batch_events: int = BATCH_EVENTS) -> Iterator[tuple[np.ndarray, EventFeatures]]:
    """:func:`event_features` in batches of at most ``batch_events`` events, in time order.

    Yields ``(indices into times_s, the features of those events)``; memory is
    one batch's features plus a few seconds of each band of each channel.
    """
    times_s, refs, chan, role_ids, target, context = _feature_parts(channels, roles, sample_rate, times_s, target,
                                                                     context)
    for idx, fine, coarse in _batches(channels, refs, sample_rate, times_s, cfg, batch_events):
        yield idx, EventFeatures(fine=fine, coarse=coarse, chan=chan, roles=role_ids, target=target[idx],
                                 context=context[idx])


def event_features(channels: Sequence[np.ndarray], roles: Sequence[str], sample_rate: int,
                   times_s: np.ndarray, target: np.ndarray, context: np.ndarray,
                   cfg: FeatureConfig) -> EventFeatures:
    """Features of every channel for every event.

    ``channels``: mono arrays ``(n_samples,)``, one per stem; ``roles`` their roles;
    ``times_s`` (E,) event times; ``target`` (E,) channel index of each event.
    """
    times_s, refs, chan, role_ids, target, context = _feature_parts(channels, roles, sample_rate, times_s, target,
                                                                     context)
    n_ev, n_ch = times_s.size, len(channels)
    fine = np.empty((n_ev, n_ch, cfg.n_bands, cfg.fine_frames), dtype=np.float32)
    coarse = np.empty((n_ev, n_ch, cfg.n_bands, cfg.coarse_frames), dtype=np.float32)
    for idx, f, k in _group_features(channels, refs, sample_rate, times_s, cfg, BATCH_EVENTS):
        fine[idx], coarse[idx] = f, k
    return EventFeatures(fine=fine, coarse=coarse, chan=chan, roles=role_ids, target=target, context=context)
