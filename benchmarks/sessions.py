"""The held-out benchmark sessions: fixed seeds >= 10_000 and the held-out kit only.

Training data is drawn with seeds below 10_000 and the procedural or other
extracted kits, so none of these sessions, nor the kit's sounds, were seen in
training. Each session has 8 stems (close mics with bleed, overheads, a room),
one of four mic layouts, a tempo of 80-170 BPM, 44.1 or 48 kHz, a timing
spread of 10-30 ms and one of the four styles (rock, funk with ghost notes,
half-time, shuffle on a triplet grid).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from beatfix.synth import DRUMS, Kit, SessionSpec, complete_kit, load_kit, procedural_kit

KIT_DIR = Path(__file__).resolve().parent / "kits" / "fluidgm"
DURATION_S = 24.0

# name -> (mics, toms played, overheads as one stereo file, stereo room). Every layout has 8 stems.
LAYOUTS = {
    "A": (("kick", "snare", "hh", "tom1", "ft", "overheads", "room"), 2, False, False),  # oh_l + oh_r
    "B": (("kick", "snare", "hh", "tom1", "tom2", "ft", "overheads", "room"), 3, True, False),
    "C": (("kick", "snare", "snare_bottom", "hh", "tom1", "ft", "overheads", "room"), 2, True, True),
    "D": (("kick", "kick_out", "snare", "hh", "tom1", "overheads", "room"), 1, False, False),  # kick_in + kick_out
}

# seed, style, BPM, sample rate, spread (ms, about +-2 sigma), layout. The first two are --quick.
SESSIONS = (
    (10000, "rock", 120.0, 48000, 14.0, "A"),
    (10001, "funk", 98.0, 44100, 18.0, "B"),
    (10002, "halftime", 144.0, 48000, 22.0, "C"),
    (10003, "shuffle", 88.0, 44100, 16.0, "D"),
    (10004, "rock", 164.0, 44100, 26.0, "B"),
    (10005, "funk", 112.0, 48000, 12.0, "C"),
    (10006, "halftime", 80.0, 44100, 30.0, "A"),
    (10007, "shuffle", 126.0, 48000, 24.0, "D"),
    (10008, "rock", 140.0, 48000, 20.0, "D"),
    (10009, "funk", 90.0, 44100, 28.0, "A"),
    (10010, "halftime", 170.0, 48000, 10.0, "C"),
    (10011, "shuffle", 108.0, 44100, 20.0, "B"),
)


@dataclass(frozen=True)
class BenchSession:
    spec: SessionSpec
    layout: str

    @property
    def grid(self) -> str:
        """The --grid a user would give: triplet eighths for the shuffle, sixteenths otherwise."""
        return "1/8T" if self.spec.style == "shuffle" else "1/16"


def channel_count(layout: str) -> int:
    mics, _, oh_stereo, room_stereo = LAYOUTS[layout]
    return sum(2 if m == "overheads" else (2 if m == "room" and room_stereo else 1) for m in mics)


def bench_sessions(n: int | None = None, *, rows=SESSIONS) -> list[BenchSession]:
    out = []
    for seed, style, bpm, sr, spread_ms, layout in rows[:n]:
        mics, n_toms, oh_stereo, room_stereo = LAYOUTS[layout]
        spec = SessionSpec(seed=seed, sample_rate=sr, bpm=bpm, style=style, duration_s=DURATION_S,
                           spread_ms=spread_ms, kit=KIT_DIR.name, n_channels=channel_count(layout),
                           overheads_stereo_file=oh_stereo, room_stereo=room_stereo, n_toms=n_toms, mics=mics)
        out.append(BenchSession(spec, layout))
    return out


@functools.lru_cache(maxsize=4)
def bench_kit(sample_rate: int) -> tuple[Kit, tuple[str, ...]]:
    """The held-out kit at ``sample_rate``, and the drums filled in from the procedural kit (none for fluidgm)."""
    kit = load_kit(KIT_DIR, sample_rate)
    missing = tuple(d for d in DRUMS if d not in kit.shots)
    if missing:
        kit = complete_kit(kit, procedural_kit(sample_rate, 0))
    return kit, missing
