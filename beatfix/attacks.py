"""Attacks heard in the raw audio of every channel, whatever the analysis found.

The planner cuts each hit a pad before its earliest *detected* close-mic
attack, and every seam plays some decay twice (a fill), drops some (an
overlap) or stretches it. An attack the analysis missed (a soft flam grace
note, a cymbal with no close mic heard only in the overheads) must not be in
that decay: it would sound twice, be chopped, or be clicked by a cut landing
on it. So the planner also asks the audio itself where attacks are.

An attack here is a sudden rise of high-band energy: the 2 kHz+ band, in
0.5 ms frames, rising :data:`RISE_DB` within :data:`RISE_MS` to within
:data:`FLOOR_BELOW_PEAK_DB` of the channel's loudest frame, and staying up:
the :data:`SUSTAIN_MS` from the rise on average :data:`SUSTAIN_DB` above the
few ms before it. Decays, reverb tails and cymbal wash fall or wander (a
reverb tail's quiet millisecond can be followed by a 10 dB louder one, but
not by 4 ms of them); strokes jump and stay. Cuts are made at the same
sample on every channel, so the channels are pooled in their own (raw, not
delay-compensated) time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy import signal as sps

BAND_HZ = 2000.0
FRAME_MS = 0.5
SMOOTH_FRAMES = 2  # energy averaged over 1 ms: steadier than one frame, still sharp
RISE_DB = 10.0
RISE_MS = 3.0
FLOOR_BELOW_PEAK_DB = 50.0
SUSTAIN_DB = 5.0
SUSTAIN_MS = 4.0  # compared with the 4 ms ending 1 ms before the rise
QUIET_DB = 1.5  # an attack starts at the last frame this close to the quietest before its rise


@dataclass(frozen=True)
class AttackMap:
    """Where attacks start, in samples of the session timeline, pooled over all channels (sorted)."""

    sample_rate: int
    start_samples: np.ndarray  # int64, sorted: the quiet frame each rise starts from

    def between(self, start_sample: int, stop_sample: int) -> np.ndarray:
        """Attack starts in ``[start_sample, stop_sample)``."""
        lo, hi = np.searchsorted(self.start_samples, [start_sample, stop_sample], side="left")
        return self.start_samples[lo:hi]

    def latest_before(self, stop_sample: int, *, not_before: int) -> int | None:
        """The last attack start in ``[not_before, stop_sample)``, or None."""
        found = self.between(not_before, stop_sample)
        return int(found[-1]) if found.size else None


def _channel_attacks(x: np.ndarray, sos: np.ndarray, frame: int, rise_frames: int) -> np.ndarray:
    """Attack start samples of one channel."""
    hp = sps.sosfilt(sos, np.asarray(x, dtype=np.float32))
    n = hp.size // frame
    if n <= rise_frames:
        return np.zeros(0, dtype=np.int64)
    framed = hp[:n * frame].reshape(n, frame)
    energy = np.einsum("ij,ij->i", framed, framed).astype(np.float64) / frame
    smooth = np.convolve(energy, np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES)[:n]  # trailing mean
    env = 10.0 * np.log10(smooth + 1e-20)
    floor = env.max() - FLOOR_BELOW_PEAK_DB
    env = np.maximum(env, floor)
    # The rise_frames before each frame (from frame rise_frames on).
    prior = np.lib.stride_tricks.sliding_window_view(env, rise_frames)[:-1]  # frames i-K .. i-1 for i >= K
    rise = env[rise_frames:] - prior.min(axis=1)
    hot = np.flatnonzero(rise >= RISE_DB)
    if hot.size == 0:
        return np.zeros(0, dtype=np.int64)
    # One attack per run of hot frames, if the run's first hot frame stays up.
    first = hot[np.concatenate([[True], np.diff(hot) > rise_frames])] + rise_frames
    sustain, gap = max(1, round(SUSTAIN_MS / FRAME_MS)), max(1, round(1.0 / FRAME_MS))
    total = np.concatenate([[0.0], np.cumsum(energy)])
    end = np.minimum(first + sustain, n)
    after = (total[end] - total[first]) / np.maximum(end - first, 1)
    lo, hi = np.maximum(first - sustain - gap, 0), np.maximum(first - gap, 1)
    before = (total[hi] - total[lo]) / np.maximum(hi - lo, 1)
    kept = first[10.0 * np.log10((after + 1e-20) / (before + 1e-20)) >= SUSTAIN_DB]
    # It starts at the last quiet frame before its rise (within QUIET_DB of the quietest): the
    # latest point a cut can still be clean.
    windows = prior[kept - rise_frames]  # frames first - K .. first - 1
    quiet = windows <= windows.min(axis=1, keepdims=True) + QUIET_DB
    last_quiet = rise_frames - 1 - np.argmax(quiet[:, ::-1], axis=1)
    return (kept - rise_frames + last_quiet).astype(np.int64) * frame


def find_attacks(channels: Iterable[np.ndarray], sample_rate: int) -> AttackMap:
    """Attacks in every channel of ``channels`` (arrays ``(n_channels, n_samples)`` or ``(n_samples,)``)."""
    sr = int(sample_rate)
    frame = max(1, int(round(FRAME_MS / 1000.0 * sr)))
    rise_frames = max(1, int(round(RISE_MS / FRAME_MS)))
    cutoff = min(BAND_HZ, 0.45 * sr)
    # 4th order: a 2nd-order high-pass let a close kick's low body through 40-50 dB down, and each of
    # its cycles read as a new 10 dB "attack" against the floor (false cuts every 8 ms of a kick decay).
    sos = sps.butter(4, cutoff, btype="highpass", fs=sr, output="sos").astype(np.float32)
    found = [np.zeros(0, dtype=np.int64)]
    for audio in channels:
        for x in np.atleast_2d(audio):
            found.append(_channel_attacks(x, sos, frame, rise_frames))
    return AttackMap(sr, np.unique(np.concatenate(found)))
