"""Mixing: placed one-shots -> dry drum tracks -> mic stems.

Everything here is linear and sample-exact: a shot placed at sample ``n``
and fed to a channel with delay ``d`` starts at ``n + d`` in that channel,
so the truth the session records is exact by construction.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
from scipy import signal

from .mics import Mic, MicSetup


def velocity_gain_db(velocity: float) -> float:
    """Level of a stroke: 30 dB between velocity 0.1 and 1, like a sampler's velocity curve."""
    return 30.0 * float(np.log10(max(velocity, 1e-3)))


def drum_tracks(placements: Iterable[tuple[str, int, float, np.ndarray]], n_samples: int) -> dict[str, np.ndarray]:
    """Sum ``(drum, onset_sample, amplitude, shot)`` placements into one dry track per drum.

    Returns drum -> ``(n_samples,)`` float32; shots running past the end are cut.
    """
    tracks: dict[str, np.ndarray] = {}
    for drum, onset, amplitude, shot in placements:
        track = tracks.get(drum)
        if track is None:
            track = tracks[drum] = np.zeros(n_samples, dtype=np.float32)
        if onset >= n_samples:
            continue
        end = min(n_samples, onset + shot.size)
        track[onset:end] += np.float32(amplitude) * shot[: end - onset]
    return tracks


def render_mic(mic: Mic, tracks: Mapping[str, np.ndarray], n_samples: int) -> np.ndarray:
    """One stem, shape ``(n_channels, n_samples)`` float32, before normalisation."""
    out = np.zeros((mic.n_channels, n_samples), dtype=np.float32)
    for drum, track in tracks.items():
        feed = mic.feeds.get(drum)
        if feed is None:
            continue
        for ch in range(mic.n_channels):
            delay = feed.delay_samples[ch]
            if delay < n_samples:
                gain = np.float32(10.0 ** (feed.gain_db[ch] / 20.0))
                out[ch, delay:] += gain * track[: n_samples - delay]
    if mic.reverb_ir is not None:
        for ch in range(mic.n_channels):
            out[ch] = signal.oaconvolve(out[ch], mic.reverb_ir[ch])[:n_samples]
    if mic.polarity < 0:
        out = -out
    return out


def render_mics(setup: MicSetup, tracks: Mapping[str, np.ndarray], n_samples: int) -> dict[str, np.ndarray]:
    """Every stem of a setup: name -> ``(n_channels, n_samples)`` float32."""
    return {mic.name: render_mic(mic, tracks, n_samples) for mic in setup.mics}
