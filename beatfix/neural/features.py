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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfilt

from ..types import ROLES

ROLE_LIST: tuple[str, ...] = tuple(sorted(ROLES))
N_CONTEXT = 15
FLOOR_DB = -100.0


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


def _band_signal(x: np.ndarray, sample_rate: int, band: tuple[float | None, float | None]) -> np.ndarray:
    lo, hi = band
    nyq = sample_rate / 2.0
    if hi is not None and hi >= nyq * 0.95:
        hi = None
    if lo is None and hi is None:
        return x
    if lo is None:
        sos = butter(2, hi, btype="lowpass", fs=sample_rate, output="sos")
    elif hi is None:
        sos = butter(2, lo, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = butter(2, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def _gather_db(energy: np.ndarray, sample_rate: int, times_s: np.ndarray, hop_ms: float, n_frames: int) -> np.ndarray:
    """Mean energy over the trailing ``hop_ms`` before each frame time, in dB. Shape (E, n_frames)."""
    width = max(1, int(round(hop_ms * sample_rate / 1000.0)))
    # origin moves the window so that smoothed[i] = mean(energy[i - width + 1 : i + 1]).
    smoothed = uniform_filter1d(energy, size=width, origin=(width - 1) // 2, mode="constant")
    offsets_s = (np.arange(n_frames) - n_frames // 2) * hop_ms / 1000.0
    pos = np.rint((times_s[:, None] + offsets_s[None, :]) * sample_rate).astype(np.int64)
    valid = (pos >= 0) & (pos < energy.shape[0])
    values = smoothed[np.clip(pos, 0, energy.shape[0] - 1)]
    values = np.where(valid, values, 0.0)
    return 10.0 * np.log10(values + 1e-10)


def reference_db(mono: np.ndarray, sample_rate: int) -> float:
    """A channel's loud-hit level: the 99.9th percentile of its 4 ms energy, dBFS."""
    width = max(1, int(round(0.004 * sample_rate)))
    energy = uniform_filter1d(mono.astype(np.float32) ** 2, size=width, mode="constant")
    level = float(np.percentile(energy[::max(1, width // 4)], 99.9))
    return max(FLOOR_DB, 10.0 * np.log10(level + 1e-10))


def channel_features(mono: np.ndarray, sample_rate: int, times_s: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Fine (E, B, F) and coarse (E, B, K) features of one channel, and its reference dBFS.

    Values are dB relative to the channel's reference, divided by 20 and
    clipped to [-4, 1.5]: a loud hit of this channel sits near 0.
    """
    mono = np.asarray(mono, dtype=np.float32)
    times_s = np.asarray(times_s, dtype=np.float64)
    ref = reference_db(mono, sample_rate)
    fine = np.empty((times_s.size, cfg.n_bands, cfg.fine_frames), dtype=np.float32)
    coarse = np.empty((times_s.size, cfg.n_bands, cfg.coarse_frames), dtype=np.float32)
    for b, band in enumerate(cfg.bands_hz):
        energy = _band_signal(mono, sample_rate, band) ** 2
        fine[:, b] = _gather_db(energy, sample_rate, times_s, cfg.fine_hop_ms, cfg.fine_frames)
        coarse[:, b] = _gather_db(energy, sample_rate, times_s, cfg.coarse_hop_ms, cfg.coarse_frames)
        del energy
    fine = np.clip((fine - ref) / 20.0, -4.0, 1.5)
    coarse = np.clip((coarse - ref) / 20.0, -4.0, 1.5)
    return fine, coarse, ref


def _wrap(x):
    """Into [-0.5, 0.5): a phase in grid steps."""
    return x - np.floor(x + 0.5)


def grid_context(times_s: np.ndarray, target: np.ndarray, *, step_s: float, slot_of, slot_time_of,
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
            gap_prev[1:] = np.minimum(np.diff(t) / step_s, 8.0)
            gap_next[:-1] = np.minimum(np.diff(t) / step_s, 8.0)
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


def event_features(channels: Sequence[np.ndarray], roles: Sequence[str], sample_rate: int,
                   times_s: np.ndarray, target: np.ndarray, context: np.ndarray,
                   cfg: FeatureConfig) -> EventFeatures:
    """Stack :func:`channel_features` of every channel for every event.

    ``channels``: mono arrays ``(n_samples,)``, one per stem; ``roles`` their roles;
    ``times_s`` (E,) event times; ``target`` (E,) channel index of each event.
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    n_ev, n_ch = times_s.size, len(channels)
    fine = np.empty((n_ev, n_ch, cfg.n_bands, cfg.fine_frames), dtype=np.float32)
    coarse = np.empty((n_ev, n_ch, cfg.n_bands, cfg.coarse_frames), dtype=np.float32)
    chan = np.zeros((n_ch, 1), dtype=np.float32)
    for c, mono in enumerate(channels):
        f, k, ref = channel_features(mono, sample_rate, times_s, cfg)
        fine[:, c], coarse[:, c] = f, k
        chan[c, 0] = ref / 40.0
    return EventFeatures(
        fine=fine,
        coarse=coarse,
        chan=chan,
        roles=np.array([role_index(r) for r in roles], dtype=np.int64),
        target=np.asarray(target, dtype=np.int64),
        context=np.asarray(context, dtype=np.float32),
    )
