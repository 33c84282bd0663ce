"""Measure an edit from its output audio against the synthetic truth (for benchmarks and tests).

Nothing here trusts beatfix's own analysis or plan. Every measurement looks
at audio:

* **landing** (:class:`Locator`): each truth hit is re-found in the output by
  normalised cross-correlation of its own one-shot's attack, high-passed at
  :data:`HIGHPASS_HZ` so a ringing drum body cannot pull the match, searched
  within half a grid step of where it belongs. The same match in the input,
  at the truth onset, calibrates it, so the untouched input scores exactly
  its performed deviation and the ideal render ~0. Residual: landing minus
  target (slot time plus the mic's delay for that drum). A hit not found
  there (weak match, or best match at the window's edge) is *lost*: cut
  apart, dropped, or moved to another slot.
* **phase** (:func:`overhead_lags`): the lag from each close-mic attack to
  the same attack in every overhead channel, input against output.
* **seams** (:func:`seam_artifacts`): the same strokes are rendered again by
  the synthesizer, each where it landed (:func:`render_landed`); the output's
  high-band short-window energy is compared with that reference, so only what
  the edit added (a click, an attack heard twice) stands out.
* **colour** (:func:`spectral_distance_db`): log-magnitude STFT distance.

Also here, because they are judged against the same truth: the quality of
an :class:`~beatfix.types.Analysis` (:func:`analysis_quality`) and the oracle
analysis built from the truth (:func:`oracle_analysis`).

Stems are mappings ``stem name -> (n_channels, n_samples)`` arrays; ``truth``
is the ``truth.json`` document of :mod:`beatfix.synth.session`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import signal as sps
from scipy.ndimage import median_filter

from .grid import Grid
from .types import Analysis, Hit, MicDelay, Onset, TempoCandidate

ATTACK_MS = 8.0
HIGHPASS_HZ = 2000.0
MIN_MATCH = 0.3  # normalised correlation below this: the hit is not where it should be...
MIN_MATCH_REL = 0.6  # ...nor below this share of its correlation at the truth onset in the input
MEASURABLE_MATCH = 0.5  # a hit whose own shot matches the input less than this is drowned by other sounds
MASKED_WITHIN_DB = 10.0  # another drum of the slot this close in level in the hit's mic masks it
CALIBRATE_MS = 0.5  # the template's best match this near the truth onset in the input is its zero
ECHO_MIN = 0.5  # a second match at least this strong...
ECHO_REL = 0.7  # ...and this share of the landing's, near a landing, is the attack heard again...
ECHO_APART_MS = 1.0  # ...if this far from the landing and from every other stroke of the drum
MAX_SEARCH_MS = 60.0
OWN_WITHIN_DB = 10.0  # a close stem's own drums are this close to its loudest drum...
OWN_CLEAR_DB = 15.0  # ...and this far above every other drum (bleed is 20-35 dB down)
FOLLOWER_ROLES = ("overhead", "room", "other")

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

SPECTRAL_N_FFT = 2048
SPECTRAL_RANGE_DB = 80.0


# ----------------------------------------------------------------------------- truth helpers


def close_stems(truth: Mapping) -> list[dict]:
    return [ch for ch in truth["channels"] if ch["role"] not in FOLLOWER_ROLES]


def own_drums(channel: Mapping) -> list[str]:
    """Drums a close channel is the mic of: within :data:`OWN_WITHIN_DB` of its loudest drum, and clear of the rest.

    A mic hears its own drum at 0 dB and every other 20-35 dB down, so the
    own group stands at least :data:`OWN_CLEAR_DB` above the loudest bleed. A
    tom mic on a take without toms hears bleed only, and owns nothing.
    """
    drums = channel["drums"]
    gains = {d: max(info["gain_db"]) for d, info in drums.items()}
    if not gains:
        return []
    top = max(gains.values())
    own = [d for d, g in gains.items() if g >= top - OWN_WITHIN_DB]
    rest = [g for d, g in gains.items() if d not in own]
    # One source (open and closed hat share theirs): the same gains and delays.
    one_source = len({(tuple(drums[d]["gain_db"]), tuple(drums[d]["delay_samples"])) for d in own}) == 1
    return own if one_source and (not rest or top - max(rest) >= OWN_CLEAR_DB) else []


def own_stems(truth: Mapping) -> dict[str, list[str]]:
    """Drum -> close stems it is the own drum of, loudest first (kick in before kick out, say)."""
    out: dict[str, list[tuple[float, str]]] = {}
    for ch in close_stems(truth):
        for d in own_drums(ch):
            out.setdefault(d, []).append((max(ch["drums"][d]["gain_db"]), ch["stem"]))
    return {d: [s for _, s in sorted(v, reverse=True)] for d, v in out.items()}


def _channel(truth: Mapping, stem: str) -> dict:
    return next(ch for ch in truth["channels"] if ch["stem"] == stem)


def _delay(truth: Mapping, stem: str, drum: str, channel: int | None = None) -> float:
    delays = _channel(truth, stem)["drums"][drum]["delay_samples"]
    return float(delays[channel] if channel is not None else np.median(delays))


def expected_times_s(truth: Mapping) -> np.ndarray:
    """Where each truth hit belongs: its slot time; a deliberate flam's grace keeps its gap to the main stroke."""
    hits = truth["hits"]
    main = {(h["slot"], h["drum"]): h["performed_time_s"] for h in hits if h["deliberate_flam"] and not h["grace"]}
    out = np.array([h["grid_time_s"] for h in hits], dtype=float)
    for h in hits:
        if h["grace"] and (h["slot"], h["drum"]) in main:
            out[h["index"]] += h["performed_time_s"] - main[(h["slot"], h["drum"])]
    return out


def _measuring_channel(truth: Mapping, drum: str, owners: Mapping[str, list[str]]) -> tuple[str, int | None, bool]:
    """(stem, channel or None for the stem's mean, is close) where a drum's landing is measured.

    Its own close mic when it has one; else (a cymbal, a tom without a mic) the
    follower channel that hears it loudest.
    """
    if owners.get(drum):
        return owners[drum][0], None, True
    best = (-math.inf, "", 0)
    for ch in truth["channels"]:
        if ch["role"] in FOLLOWER_ROLES and drum in ch["drums"]:
            for c, g in enumerate(ch["drums"][drum]["gain_db"]):
                best = max(best, (g, ch["stem"], c))
    return best[1], best[2], False


# ----------------------------------------------------------------------------- signal helpers


def highpass(x: np.ndarray, sample_rate: int, cutoff_hz: float = HIGHPASS_HZ) -> np.ndarray:
    """Zero-phase 4th-order Butterworth high-pass along the last axis, float64."""
    sos = sps.butter(4, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    return sps.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)


class _Bank:
    """High-passed signals of a set of stems, computed once per (stem, channel)."""

    def __init__(self, stems: Mapping[str, np.ndarray], sample_rate: int):
        self.stems, self.sr, self.cache = stems, sample_rate, {}

    def get(self, stem: str, channel: int | None) -> np.ndarray:
        key = (stem, channel)
        if key not in self.cache:
            audio = np.asarray(self.stems[stem])
            x = audio.mean(axis=0) if channel is None else audio[channel]
            self.cache[key] = highpass(x, self.sr)
        return self.cache[key]


def ncc_curve(template: np.ndarray, x: np.ndarray, lo: int, hi: int) -> tuple[int, np.ndarray]:
    """Normalised correlation of ``template`` with ``x`` at every start ``lo..hi`` (clipped to ``x``).

    Returns (first start, correlations); empty when no start fits.
    """
    n = template.size
    lo, hi = max(0, int(lo)), min(x.size - n, int(hi))
    if hi < lo or n == 0:
        return lo, np.zeros(0)
    seg = x[lo:hi + n]
    corr = sps.correlate(seg, template, mode="valid", method="fft" if hi - lo > 256 else "direct")
    csum = np.concatenate([[0.0], np.cumsum(seg * seg)])
    t_energy = float(template @ template)
    # Differences of running sums are exact to ~1e-16 of the total: the floor keeps near-silent
    # windows from dividing by that rounding noise.
    energy = np.maximum(csum[n:] - csum[:-n], 1e-9 * csum[-1] + 1e-30)
    return lo, corr / (np.sqrt(energy * t_energy) + 1e-30)


def _peak(lo: int, ncc: np.ndarray, k: int | None = None) -> float:
    """Sub-sample position of the peak at index ``k`` (the maximum by default), by a parabola."""
    k = int(np.argmax(ncc)) if k is None else k
    frac = 0.0
    if 0 < k < ncc.size - 1:
        a, b, c = ncc[k - 1], ncc[k], ncc[k + 1]
        denom = a - 2.0 * b + c
        frac = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) if denom < 0 else 0.0
    return lo + k + frac


def find_template(template: np.ndarray, x: np.ndarray, lo: int, hi: int) -> tuple[float, float, bool]:
    """Best normalised-correlation start of ``template`` in ``x`` among starts ``lo..hi``.

    Returns (start, sub-sample by a parabola; nan if no start fits),
    correlation at the peak, and whether the peak is at the range's edge (so
    the true best may lie outside it).
    """
    lo, ncc = ncc_curve(template, x, lo, hi)
    if ncc.size == 0:
        return math.nan, 0.0, True
    k = int(np.argmax(ncc))
    return _peak(lo, ncc, k), float(ncc[k]), k == 0 or k == ncc.size - 1


def _echoes(lo: int, ncc: np.ndarray, main: float, threshold: float, apart: int) -> list[float]:
    """Other local maxima of ``ncc`` reaching ``threshold``, at least ``apart`` samples from ``main``."""
    if ncc.size < 3:
        return []
    inner = ncc[1:-1]
    k = np.flatnonzero((inner >= threshold) & (inner >= ncc[:-2]) & (inner > ncc[2:])) + 1
    return [lo + int(i) for i in k if abs(lo + int(i) - main) >= apart]


# ----------------------------------------------------------------------------- landings


@dataclass(frozen=True)
class Landing:
    """Where one truth hit landed in an output."""

    hit: int
    drum: str
    stem: str  # where it was measured: its own close mic, or the loudest overhead for a drum without one
    channel: int | None  # channel of ``stem``; None: the stem's mean
    close: bool  # measured on its own close mic (only these count in residuals)
    delay_s: float  # the measuring channel's delay for this drum
    target_s: float  # where it belongs in that channel: slot time (+ flam gap) plus the delay
    landed_s: float  # nan when lost
    match: float  # normalised correlation of the attack at the landing
    fallback_s: float  # best guess when lost (wider search); = landed_s otherwise
    grace: bool = False
    ghost: bool = False
    velocity: float = 1.0
    echoes_s: tuple[float, ...] = ()  # further copies of its attack near the landing (measuring channel's time)
    weak: bool = False  # not measurable (masked, drowned): a best guess for the reference render, never a residual

    @property
    def residual_ms(self) -> float:
        return (self.landed_s - self.target_s) * 1000.0

    @property
    def lost(self) -> bool:
        return not math.isfinite(self.landed_s)

    @property
    def landed_onset_s(self) -> float:
        """The stroke's landing in the session's dry timeline (the mic's delay removed)."""
        return self.fallback_s - self.delay_s


def search_samples(truth: Mapping, search_ms: float | None = None) -> int:
    """Half a grid step (at most :data:`MAX_SEARCH_MS`), in samples."""
    step_s = 60.0 / truth["bpm"] / truth["steps_per_beat"]
    s = search_ms / 1000.0 if search_ms else min(0.5 * step_s, MAX_SEARCH_MS / 1000.0)
    return int(round(s * truth["sample_rate"]))


def shot_template(shot: np.ndarray, sample_rate: int, n_samples: int, polarity: int = 1) -> np.ndarray:
    """The first ``n_samples`` of a one-shot as a mic hears it, high-passed like the signals it is sought in."""
    pad = int(0.005 * sample_rate)
    x = np.zeros(pad + n_samples + pad)
    part = np.asarray(shot[: n_samples + pad], dtype=np.float64)
    x[pad:pad + part.size] = part * polarity
    return highpass(x, sample_rate)[pad:pad + n_samples]


@dataclass
class _Item:
    """A measurable hit: where and how to look for it."""

    hit: Mapping
    stem: str
    channel: int | None
    close: bool
    delay: float  # the measuring channel's delay for this drum, samples
    template: np.ndarray
    bias: float  # the template's best match minus the truth onset, in the input, samples
    match_in: float
    target: float  # where it belongs in the measuring channel, samples
    alike: tuple[float, ...] = ()  # offsets of look-alikes the input already has near it, samples
    partner: int | None = None  # a deliberate flam's other stroke (grace <-> main), by truth index
    gap: float = 0.0  # main minus grace, samples, as played


class Locator:
    """Re-finds the truth hits of one input in any number of outputs (see the module docstring).

    ``hit_shots`` are the one-shots of the truth hits, by index
    (:attr:`beatfix.synth.RenderedSession.hit_shots`): a hit's template is its
    own shot, high-passed, so the other drums sounding with it (which the
    ideal render places differently) do not bias the match. The template's
    best match near the truth onset *in the input* calibrates the residual, so
    the untouched input scores exactly its performed deviation. A hit is
    *measurable* only if, in the input, that match is also the best one within
    the search window, and no other drum of its slot reaches its mic within
    :data:`MASKED_WITHIN_DB` of its level: a ghost note buried under hi-hat
    bleed is not, and is left out of every measurement rather than reported
    as found elsewhere; it only gets a best guess (a ``weak`` landing) so the
    seam check's reference has it in about the right place.

    A deliberate flam's two strokes may be the very same sample (a kit with
    one velocity layer), so they are found as a pair: the main stroke where
    the match *and* the match one flam gap earlier are strongest, the grace
    one gap before wherever the main stroke landed.
    """

    def __init__(self, input_stems: Mapping[str, np.ndarray], truth: Mapping, hit_shots: Sequence[np.ndarray],
                 *, search_ms: float | None = None):
        self.truth, self.sr = truth, int(truth["sample_rate"])
        sr = self.sr
        self.n_att = int(round(ATTACK_MS / 1000.0 * sr))
        self.search = search_samples(truth, search_ms)
        self.step = int(round(60.0 / truth["bpm"] / truth["steps_per_beat"] * sr))
        self.near = near = max(2, int(round(CALIBRATE_MS / 1000.0 * sr)))
        self.apart = max(2, int(round(ECHO_APART_MS / 1000.0 * sr)))
        bank = _Bank(input_stems, sr)
        owners = own_stems(truth)
        expected = expected_times_s(truth)
        hits = truth["hits"]
        self.by_slot: dict[int, list[Mapping]] = {}
        for h in hits:
            self.by_slot.setdefault(h["slot"], []).append(h)
        partners = {}
        for group in self.by_slot.values():
            for g in (h for h in group if h["grace"]):
                main = next((h for h in group if h["drum"] == g["drum"] and h["deliberate_flam"] and not h["grace"]),
                            None)
                if main is not None:
                    partners[g["index"]], partners[main["index"]] = main["index"], g["index"]
        self.items: dict[int, _Item] = {}
        self.weak: dict[int, _Item] = {}
        self.unmeasurable: list[int] = []
        for hit in hits:
            stem, channel, is_close = _measuring_channel(truth, hit["drum"], owners)
            if not stem or stem not in input_stems:
                continue
            masked = is_close and self._masked(hit, stem)
            delay = _delay(truth, stem, hit["drum"], channel)
            onset_in = round(hit["onset_sample"] + delay)
            template = shot_template(hit_shots[hit["index"]], sr, self.n_att, int(_channel(truth, stem)["polarity"]))
            x = bank.get(stem, channel)
            pos_in, match_in, _ = find_template(template, x, onset_in - near, onset_in + near)
            partner = partners.get(hit["index"])
            gap = 0.0
            if partner is not None:
                gap = abs(hit["onset_sample"] - hits[partner]["onset_sample"])
            lo, ncc = ncc_curve(template, x, onset_in - 2 * self.search, onset_in + 2 * self.search)
            # Unique in the input: nothing else within the search window matches better (the flam's
            # other stroke, which may be the same sample, aside).
            others = ncc.copy()
            if partner is not None and ncc.size:
                other_at = hits[partner]["onset_sample"] + delay - lo
                others[max(0, int(other_at) - near):max(0, int(other_at) + near + 1)] = 0.0
            window = others[max(0, onset_in - self.search - lo):max(0, onset_in + self.search - lo + 1)]
            if masked or not (math.isfinite(pos_in) and match_in >= MEASURABLE_MATCH and window.size
                              and window.max() <= match_in + 1e-9):
                # Not measurable, but the seam check's reference still wants it in about the right place.
                self.unmeasurable.append(hit["index"])
                self.weak[hit["index"]] = _Item(hit, stem, channel, is_close, delay, template,
                                                (pos_in - onset_in) if math.isfinite(pos_in) else 0.0, match_in,
                                                expected[hit["index"]] * sr + delay)
                continue
            # Look-alikes already in the input (the shot's own ringing, a similar drum): not echoes.
            alike = tuple(e - pos_in for e in _echoes(lo, others, pos_in, ECHO_REL * ECHO_MIN, self.apart))
            self.items[hit["index"]] = _Item(hit, stem, channel, is_close, delay, template, pos_in - onset_in,
                                             match_in, expected[hit["index"]] * sr + delay, alike, partner, gap)

    def _masked(self, hit: Mapping, stem: str) -> bool:
        """Whether another drum of the hit's slot is nearly as loud in its mic: an aligned output stacks them.

        A ghost note under a hi-hat bleeding in at the same level cannot be
        told apart once both sit on the slot, whatever the editor did.
        """
        ch = _channel(self.truth, stem)
        level = hit["level_db"] + max(ch["drums"][hit["drum"]]["gain_db"])
        for other in self.by_slot.get(hit["slot"], ()):
            if other["drum"] != hit["drum"] and other["drum"] in ch["drums"]:
                if other["level_db"] + max(ch["drums"][other["drum"]]["gain_db"]) >= level - MASKED_WITHIN_DB:
                    return True
        return False

    def _find(self, item: _Item, x: np.ndarray, centre: int, half: int, gap: int = 0):
        """(lo, ncc, index of the best start, its correlation); with ``gap``, the best pair ``gap`` apart."""
        lo, ncc = ncc_curve(item.template, x, centre - half - gap, centre + half)
        if ncc.size <= gap:
            return lo, ncc, None, 0.0
        score = ncc[gap:] + (ncc[:-gap] if gap else 0.0)
        k = int(np.argmax(score)) + gap
        edge = k == gap or k == ncc.size - 1
        return lo, ncc, (None if edge else k), float(ncc[k])

    def locate(self, output_stems: Mapping[str, np.ndarray]) -> list[Landing]:
        """A landing for every measurable hit: close-mic hits (residuals) and the rest (reference render).

        Also each hit's *echoes*: further strong matches of its attack near its
        landing that are neither another landing of its drum nor a look-alike
        the input already had at that distance. An edit that plays an attack
        twice (a fill through it, a cut inside it) leaves one.
        """
        sr, step = self.sr, self.step
        bank = _Bank(output_stems, sr)
        raw: dict[int, float] = {}
        found: dict[int, tuple] = {}
        # Main strokes first: a grace is sought one flam gap before its main stroke's landing.
        order = sorted(self.items.values(), key=lambda it: bool(it.hit["grace"] and it.partner in self.items))
        for it in order:
            if it.stem not in output_stems:
                continue
            x = bank.get(it.stem, it.channel)
            centre, half, gap = int(round(it.target)), self.search, 0
            if it.hit["grace"] and it.partner in raw:
                centre, half = int(round(raw[it.partner] - it.gap)), max(2 * self.near, int(it.gap / 3))
            elif it.partner is not None and not it.hit["grace"]:
                gap = int(round(it.gap))
            lo, ncc, k, match = self._find(it, x, centre, half, gap)
            landed = math.nan
            if k is not None and match >= max(MIN_MATCH, MIN_MATCH_REL * it.match_in):
                raw[it.hit["index"]] = _peak(lo, ncc, k)
                landed = raw[it.hit["index"]] - it.bias
                fallback = landed
            else:
                fallback = find_template(it.template, x, centre - 2 * step, centre + 2 * step)[0]
                fallback = fallback - it.bias if math.isfinite(fallback) else it.hit["onset_sample"] + it.delay
            found[it.hit["index"]] = (it, lo, ncc, landed, match, fallback)
        out_weak = self._place_weak(bank, output_stems, found)
        # Raw landing positions per (stem, channel, drum), to tell an echo from a neighbouring stroke.
        occupied: dict[tuple, list[float]] = {}
        for i, (it, *_rest) in found.items():
            if i in raw:
                occupied.setdefault((it.stem, it.channel, it.hit["drum"]), []).append(raw[i])
        out = []
        for i in sorted(found):
            it, lo, ncc, landed, match, fallback = found[i]
            echoes = []
            if i in raw:
                others = list(occupied[(it.stem, it.channel, it.hit["drum"])])
                if it.partner is not None:  # the flam's other stroke, found or not
                    others.append(raw[i] + (it.gap if it.hit["grace"] else -it.gap))
                for e in _echoes(lo, ncc, raw[i], max(ECHO_MIN, ECHO_REL * match), self.apart):
                    if all(abs(e - o) >= self.apart for o in others) and \
                            all(abs(e - raw[i] - a) >= self.apart for a in it.alike):
                        echoes.append(e / sr)
            h = it.hit
            out.append(Landing(i, h["drum"], it.stem, it.channel, it.close, it.delay / sr, it.target / sr,
                               landed / sr, match, fallback / sr, bool(h["grace"]), bool(h["ghost"]),
                               float(h["velocity"]), tuple(echoes)))
        return sorted(out + out_weak, key=lambda l: l.hit)

    def _place_weak(self, bank: "_Bank", output_stems, found: Mapping[int, tuple]) -> list[Landing]:
        """Best guesses for the hits that cannot be measured, for the reference render only.

        Two places are likely: its slot (where an ideal render puts it) and
        where the measured stroke of its slot (or the nearest one) went, moved
        as that one was (where an edit puts it). The better match of the two wins.
        """
        sr, near = self.sr, 2 * self.near
        hits = self.truth["hits"]
        moved = {i: (f[3] - (hits[i]["onset_sample"] + f[0].delay)) for i, f in found.items() if math.isfinite(f[3])}
        out = []
        for i, it in self.weak.items():
            if it.stem not in output_stems:
                continue
            places = [it.target]
            if moved:
                same = [j for j in moved if hits[j]["slot"] == it.hit["slot"]] or list(moved)
                j = min(same, key=lambda j: abs(hits[j]["onset_sample"] - it.hit["onset_sample"]))
                places.append(it.hit["onset_sample"] + it.delay + moved[j])
            x = bank.get(it.stem, it.channel)
            best = max((find_template(it.template, x, int(round(c)) - near, int(round(c)) + near) for c in places),
                       key=lambda r: r[1])
            pos = best[0] - it.bias if math.isfinite(best[0]) else places[-1]
            h = it.hit
            out.append(Landing(i, h["drum"], it.stem, it.channel, it.close, it.delay / sr, it.target / sr, pos / sr,
                               best[1], pos / sr, bool(h["grace"]), bool(h["ghost"]), float(h["velocity"]),
                               weak=True))
        return out


def _stats(values: Sequence[float]) -> dict:
    v = np.abs(np.asarray(values, dtype=float))
    if v.size == 0:
        return {"n": 0, "p50_ms": math.nan, "p95_ms": math.nan, "max_ms": math.nan}
    return {"n": int(v.size), "p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)),
            "max_ms": float(v.max())}


def residual_summary(landings: Sequence[Landing]) -> dict:
    """|residual| p50/p95/max per drum and overall, and lost hits; close-mic hits only, grace notes left out."""
    rows = [l for l in landings if l.close and not l.grace and not l.weak]
    found = [l for l in rows if not l.lost]
    per_drum = {d: _stats([l.residual_ms for l in found if l.drum == d]) for d in sorted({l.drum for l in rows})}
    return {
        "all": _stats([l.residual_ms for l in found]),
        "per_drum": per_drum,
        "n_hits": len(rows),
        "lost": len(rows) - len(found),
        "lost_pct": 100.0 * (len(rows) - len(found)) / max(1, len(rows)),
    }


# ----------------------------------------------------------------------------- phase between mics


def overhead_lags(stems: Mapping[str, np.ndarray], truth: Mapping, positions: Mapping[int, tuple[str, int]],
                  *, roles: Sequence[str] = ("overhead",), max_lag_ms: float = 12.0, min_match: float = 0.3,
                  _bank: _Bank | None = None) -> dict[tuple[int, str], float]:
    """Lag in samples from each close-mic attack to the same attack in every follower channel.

    ``positions``: hit index -> (close stem, sample where its attack starts in
    that stem). Keyed by (hit index, "stem:channel"); only pairs whose
    correlation reaches ``min_match``. Compare input with output: a
    phase-coherent edit leaves every lag unchanged.
    """
    sr = int(truth["sample_rate"])
    n_att = int(round(ATTACK_MS / 1000.0 * sr))
    max_lag = int(round(max_lag_ms / 1000.0 * sr))
    bank = _bank or _Bank(stems, sr)
    followers = [(ch["stem"], c) for ch in truth["channels"] if ch["role"] in roles and ch["stem"] in stems
                 for c in range(np.asarray(stems[ch["stem"]]).shape[0])]
    lags = {}
    for index, (stem, start) in positions.items():
        template = bank.get(stem, None)[start:start + n_att]
        if template.size < n_att or not np.any(template):
            continue
        for f_stem, c in followers:
            pos, match, _ = find_template(template, bank.get(f_stem, c), start - n_att // 4, start + max_lag)
            if match >= min_match:
                lags[(index, f"{f_stem}:{c}")] = pos - start
    return lags


def input_positions(truth: Mapping) -> dict[int, tuple[str, int]]:
    """Close-mic attack positions of every non-grace hit in the input (truth onsets)."""
    owners = own_stems(truth)
    out = {}
    for h in truth["hits"]:
        if h["grace"] or not owners.get(h["drum"]):
            continue
        stem = owners[h["drum"]][0]
        out[h["index"]] = (stem, h["onset_sample"] + int(round(_delay(truth, stem, h["drum"]))))
    return out


def landed_positions(landings: Sequence[Landing], sample_rate: int) -> dict[int, tuple[str, int]]:
    return {l.hit: (l.stem, int(round(l.landed_s * sample_rate))) for l in landings
            if l.close and not l.grace and not l.lost and not l.weak}


def lag_changes_ms(before: Mapping, after: Mapping, sample_rate: int) -> np.ndarray:
    keys = sorted(set(before) & set(after))
    return np.array([(after[k] - before[k]) * 1000.0 / sample_rate for k in keys], dtype=float)


# ----------------------------------------------------------------------------- reference render


def render_landed(rendered, onset_s: Sequence[float]) -> dict[str, np.ndarray]:
    """The session's strokes rendered again with stroke ``i`` at ``onset_s[i]`` (dry time, seconds; nan: left out).

    ``rendered`` is a :class:`beatfix.synth.RenderedSession`; shots, mics, gains
    and normalisation are its own, so with the performed onsets this returns
    its stems exactly.
    """
    from .synth.render import drum_tracks, render_mics, velocity_gain_db

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
    by_stem, duration_s = {}, 0.0
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
        by_stem[name] = tuple(counts)
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


# ----------------------------------------------------------------------------- colour


def log_spectrogram(x: np.ndarray) -> np.ndarray:
    """dB magnitude STFT of each channel, ``(n_channels, n_bins, n_frames)``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    _, _, z = sps.stft(x, nperseg=SPECTRAL_N_FFT, noverlap=SPECTRAL_N_FFT // 2, axis=-1)
    return 20.0 * np.log10(np.abs(z) + 1e-9)


def spectral_distance_db(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Mean |difference| (dB) of log spectrograms over the bins within :data:`SPECTRAL_RANGE_DB` of the top."""
    total, count = 0.0, 0
    for ma, mb in zip(a, b):
        floor = max(ma.max(), mb.max()) - SPECTRAL_RANGE_DB
        mask = (ma > floor) | (mb > floor)
        total += float(np.abs(np.maximum(ma, floor) - np.maximum(mb, floor))[mask].sum())
        count += int(mask.sum())
    return total / max(1, count)


# ----------------------------------------------------------------------------- analysis quality


def _match(detected: np.ndarray, truth_s: np.ndarray, tol_s: float) -> list[tuple[int, int]]:
    """One-to-one pairs (detected, truth) within ``tol_s``, closest pairs first."""
    pairs = []
    if detected.size and truth_s.size:
        order = np.argsort(truth_s)
        ts = truth_s[order]
        for i, t in enumerate(detected):
            k = np.searchsorted(ts, t)
            for j in range(max(0, k - 3), min(ts.size, k + 3)):
                d = abs(ts[j] - t)
                if d <= tol_s:
                    pairs.append((d, i, int(order[j])))
    used_d, used_t, out = set(), set(), []
    for _, i, j in sorted(pairs):
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def analysis_quality(analysis: Analysis, truth: Mapping, *, tol_ms: float = 5.0, soft_below: float = 0.4) -> dict:
    """Counts behind hit F1, onset error, bleed false triggers and missed soft ghost notes.

    Per close stem, its accepted onsets are matched within ``tol_ms`` to the
    truth onsets of its own drums (``onset_sample + delay_samples``). An
    unmatched onset that lands within ``tol_ms`` of another drum's arrival in
    that stem is a bleed false trigger. Counts add up over sessions.
    """
    sr = float(truth["sample_rate"])
    tol = tol_ms / 1000.0
    hits = truth["hits"]
    out = {"tp": 0, "fp": 0, "fn": 0, "bleed_false": 0, "n_truth": 0, "errors_ms": [], "soft_ghosts": 0,
           "soft_missed": 0, "by_stem": {}}
    owners = own_stems(truth)
    for ch in close_stems(truth):
        stem = ch["stem"]
        own = set(own_drums(ch))
        own_idx = [h["index"] for h in hits if h["drum"] in own]
        t_own = np.array([(hits[i]["onset_sample"] + _delay(truth, stem, hits[i]["drum"])) / sr for i in own_idx])
        detected = np.array(sorted(o.time_s for o in analysis.onsets if o.stem == stem))
        pairs = _match(detected, t_own, tol)
        matched_truth = {own_idx[j] for _, j in pairs}
        out["tp"] += len(pairs)
        out["fp"] += detected.size - len(pairs)
        out["fn"] += len(own_idx) - len(pairs)
        out["n_truth"] += len(own_idx)
        out["errors_ms"] += [(detected[i] - t_own[j]) * 1000.0 for i, j in pairs]
        matched_det = {i for i, _ in pairs}
        others = np.array(sorted((h["onset_sample"] + _delay(truth, stem, h["drum"])) / sr
                                 for h in hits if h["drum"] not in own and h["drum"] in ch["drums"]))
        bleed = 0
        for i, t in enumerate(detected):
            if i not in matched_det and others.size:
                k = np.searchsorted(others, t)
                near = [others[j] for j in (k - 1, k) if 0 <= j < others.size]
                bleed += min(abs(t - x) for x in near) <= tol
        out["bleed_false"] += bleed
        # stem -> (own truth onsets, found, bleed false triggers, other false triggers)
        out["by_stem"][stem] = (len(own_idx), len(pairs), bleed, int(detected.size - len(pairs) - bleed))
        # Soft ghost notes, counted once per drum, on its main close mic.
        for i in own_idx:
            h = hits[i]
            if h["ghost"] and h["velocity"] < soft_below and owners.get(h["drum"], [None])[0] == stem:
                out["soft_ghosts"] += 1
                out["soft_missed"] += i not in matched_truth
    out["tempo_bpm"] = float(analysis.tempo_bpm)
    out["tempo_error_pct"] = 100.0 * abs(analysis.tempo_bpm - truth["bpm"]) / truth["bpm"]
    return out


def quality_rates(counts: Sequence[Mapping]) -> dict:
    """Pool :func:`analysis_quality` counts of many sessions into rates."""
    tp, fp, fn = (sum(c[k] for c in counts) for k in ("tp", "fp", "fn"))
    errors = np.abs(np.concatenate([np.asarray(c["errors_ms"], dtype=float) for c in counts])) if counts else []
    n_truth = sum(c["n_truth"] for c in counts)
    ghosts = sum(c["soft_ghosts"] for c in counts)
    return {
        "f1": 2 * tp / max(1, 2 * tp + fp + fn),
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, tp + fn),
        "onset_error_ms": float(np.mean(errors)) if len(errors) else math.nan,
        "tempo_error_pct": float(np.mean([c["tempo_error_pct"] for c in counts])) if counts else math.nan,
        "tempo_error_max_pct": float(np.max([c["tempo_error_pct"] for c in counts])) if counts else math.nan,
        "bleed_false_rate": sum(c["bleed_false"] for c in counts) / max(1, n_truth),
        "other_false_rate": sum(c["fp"] - c["bleed_false"] for c in counts) / max(1, n_truth),
        "soft_ghosts": ghosts,
        "soft_missed": sum(c["soft_missed"] for c in counts),
        "soft_missed_rate": sum(c["soft_missed"] for c in counts) / max(1, ghosts),
    }


# ----------------------------------------------------------------------------- oracle


def oracle_analysis(truth: Mapping) -> Analysis:
    """An :class:`Analysis` built from the truth: the limit of one-shift-per-hit editing.

    Each slot's strokes heard by a close mic become one :class:`Hit` whose
    onsets are the truth onsets of those close mics (a grace note only moves
    ``earliest_s``, as in :func:`beatfix.hits.group_hits`); its anchor is the
    centre of the earliest and latest delay-compensated onsets. Mic delays are
    the truth's: a close mic's delay is its own drum's, a follower's the
    largest of its drums'.
    """
    sr = float(truth["sample_rate"])
    grid = Grid(bpm=float(truth["bpm"]), offset_s=float(truth["grid_offset_s"]),
                steps_per_beat=float(truth["steps_per_beat"]), swing_pct=float(truth["swing_pct"]))
    delays, delay_s = [], {}
    for ch in truth["channels"]:
        if ch["role"] in FOLLOWER_ROLES:
            ms = max(max(info["delay_ms"]) for info in ch["drums"].values())
        else:
            own = own_drums(ch)
            ms = float(np.mean([np.median(ch["drums"][d]["delay_ms"]) for d in own])) if own else 0.0
        delays.append(MicDelay(stem=ch["stem"], delay_ms=float(ms), polarity=int(ch["polarity"]), reference=None))
        delay_s[ch["stem"]] = ms / 1000.0
    owners = own_stems(truth)
    by_slot: dict[int, list[dict]] = {}
    for h in truth["hits"]:
        if owners.get(h["drum"]):
            by_slot.setdefault(h["slot"], []).append(h)
    hits, onsets = [], []
    for slot in sorted(by_slot):
        mains: dict[str, float] = {}
        graces: list[float] = []
        for h in sorted(by_slot[slot], key=lambda h: -h["velocity"]):
            for stem in owners[h["drum"]]:
                t = (h["onset_sample"] + _delay(truth, stem, h["drum"])) / sr
                onsets.append(Onset(stem, t, 0.0, 1.0))
                if h["grace"]:
                    graces.append(t - delay_s[stem])
                else:
                    mains.setdefault(stem, t)
        if not mains:
            continue
        comp = [t - delay_s[s] for s, t in mains.items()]
        earliest, latest = min(comp), max(comp)
        time_s = 0.5 * (earliest + latest)
        hits.append(Hit(time_s=time_s, earliest_s=min([earliest, *graces]), slot=slot,
                        deviation_ms=float(grid.deviation_ms(time_s, slot)), onsets=dict(sorted(mains.items())),
                        spread_ms=(latest - earliest) * 1000.0))
    return Analysis(sample_rate=int(sr), duration_s=float(truth["duration_s"]), tempo_bpm=grid.bpm,
                    tempo_candidates=(TempoCandidate(grid.bpm, 1.0),), grid=grid, mic_delays=tuple(delays),
                    onsets=tuple(sorted(onsets, key=lambda o: (o.time_s, o.stem))), rejected=(),
                    hits=tuple(hits), flams=(), engine="oracle")
