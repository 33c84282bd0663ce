"""Musical positions: a time in the session as bar|beat|tick, for edit lists an engineer reads.

One helper over the grid's tempo map (:attr:`Grid.tempo_map` for one tempo), so bars and meters are
counted in one place, :meth:`beatfix.tempomap.TempoMap.bar_beat`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .grid import AnyGrid

TICKS_PER_BEAT = 960  # the DAWs' usual resolution (Pro Tools, Logic, Cubase): 960 per beat


@dataclass(frozen=True)
class BarBeat:
    bar: int  # 1-based; bar 1 beat 1 is the grid's offset, earlier times are bar 0 or less
    beat: int  # 1-based beat of the meter within the bar (a quarter in 4/4)
    tick: int  # 0 to TICKS_PER_BEAT - 1 within the beat

    def __str__(self) -> str:
        return f"{self.bar}|{self.beat}|{self.tick:03d}"


def bar_beat(grid: AnyGrid, time_s: float) -> BarBeat:
    """Position of ``time_s`` on ``grid``: the bars and meters of the tempo map it follows (one tempo: 4/4
    bars of ``60 / bpm`` from ``grid.offset_s``), beats in the meter's unit.

    Rounded to the nearest tick; a time a hair before a beat is that beat, tick 0.
    """
    tm = grid.tempo_map
    q = float(tm.position_at(float(time_s)))
    bar, beat, frac = tm.bar_beat(q)
    tick = round(frac * TICKS_PER_BEAT)
    if tick >= TICKS_PER_BEAT:  # rounds up to the next beat: let the map say which one that is
        bar, beat, frac = tm.bar_beat(q + 0.5 / TICKS_PER_BEAT)
        tick = round(frac * TICKS_PER_BEAT) % TICKS_PER_BEAT
    return BarBeat(bar=int(bar), beat=int(beat), tick=int(tick))
