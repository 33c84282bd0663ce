"""Phase between mics: the lag from each close-mic attack to the same attack in the overheads.

:func:`overhead_lags` matches the close mic's own signal (fine while every
drum of a slot moves together); :func:`drum_lags` matches each hit's own
one-shot, so it stays exact when drums of one slot move apart (``--flams fix``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .locate import ATTACK_MS, Landing, shot_template
from .matching import _Bank, find_template
from .truth import _delay, own_stems


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


def drum_lags(stems: Mapping[str, np.ndarray], truth: Mapping, hit_shots: Sequence[np.ndarray],
              landings: Sequence[Landing], *, roles: Sequence[str] = ("overhead",), search_ms: float = 1.5,
              min_match: float = 0.3, _bank: _Bank | None = None) -> dict[tuple[int, str], float]:
    """Lag in samples from each close-mic landing to the same drum's attack in every follower channel.

    Per drum, not per hit: the attack is sought in the follower with the
    hit's **own one-shot** (high-passed, as :class:`~.locate.Locator` does),
    within ``search_ms`` of where the truth's static delays put it relative to
    the close-mic landing. Matching the close mic's signal instead
    (:func:`overhead_lags`) is biased once an edit moves drums of one slot
    apart: the close mic's bleed of the other drums no longer lines up with
    those drums in the overhead. Compare an output's lags with the input's
    (``landings`` of the input itself): an edit that moves each drum's part of
    the overheads with its close mic leaves every lag unchanged.
    """
    sr = int(truth["sample_rate"])
    n_att = int(round(ATTACK_MS / 1000.0 * sr))
    half = int(round(search_ms / 1000.0 * sr))
    bank = _bank or _Bank(stems, sr)
    channels = {ch["stem"]: ch for ch in truth["channels"]}
    hits = truth["hits"]
    lags = {}
    for l in landings:
        if not l.close or l.grace or l.lost or l.weak or l.stem not in stems:
            continue
        drum, close_at = l.drum, l.landed_s * sr
        close_delay = _delay(truth, l.stem, drum)
        for ch in truth["channels"]:
            if ch["role"] not in roles or ch["stem"] not in stems or drum not in ch["drums"]:
                continue
            template = shot_template(hit_shots[hits[l.hit]["index"]], sr, n_att, int(channels[ch["stem"]]["polarity"]))
            for c in range(np.asarray(stems[ch["stem"]]).shape[0]):
                expected = close_at + ch["drums"][drum]["delay_samples"][c] - close_delay
                centre = int(round(expected))
                pos, match, edge = find_template(template, bank.get(ch["stem"], c), centre - half, centre + half)
                if match >= min_match and not edge:
                    lags[(l.hit, f"{ch['stem']}:{c}")] = pos - close_at
    return lags
