"""Musical positions: a time in the session as bar|beat|tick, for edit lists an engineer reads.

One helper, so that a tempo map with meters can replace the constant grid in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from .grid import AnyGrid

TICKS_PER_BEAT = 960  # the DAWs' usual resolution (Pro Tools, Logic, Cubase): 960 per quarter note
BEATS_PER_BAR = 4


@dataclass(frozen=True)
class BarBeat:
    bar: int  # 1-based; bar 1 beat 1 is the grid's offset, earlier times are bar 0 or less
    beat: int  # 1-based quarter note within the bar
    tick: int  # 0 to TICKS_PER_BEAT - 1 within the beat

    def __str__(self) -> str:
        return f"{self.bar}|{self.beat}|{self.tick:03d}"


def bar_beat(grid: AnyGrid, time_s: float) -> BarBeat:
    """Position of ``time_s`` on ``grid``: bars of 4 beats of ``60 / bpm`` from ``grid.offset_s`` for one
    tempo; a grid that follows a tempo map counts its bars and meters (beats in the meter's unit).

    Rounded to the nearest tick; a time a hair before a beat is that beat, tick 0.
    """
    from .grid import MapGrid

    if isinstance(grid, MapGrid):
        tm = grid.tempo_map
        q = float(tm.position_at(float(time_s)))
        bar, beat, frac = tm.bar_beat(q)
        tick = round(frac * TICKS_PER_BEAT)
        if tick >= TICKS_PER_BEAT:  # rounds up to the next beat: let the map say which one that is
            bar, beat, frac = tm.bar_beat(q + 0.5 / TICKS_PER_BEAT)
            tick = round(frac * TICKS_PER_BEAT) % TICKS_PER_BEAT
        return BarBeat(bar=int(bar), beat=int(beat), tick=int(tick))
    ticks = round((float(time_s) - grid.offset_s) * grid.bpm / 60.0 * TICKS_PER_BEAT)
    beats, tick = divmod(ticks, TICKS_PER_BEAT)
    bars, beat = divmod(beats, BEATS_PER_BAR)
    return BarBeat(bar=int(bars) + 1, beat=int(beat) + 1, tick=int(tick))
