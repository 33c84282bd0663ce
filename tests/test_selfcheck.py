"""Phase first: --flams fix never moves a drum without all of its sound, and every align checks its output.

The sessions are built in the test (tests/session_fixtures.py). Lags are
measured from the audio alone: a close mic's window around each stroke,
cross-correlated with the overhead, before and after the edit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps
from session_fixtures import FOLLOWERS, Spec, make_session

from beatfix.align import align_session
from beatfix.analyse import analyse_session

SR = 44100


def _peak_lag(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> float:
    """Lag (samples, sub-sample) in [lo, hi] at which ``b`` best matches ``a`` (b later: positive).

    The peak of the cross-correlation's envelope: a bright drum's correlation rings at its own
    frequencies, and its carrier peaks, a tenth of a ms apart, trade places under small interference.
    """
    pad = 64
    lags = np.arange(lo - pad, hi + pad + 1)
    n = a.size
    values = np.array([float(np.dot(a, b[k - lags[0]: k - lags[0] + n])) for k in lags])
    env = np.abs(sps.hilbert(values))[pad: pad + hi - lo + 1]
    i = int(np.argmax(env))
    if 0 < i < env.size - 1:
        y0, y1, y2 = env[i - 1: i + 2]
        den = y0 - 2 * y1 + y2
        return float(lo + i + (0.5 * (y0 - y2) / den if den else 0.0))
    return float(lo + i)


def _locate(x_in: np.ndarray, x_out: np.ndarray, at: int, search: int, n: int) -> int:
    """Where the window of ``x_in`` at ``at`` lies in ``x_out`` (within +-search samples)."""
    ref = x_in[at: at + n]
    best = max(range(-search, search + 1), key=lambda k: float(np.dot(ref, x_out[at + k: at + k + n])))
    return at + best


def close_to_follower_lags_ms(close_in, fol_in, close_out, fol_out, onsets_s, delay_ms, *, highpass_hz=0.0, sr=SR):
    """Per stroke, (lag in, lag out) in ms from close mic to follower, measured on the audio.

    The peak is sought within 1.5 ms of the path's true delay, above ``highpass_hz``: a louder drum
    struck with this one (the snare with the hat) makes other peaks, which its own moves shift.
    """
    if highpass_hz:
        sos = sps.butter(4, highpass_hz, btype="highpass", fs=sr, output="sos")
        close_in, fol_in, close_out, fol_out = (sps.sosfiltfilt(sos, x) for x in (close_in, fol_in, close_out, fol_out))
    n = int(0.012 * sr)
    lo, hi = int((delay_ms - 1.5) / 1000.0 * sr), int((delay_ms + 1.5) / 1000.0 * sr)
    out = []
    for t in onsets_s:
        at = int(round(t * sr)) - int(0.001 * sr)
        if at + lo - 64 < 0 or at + hi + n + 64 > close_in.size:
            continue
        moved = _locate(close_in, close_out, at, int(0.02 * sr), n)
        lag_in = _peak_lag(close_in[at: at + n], fol_in[at + lo - 64: at + hi + n + 64], lo, hi)
        lag_out = _peak_lag(close_out[moved: moved + n], fol_out[moved + lo - 64: moved + hi + n + 64], lo, hi)
        out.append((lag_in * 1000.0 / sr, lag_out * 1000.0 / sr))
    return np.array(out)


@pytest.fixture(scope="module")
def hat_session():
    # Every hat stroke reaches the overheads up to 5 dB louder or softer (open, closed, edge, tip):
    # its part of the overheads cannot be estimated from its close mic with a gain its strokes agree on.
    spec = Spec(bpm=100, bars=4, seed=5, close=("kick", "snare_top", "hh"), followers=("oh_l", "oh_r"),
                toms=False, drum_jitter_ms=2.5, flams=((4, 7.0), (12, 8.0), (20, 6.0), (28, 9.0)),
                follower_gain_spread_db=(("hat", 5.0),))
    synth = make_session(spec)
    analysis = analyse_session(synth.session, bpm=spec.bpm)
    return synth, analysis


def test_untrusted_hat_keeps_its_lag_to_the_overheads_on_every_hit(hat_session):
    synth, analysis = hat_session
    session = synth.session
    result = align_session(session, analysis, flams="fix")
    out = {s.name: s.audio[0].astype(float) for s in result.stems}
    inp = {s.name: s.audio[0].astype(float) for s in session.stems}
    hats = [e.time_s for e in synth.truth.events if e.drum == "hat"]
    for oh in ("oh_l", "oh_r"):
        lags = close_to_follower_lags_ms(inp["hh"], inp[oh], out["hh"], out[oh], hats, FOLLOWERS[oh]["hat"][1],
                                         highpass_hz=7000.0)
        assert len(lags) >= len(hats) - 2
        change = np.abs(lags[:, 1] - lags[:, 0])
        assert change.max() <= 0.1, (oh, np.round(change, 3))
