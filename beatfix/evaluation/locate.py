"""Landings: each truth hit re-found in an output (:class:`Locator`), and their residuals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .matching import _Bank, _echoes, _peak, find_template, highpass, ncc_curve
from .truth import _channel, _delay, _measuring_channel, expected_times_s, own_stems, truth_step_s

ATTACK_MS = 8.0
MIN_MATCH = 0.3  # normalised correlation below this: the hit is not where it should be...
MIN_MATCH_REL = 0.6  # ...nor below this share of its correlation at the truth onset in the input
MEASURABLE_MATCH = 0.5  # a hit whose own shot matches the input less than this is drowned by other sounds
MASKED_WITHIN_DB = 10.0  # another drum of the slot this close in level in the hit's mic masks it
CALIBRATE_MS = 0.5  # the template's best match this near the truth onset in the input is its zero
ECHO_MIN = 0.5  # a second match at least this strong...
ECHO_REL = 0.7  # ...and this share of the landing's, near a landing, is the attack heard again...
ECHO_APART_MS = 1.0  # ...if this far from the landing and from every other stroke of the drum
MAX_SEARCH_MS = 60.0


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
    step_s = truth_step_s(truth)
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
        self.step = int(round(truth_step_s(truth) * sr))
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
