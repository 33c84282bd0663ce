"""Flams: the drums of one hit not landing together, and deliberate flam rudiments.

Two kinds are reported, both as :class:`~beatfix.types.Flam`:

* a **spread** flam: drums that share a slot but whose delay-compensated
  onsets differ by more than the threshold (kick and snare 8 ms apart). It is
  usually sloppiness the user may want tightened.
* a **deliberate** flam: one drum struck twice 8-45 ms apart, a soft grace
  note before the main stroke (the rudiment). It must be moved as one piece,
  never tightened; its spread is grace to main.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .hits import is_grace
from .types import Flam, Hit, Onset


def find_flams(hits: Sequence[Hit], onsets: Sequence[Onset], drum_of: Mapping[str, str], *,
               threshold_ms: float) -> list[Flam]:
    """Flams among ``hits``; ``onsets`` are all accepted onsets (grace notes included).

    ``drum_of`` maps each close stem to the first stem of its drum, so that a
    grace note heard in snare top and bottom is one rudiment.
    """
    by_stem: dict[str, list[Onset]] = {}
    for o in sorted(onsets, key=lambda o: o.time_s):
        by_stem.setdefault(o.stem, []).append(o)
    owner = {(stem, t): i for i, h in enumerate(hits) for stem, t in h.onsets.items()}
    graces_at: dict[int, dict[str, tuple[float, float]]] = {}  # hit index -> stem -> (grace, main)
    for stem, seq in by_stem.items():
        for grace, main in zip(seq, seq[1:]):
            i = owner.get((stem, main.time_s))  # the hit in which this stroke is the stem's onset
            if i is not None and is_grace(grace, main):
                graces_at.setdefault(i, {})[stem] = (grace.time_s, main.time_s)
    flams = []
    for i, hit in enumerate(hits):
        graces = graces_at.get(i)
        if graces:
            # one rudiment per drum: average the gap over that drum's mics (their delays cancel)
            by_drum: dict[str, list[float]] = {}
            for stem, (g, m) in graces.items():
                by_drum.setdefault(drum_of.get(stem, stem), []).append((m - g) * 1000.0)
            spread = max(float(np.mean(v)) for v in by_drum.values())
            flams.append(Flam(hit.time_s, hit.slot, spread, dict(hit.onsets), True,
                              grace_onsets={stem: g for stem, (g, _) in graces.items()}))
        elif hit.spread_ms > threshold_ms:
            flams.append(Flam(hit.time_s, hit.slot, hit.spread_ms, dict(hit.onsets), False))
    return flams
