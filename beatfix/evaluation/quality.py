"""Analysis quality against the truth, pooled rates, and the oracle analysis built from the truth."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from ..types import Analysis, Hit, MicDelay, Onset, TempoCandidate
from .truth import FOLLOWER_ROLES, _delay, close_stems, own_drums, own_stems, truth_grid


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
    out: dict = {"tp": 0, "fp": 0, "fn": 0, "bleed_false": 0, "n_truth": 0, "errors_ms": [], "soft_ghosts": 0,
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
    grid = truth_grid(truth)
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
