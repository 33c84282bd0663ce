"""Each drum's path into a follower (beatfix.separate): direct sound, gain, early reflections, trust."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from beatfix.separate import MAX_SPREAD, Path, apply_path, estimate_paths, trusted

SR = 44100


def _shot(rng, ms: float = 120.0) -> np.ndarray:
    t = np.arange(int(ms * SR / 1000)) / SR
    return (rng.standard_normal(t.size) * np.exp(-t / 0.015)).astype(np.float32)


def _track(rng, n_strokes: int = 40, seconds: float = 24.0, gains=None):
    """A close mic: one drum struck ``n_strokes`` times at about 0.6 s apart, velocities varying."""
    x = np.zeros(int(seconds * SR), dtype=np.float32)
    shot = _shot(rng)
    strokes = (np.arange(n_strokes) * 0.6 + 0.3 + rng.uniform(0, 0.05, n_strokes)) * SR
    strokes = strokes.astype(int)
    levels = rng.uniform(0.5, 1.0, n_strokes)
    for s, v in zip(strokes, levels):
        x[s:s + shot.size] += v * shot
    return x, [int(s) for s in strokes], levels, shot


def _room_ir(rng, taps: dict[float, float], tail_energy: float) -> np.ndarray:
    """Direct sound 1.0 at tap 0, reflections {ms: gain}, a low-passed noise tail from 5 ms carrying
    ``tail_energy`` times the direct sound's energy."""
    n = int(0.4 * SR)
    t = np.arange(n) / SR
    tail = sps.sosfilt(sps.butter(2, 5000, fs=SR, output="sos"), rng.standard_normal(n) * np.exp(-6.9 * t / 0.4))
    tail[: int(0.005 * SR)] = 0.0
    tail *= np.sqrt(tail_energy / np.sum(tail ** 2))
    for ms, g in taps.items():
        tail[int(round(ms * SR / 1000))] += g
    tail[0] = 1.0
    return tail


def _follower(x: np.ndarray, ir: np.ndarray, gain: float, delay: int) -> np.ndarray:
    wet = sps.oaconvolve(x, ir)[: x.size] * gain
    out = np.zeros_like(x)
    out[delay:] = wet[: x.size - delay]
    return out.astype(np.float32)


def test_a_rooms_direct_sound_is_the_first_arrival_not_the_strongest():
    """A reflection 1.2x the direct sound 2.5 ms after it, and a tail with 3x its energy: the path is still
    the direct sound, at the right gain (the gain measured before the reflections arrive)."""
    rng = np.random.default_rng(1)
    x, strokes, _, _ = _track(rng)
    ir = _room_ir(rng, {2.5: 1.2, 6.3: -0.35, 11.0: 0.3}, tail_energy=3.0)
    room = _follower(x, ir, gain=0.4, delay=500)
    path = estimate_paths({"kick": x}, {"kick": strokes}, room, SR, hints_ms={"kick": 500 / SR * 1000})["kick"]
    assert abs(path.delay_samples - 500) < 0.1, path
    assert abs(20 * np.log10(path.gain / 0.4)) < 0.5, path
    assert path.echoes == () and trusted(path)


def test_early_reflections_are_found_when_asked():
    rng = np.random.default_rng(2)
    x, strokes, _, _ = _track(rng)
    taps = {3.1: 0.4, 7.7: -0.3, 19.0: 0.25}
    room = _follower(x, _room_ir(rng, taps, tail_energy=2.0), gain=0.5, delay=400)
    path = estimate_paths({"snare": x}, {"snare": strokes}, room, SR, echo_ms=30.0)["snare"]
    assert abs(path.delay_samples - 400) < 0.1
    found = {round((e.delay_samples - path.delay_samples) / SR * 1000, 1): e.gain / path.gain for e in path.echoes}
    for ms, g in taps.items():
        near = [r for at, r in found.items() if abs(at - ms) < 0.05]
        # the peak ratio reads a reflection low (never high: an overestimate would click)
        assert near and 0.5 * abs(g) < abs(near[0]) <= 1.05 * abs(g) and np.sign(near[0]) == np.sign(g), (ms, g, found)
    # moving the part with its reflections takes them out of what stays behind
    part = apply_path(path, x)
    direct_only = apply_path(Path("snare", path.delay_samples, path.gain), x)
    early = slice(0, x.size)
    left = room - part
    assert np.sum(left[early] ** 2) < np.sum((room - direct_only)[early] ** 2)


def test_apply_path_adds_each_echo_as_a_tap():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(2000).astype(np.float32)
    path = Path("hh", 10.0, 0.5, echoes=(Path("hh", 30.0, -0.2), Path("hh", 45.5, 0.1)))
    got = apply_path(path, x)
    want = 0.5 * np.roll(x, 10) - 0.2 * np.roll(x, 30)
    want[:30] = 0.0
    want[10:30] = 0.5 * x[:20]
    frac = apply_path(Path("hh", 45.5, 0.1), x)
    np.testing.assert_allclose(got, want + frac, atol=1e-5)


@pytest.mark.parametrize("consistent", [True, False])
def test_a_path_whose_strokes_disagree_is_not_trusted(consistent):
    """Four strokes whose level in the follower does not follow the close mic (a tom under everyone's
    reverb): no part of it is moved on its own."""
    rng = np.random.default_rng(4)
    x, strokes, levels, shot = _track(rng, n_strokes=4, seconds=3.0)
    follower = np.zeros_like(x)
    ratios = [0.3] * 4 if consistent else [0.1, 0.3, 0.6, 1.2]
    for s, v, r in zip(strokes, levels, ratios):
        follower[s + 200:s + 200 + shot.size] += r * v * shot
    path = estimate_paths({"tom1": x}, {"tom1": strokes}, follower, SR)["tom1"]
    assert abs(path.delay_samples - 200) < 0.1
    assert trusted(path) == consistent, path
    assert (path.spread <= MAX_SPREAD) == consistent


def test_a_first_peak_whose_strokes_disagree_gives_way_to_the_strongest():
    """An earlier arrival whose level changes from stroke to stroke (not a path: something else that
    happens to come with the drum) loses to the later, steady one the strokes agree on."""
    rng = np.random.default_rng(6)
    x, strokes, levels, shot = _track(rng)
    follower = np.zeros_like(x)
    for s, v in zip(strokes, levels):
        follower[s + 300:s + 300 + shot.size] += 0.5 * v * shot  # the drum's path: steady
        follower[s + 120:s + 120 + shot.size] += rng.uniform(0.0, 0.7) * v * shot  # erratic, earlier
    path = estimate_paths({"kick": x}, {"kick": strokes}, follower, SR)["kick"]
    assert abs(path.delay_samples - 300) < 0.1 and abs(path.gain - 0.5) < 0.05 and trusted(path), path
