"""Phase between mics: the lag from each close-mic attack to the same attack in the overheads."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .locate import ATTACK_MS, Landing
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
