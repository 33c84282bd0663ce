"""Seams: the reference render of the landed strokes and what an edit added to it (clicks, double attacks)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import signal as sps
from scipy.ndimage import median_filter

from .locate import Landing

# Seam artifacts: high band, short frames, an excess over the reference.
CLICK_BAND_HZ = 4000.0
FRAME_MS = 1.0
EXCESS_DB = 6.0
FLOOR_BELOW_PEAK_DB = 45.0  # quieter frames than this below the channel's loudest are silence
TOLERANCE_FRAMES = 2  # an output frame is compared with the loudest reference frame this close
ATTACK_RISE_DB = 10.0  # an attack: the band rises this much within RISE_FRAMES
RISE_FRAMES = 3
CLICK_MAX_FRAMES = 3  # an excess this short is a click; longer with a new attack in it, a double attack
SPIKE_FRAMES = 5  # a click stands out of the output's own median over this many frames each side...
SPIKE_QUANTILE = 0.999  # ...by more than this quantile of the reference's frames do
SMOOTH_FRAMES = 5  # longer excesses are judged on energy averaged over this many frames
PIECE_LEAD_MS = 5.0  # a piece starts this much before its stroke's landing (pad + crossfade)
MERGE_MS = 25.0  # events on any channels this close together are one seam's (seams are further apart)


# ----------------------------------------------------------------------------- reference render


def render_landed(rendered, onset_s: Sequence[float]) -> dict[str, np.ndarray]:
    """The session's strokes rendered again with stroke ``i`` at ``onset_s[i]`` (dry time, seconds; nan: left out).

    ``rendered`` is a :class:`beatfix.synth.RenderedSession`; shots, mics, gains
    and normalisation are its own, so with the performed onsets this returns
    its stems exactly.
    """
    from ..synth.render import drum_tracks, render_mics, velocity_gain_db

    truth = rendered.truth
    sr, n = int(truth["sample_rate"]), int(truth["n_samples"])
    placements = []
    for hit, t in zip(truth["hits"], onset_s):
        if not math.isfinite(t):
            continue
        onset = int(round(t * sr))
        shot = rendered.hit_shots[hit["index"]]
        if onset < 0:  # landed before the start: what is left of the shot
            shot, onset = shot[-onset:], 0
        placements.append((hit["drum"], onset, 10 ** (velocity_gain_db(hit["velocity"]) / 20), shot))
    stems = render_mics(rendered.mics, drum_tracks(placements, n), n)
    for ch in truth["channels"]:
        stems[ch["stem"]] *= np.float32(10 ** (ch["normalise_gain_db"] / 20))
    return stems


def landed_onsets_s(landings: Sequence[Landing], truth: Mapping) -> np.ndarray:
    """Every truth stroke's landing in dry time, for :func:`render_landed`.

    A stroke not found where it belongs is left out (nan): if the edit dropped
    its attack the reference agrees; if the edit put it elsewhere, the
    reference lacks it there and the seam check sees an attack it does not
    expect. Unmeasurable strokes come with their best guess (``weak``). A
    stroke with no landing at all (no mic to find it in) moves as the nearest
    measured stroke of its slot, or else the nearest one, did.
    """
    hits = truth["hits"]
    played = np.array([h["performed_time_s"] for h in hits], dtype=float)
    out = played.copy()
    moved = {l.hit: l.landed_onset_s - played[l.hit] for l in landings if not l.lost and not l.weak}
    for l in landings:
        out[l.hit] = l.landed_onset_s if not l.lost else math.nan
    have = {l.hit for l in landings}
    for h in hits:
        if h["index"] not in have and moved:
            pool = [j for j in moved if hits[j]["slot"] == h["slot"]] or list(moved)
            j = min(pool, key=lambda j: abs(played[j] - played[h["index"]]))
            out[h["index"]] = played[h["index"]] + moved[j]
    return out


# ----------------------------------------------------------------------------- seam artifacts


def band_envelope_db(x: np.ndarray, sample_rate: int, *, cutoff_hz: float = CLICK_BAND_HZ,
                     frame_ms: float = FRAME_MS) -> np.ndarray:
    """High-band energy in dB per frame, ``(n_channels, n_frames)``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    # Causal is enough: output, reference and input go through the same filter, so their frames line up.
    hp = sps.sosfilt(sps.butter(4, cutoff_hz, btype="highpass", fs=sample_rate, output="sos").astype(np.float32),
                     x, axis=-1)
    frame = max(1, int(round(frame_ms / 1000.0 * sample_rate)))
    n = hp.shape[1] // frame
    energy = (hp[:, :n * frame] ** 2).reshape(hp.shape[0], n, frame).mean(axis=2)
    return 10.0 * np.log10(energy + 1e-20)


def _rise(env: np.ndarray) -> np.ndarray:
    """How much each frame is above the quietest of the RISE_FRAMES before it, dB."""
    prev = np.full_like(env, np.inf)
    for k in range(1, RISE_FRAMES + 1):
        prev[..., k:] = np.minimum(prev[..., k:], env[..., :-k])
    return env - prev


def _runs(mask: np.ndarray, gap: int = 2) -> list[tuple[int, int]]:
    """[start, stop) of the True runs of ``mask``, joining runs less than ``gap`` frames apart."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return list(zip(starts.tolist(), stops.tolist()))


@dataclass(frozen=True)
class SeamArtifacts:
    """What an edit added, by kind: times in seconds (events on several channels merged)."""

    clicks_s: tuple[float, ...]  # short high-band bursts (<= CLICK_MAX_FRAMES ms) the reference lacks
    double_attacks_s: tuple[float, ...]  # longer bursts that start an attack the reference lacks there
    bumps_s: tuple[float, ...]  # longer bursts with no new attack: a decay replayed louder, a cymbal chopped
    duration_s: float
    by_stem: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)  # stem -> counts before merging

    def per_min(self, kind: str) -> float:
        return 60.0 * len(getattr(self, f"{kind}_s")) / self.duration_s


def _merge_times(times: list[float], within_s: float) -> list[float]:
    out: list[float] = []
    for t in sorted(times):
        if not out or t - out[-1] > within_s:
            out.append(t)
    return out


def _near_max(env: np.ndarray, frames: int) -> np.ndarray:
    out = env.copy()
    for k in range(1, frames + 1):
        out[k:] = np.maximum(out[k:], env[:-k])
        out[:-k] = np.maximum(out[:-k], env[k:])
    return out


def _smooth_db(env_db: np.ndarray, frames: int) -> np.ndarray:
    """Moving average of the energy over ``frames`` frames, in dB."""
    power = np.convolve(10.0 ** (env_db / 10.0), np.ones(frames) / frames, mode="same")
    return 10.0 * np.log10(power + 1e-20)


def source_time_map(landings: Sequence[Landing], truth: Mapping):
    """``f(t_out) -> (t_in, ...)``: where output time ``t_out`` may have been copied from.

    An edit moves pieces whole, each starting a little (:data:`PIECE_LEAD_MS`)
    before a stroke, and a seam's fill or crossfade plays the next piece's
    material early: so a moment came from the piece of the stroke landed just
    before it or of the one landed just after, shifted as that stroke was.
    """
    played = {h["index"]: h["performed_time_s"] for h in truth["hits"]}
    marks = sorted((l.landed_onset_s, l.landed_onset_s - played[l.hit]) for l in landings
                   if not l.lost and not l.weak)
    times = np.array([m[0] for m in marks]) - PIECE_LEAD_MS / 1000.0
    shifts = np.array([m[1] for m in marks])

    def source_s(t_out: float) -> tuple[float, ...]:
        if not shifts.size:
            return (t_out,)
        k = int(np.searchsorted(times, t_out, side="right"))
        return tuple(t_out - shifts[j] for j in {max(k - 1, 0), min(k, shifts.size - 1)})

    return source_s


def seam_artifacts(output: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], sample_rate: int,
                   *, landings: Sequence[Landing] = (), source: Mapping[str, np.ndarray] | None = None,
                   source_s=None, excess_db: float = EXCESS_DB) -> SeamArtifacts:
    """Clicks, double attacks and bumps in ``output`` that ``reference`` (the same strokes, cleanly placed) lacks.

    Per channel, high-band (> :data:`CLICK_BAND_HZ`) energy in 1 ms frames,
    compared with the loudest reference frame within :data:`TOLERANCE_FRAMES`
    (both floored at :data:`FLOOR_BELOW_PEAK_DB` below the channel's peak):

    * a **click**: at most :data:`CLICK_MAX_FRAMES` frames more than
      ``excess_db`` above the reference *and* above the output's own median
      around them (a spike, not a louder stretch), by more than all but
      1 - :data:`SPIKE_QUANTILE` of the reference's frames stand out of theirs;
    * a **double attack**: an attack (a rise of :data:`ATTACK_RISE_DB`) the
      reference lacks there, followed by more than :data:`CLICK_MAX_FRAMES`
      frames of excess (energy smoothed over :data:`SMOOTH_FRAMES`);
    * a **bump**: such a longer excess with no new attack (a decay replayed
      far louder, a cymbal chopped).

    A hit's echo (:meth:`Locator.locate`) is a double attack too: an attack
    replayed in its own decay adds little energy, but its shape is unmistakable.

    With ``source`` (the input stems) and ``source_s`` (:func:`source_time_map`),
    a spike the input already had where that moment was copied from is not a
    click: a reverb tail's rare loud millisecond, re-summed by the reference,
    is not the edit's doing.

    Events of one kind within :data:`MERGE_MS` on any channels are one (seams
    are further apart than that); a click or bump at a double attack, or a
    bump at a click, is part of it.
    """
    frame_s = max(1, int(round(FRAME_MS / 1000.0 * sample_rate))) / sample_rate  # band_envelope_db's frames
    found: dict[str, list[float]] = {"clicks": [], "double_attacks": [], "bumps": []}
    by_stem: dict[str, tuple[int, int, int]] = {}
    duration_s = 0.0
    for name, out_audio in output.items():
        env_out = band_envelope_db(out_audio, sample_rate)
        env_ref = band_envelope_db(reference[name], sample_rate)
        env_src = band_envelope_db(source[name], sample_rate) if source is not None and source_s else None
        duration_s = max(duration_s, np.asarray(out_audio).shape[-1] / sample_rate)
        counts = [0, 0, 0]
        for c, (eo, er) in enumerate(zip(env_out, env_ref)):
            floor = max(eo.max(), er.max()) - FLOOR_BELOW_PEAK_DB
            eo, er = np.maximum(eo, floor), np.maximum(er, floor)
            # Against the loudest reference frame nearby: noise (a reverb tail, a cymbal wash) cut at
            # other points has the same envelope but other fine structure, and must not count.
            ref_near = _near_max(er, TOLERANCE_FRAMES)
            spike = eo - median_filter(eo, size=2 * SPIKE_FRAMES + 1, mode="nearest")
            # A click must also stand out more than the channel's own texture does: a band-limited
            # reverb tail has 1 ms frames 7 dB over their neighbours now and then.
            rise_out, rise_ref = _rise(eo), _rise(er)
            ref_spike = er - median_filter(er, size=2 * SPIKE_FRAMES + 1, mode="nearest")
            texture = ref_spike[_near_max(rise_ref, RISE_FRAMES) < excess_db]  # attacks are not texture
            spike_db = max(excess_db, float(np.quantile(texture, SPIKE_QUANTILE)) if texture.size else 0.0)
            if env_src is not None:
                es = np.maximum(env_src[c], floor)
                src_spike = es - median_filter(es, size=2 * SPIKE_FRAMES + 1, mode="nearest")
            for start, stop in _runs((eo - ref_near > excess_db) & (spike > spike_db), gap=0):
                if env_src is not None:
                    was = [src_spike[max(0, k - TOLERANCE_FRAMES):k + TOLERANCE_FRAMES + 1]
                           for k in (int(round(t / frame_s)) for t in source_s(start * frame_s))]
                    if any(w.size and w.max() >= spike[start:stop].max() - excess_db / 2 for w in was):
                        continue
                if stop - start <= CLICK_MAX_FRAMES:
                    found["clicks"].append(start * frame_s)
                    counts[0] += 1
            sustained = _smooth_db(eo, SMOOTH_FRAMES) - _smooth_db(ref_near, SMOOTH_FRAMES) > excess_db
            for start, stop in _runs(sustained, gap=0):
                if stop - start <= CLICK_MAX_FRAMES:
                    continue
                lo = max(0, start - SMOOTH_FRAMES)
                new_attack = (rise_out[lo:stop].max() >= ATTACK_RISE_DB
                              and rise_ref[max(0, lo - TOLERANCE_FRAMES):stop + TOLERANCE_FRAMES].max()
                              < ATTACK_RISE_DB - excess_db)
                kind = "double_attacks" if new_attack else "bumps"
                found[kind].append(start * frame_s)
                counts[1 if new_attack else 2] += 1
        by_stem[name] = (counts[0], counts[1], counts[2])
    within = MERGE_MS / 1000.0
    merged = {k: _merge_times(v, within) for k, v in found.items()}
    # An echo says exactly where the attack came again; the energy only roughly.
    echoes = _merge_times([e - l.delay_s for l in landings for e in l.echoes_s], within)
    merged["double_attacks"] = sorted(echoes + [t for t in merged["double_attacks"]
                                                if not any(abs(t - e) <= within for e in echoes)])
    taken = list(merged["double_attacks"])
    for kind in ("clicks", "bumps"):
        merged[kind] = [t for t in merged[kind] if not any(abs(t - u) <= within for u in taken)]
        taken += merged[kind]
    return SeamArtifacts(tuple(merged["clicks"]), tuple(merged["double_attacks"]), tuple(merged["bumps"]),
                         max(duration_s, 1e-9), by_stem)
