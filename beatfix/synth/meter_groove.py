"""Grooves in any supported meter and subdivision, and count-ins: the score of a performance with musical time.

Patterns are written in eighth notes from the bar's start (1.5 is the
sixteenth after the second eighth) and placed on the grid's slots: ``x``
eighths is slot ``x / 2 * steps_per_beat``; on a triplet grid an offbeat
eighth is the beat's last triplet (the shuffle). A position with no slot on
the grid (a sixteenth on an eighth-note grid) is left out.

What each meter plays (kick on 1, snares where the meter puts its backbeats):

* 2/4 and 4/4: snare on 2 (and 4); 3/4: snare on 2 and 3 (a waltz) or on 3;
* 5/4, felt 3+2: kick on 1 and 4, snare on 3 and 5;
* 6/8 and 12/8: two or four dotted-quarter beats, snare on the second (and fourth);
* 7/8, felt 2+2+3: kick at the start of the first and last group, snare on the second group and the last eighth.
"""

from __future__ import annotations

import numpy as np

from ..tempomap import Meter
from .groove import _Event, _Score, walk_down_the_kit
from .kits import TOMS

# (num, den) -> (counted beats, backbeat options, kick pattern options), all in eighths from the bar start
LAYOUTS: dict[tuple[int, int], tuple[tuple[float, ...], list[tuple[float, ...]], list[tuple[float, ...]]]] = {
    (2, 4): ((0, 2), [(2,)], [(0,), (0, 3), (0, 1.5)]),
    (3, 4): ((0, 2, 4), [(2, 4), (4,)], [(0,), (0, 3), (0, 5), (0, 1.5)]),
    (4, 4): ((0, 2, 4, 6), [(2, 6)], [(0, 4), (0, 4, 5), (0, 3, 4), (0, 1.5, 4), (0, 5)]),
    (5, 4): ((0, 2, 4, 6, 8), [(4, 8)], [(0, 6), (0, 3, 6), (0, 2, 6), (0, 6, 7)]),
    (6, 8): ((0, 3), [(3,)], [(0,), (0, 5), (0, 2)]),
    (7, 8): ((0, 2, 4), [(2, 6)], [(0, 4), (0, 4, 5), (0, 3, 4)]),
    (12, 8): ((0, 3, 6, 9), [(3, 9)], [(0, 6), (0, 5, 6), (0, 6, 8), (0, 2, 6)]),
}


def eighth_to_slot(x: float, steps_per_beat: int) -> int | None:
    """The slot of a position ``x`` eighths into the bar, or None when the grid has no slot there."""
    q = x / 2.0
    s = q * steps_per_beat
    if abs(s - round(s)) < 1e-9:
        return int(round(s))
    if steps_per_beat == 3 and abs(q - np.floor(q) - 0.5) < 1e-9:
        return int(np.floor(q)) * 3 + 2  # the offbeat eighth of a shuffle
    return None


class MeterScore(_Score):
    """Writes bars of any meter in :data:`LAYOUTS`; the song's choices are drawn once, as in ``_Score``."""

    def __init__(self, rng: np.random.Generator, style: str, bpm: float, drums: set[str], flam_rate: float,
                 steps_per_beat: int):
        self.rng, self.style, self.drums, self.flam_rate = rng, style, drums, flam_rate
        self.spb = int(steps_per_beat)
        self.phrase_bars = int(rng.choice([4, 8]))
        self.toms = [t for t in TOMS if t in drums]
        keeper = "hat" if "hat" in drums else ("ride" if "ride" in drums else None)
        self.keepers = [keeper, "ride" if "ride" in drums and rng.random() < 0.35 else keeper]
        # Sixteenth hats only where there is time for them; quarter-note hats at fast tempos.
        self.keeper_step = 0.5 if self.spb == 4 and bpm < 95 and rng.random() < 0.4 else (2.0 if bpm > 175 else 1.0)
        self.ghost_rate = {"rock": 0.05, "funk": 0.3, "halftime": 0.15, "shuffle": 0.15}[style] * rng.uniform(0.5, 1.5)
        self.open_hat_rate = rng.uniform(0.0, 0.35) if "hat_open" in drums else 0.0
        self.fill_rate = rng.uniform(0.4, 0.9)
        self.choices = {m: (int(rng.integers(len(lay[1]))), int(rng.integers(len(lay[2]))),
                            int(rng.integers(len(lay[2])))) for m, lay in LAYOUTS.items()}

    def _slot(self, x: float) -> int | None:
        return eighth_to_slot(x, self.spb)

    def write(self, bars: list[tuple[int, int, int]]) -> list[_Event]:  # type: ignore[override]
        """``bars``: ``(numerator, denominator, first slot)`` of each bar from bar 1."""
        events: list[_Event] = []
        for bar, (num, den, base) in enumerate(bars):
            n_slots = int(round(Meter(0.0, num, den).bar_q * self.spb))
            phrase_start = bar % self.phrase_bars == 0
            phrase_end = (bar + 1) % self.phrase_bars == 0
            section = (bar // self.phrase_bars) % 2
            bar_events = self._bar(num, den, n_slots, section, bar)
            if phrase_end and self.rng.random() < self.fill_rate:
                bar_events = self._fill(num, den, n_slots, bar_events)
            if phrase_start and "crash" in self.drums:
                bar_events = [e for e in bar_events if not (e.slot == 0 and e.drum in ("hat", "ride", "hat_open"))]
                bar_events.append(_Event(0, "crash", self._vel(0.85, 1.0)))
            for e in bar_events:
                e.slot += base
            events.extend(bar_events)
        return self._add_flams(events)

    def _bar(self, num: int, den: int, n_slots: int, section: int, bar: int) -> list[_Event]:
        beats, backbeat_options, kick_options = LAYOUTS[(num, den)]
        snare_choice, kick_a, kick_b = self.choices[(num, den)]
        beat_slots = {s for s in map(self._slot, beats) if s is not None}
        out: list[_Event] = []
        keeper = self.keepers[section]
        n_eighths = 2 * Meter(0.0, num, den).bar_q
        if keeper is not None:
            for x in np.arange(0.0, n_eighths - 1e-9, self.keeper_step):
                s = self._slot(float(x))
                if s is None:
                    continue
                vel = (self._vel(0.7, 0.85) if s in beat_slots else
                       self._vel(0.5, 0.68) if float(x).is_integer() else self._vel(0.35, 0.5))
                drum = keeper
                if keeper == "hat" and abs(x - (n_eighths - 1)) < 1e-9 and self.rng.random() < self.open_hat_rate:
                    drum, vel = "hat_open", self._vel(0.6, 0.8)
                out.append(_Event(s, drum, vel))
        kicks = kick_options[kick_b if bar % 4 == 3 else kick_a]
        for x in kicks:
            s = self._slot(x)
            if s is not None:
                out.append(_Event(s, "kick", self._vel(0.75, 0.95) if s in beat_slots else self._vel(0.6, 0.85)))
        backbeats = {s for s in map(self._slot, backbeat_options[snare_choice]) if s is not None}
        if self.style == "halftime" and (num, den) == (4, 4):
            backbeats = {self._slot(4)}
        out += [_Event(s, "snare", self._vel(0.8, 1.0)) for s in sorted(backbeats)]
        for s in range(n_slots):
            # Ghosts between the strokes, never on a beat or a backbeat or right before one.
            if s in backbeats or s + 1 in backbeats or s in beat_slots:
                continue
            if self.rng.random() < self.ghost_rate:
                out.append(_Event(s, "snare", self._vel(0.1, 0.3), ghost=True))
        return out

    def _fill(self, num: int, den: int, n_slots: int, events: list[_Event]) -> list[_Event]:
        """A fill over the bar's last counted beat (or its last group), walking down the kit."""
        beats = LAYOUTS[(num, den)][0]
        start = self._slot(beats[-1] if len(beats) > 1 else beats[0])
        kept = [e for e in events if e.slot < start or (e.drum == "kick" and e.slot == start)]
        step = 1 if self.spb in (2, 3) or self.rng.random() < 0.6 else 2
        slots = list(range(start, n_slots, step))
        return kept + walk_down_the_kit(slots, ["snare"] + self.toms, self.rng)


def count_in_events(rng: np.random.Generator, meter: Meter, steps_per_beat: int, n_bars: int,
                    drums: set[str]) -> list[_Event]:
    """``n_bars`` bars of closed hats on the counted beats before bar 1 (negative slots), the first a bit louder."""
    if n_bars <= 0:
        return []
    drum = "hat" if "hat" in drums else ("ride" if "ride" in drums else "snare")
    n_slots = int(round(meter.bar_q * steps_per_beat))
    beat_slots = np.arange(0.0, meter.bar_q - 1e-9, meter.beat_q) * steps_per_beat
    out = []
    for bar in range(-n_bars, 0):
        for i, s in enumerate(beat_slots):
            vel = float(rng.uniform(0.7, 0.8) if i == 0 else rng.uniform(0.55, 0.68))
            out.append(_Event(bar * n_slots + int(round(s)), drum, vel))
    return out
