"""Frozen data passed between the stages: load -> analyse -> plan -> render -> write.

Arrays are float32 with shape ``(n_channels, n_samples)``. Times are seconds in
the session's timeline unless a name says otherwise (``_ms``, ``_samples``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from .grid import Grid, MapGrid
from .tempomap import TempoMap

if TYPE_CHECKING:
    from .feel import Feel
    from .fitcheck import FitCheck
    from .polarity import PolarityCheck

# Roles whose mics trigger hits (close mics). Everything else follows.
CLOSE_ROLES = frozenset({"kick", "snare", "hat", "tom", "ride", "crash", "perc"})
FOLLOW_ROLES = frozenset({"overhead", "room", "other"})
# Stems beatfix never edits: a click track (it is the grid) and instruments that are not drums.
UNTOUCHED_ROLES = frozenset({"click", "nondrum"})
ROLES = CLOSE_ROLES | FOLLOW_ROLES | UNTOUCHED_ROLES


@dataclass(frozen=True, eq=False)
class Stem:
    """One input file. A stereo stem is one unit: its channels always move together."""

    name: str  # file name without extension: the key used in every report
    audio: np.ndarray  # (n_channels, n_samples) float32
    sample_rate: int
    role: str
    path: Path | None = None
    format: str = "WAV"  # soundfile major format of the source file
    subtype: str = "PCM_24"  # soundfile subtype of the source file
    source_n_samples: int | None = None  # length on disk, before padding to the session
    # Chunks the output carries over from the source file, ``(id, payload)``: BWF bext, iXML,
    # markers (beatfix.riff.CARRIED_CHUNKS); and names of those it cannot carry.
    metadata: tuple[tuple[bytes, bytes], ...] = ()
    metadata_dropped: tuple[str, ...] = ()

    @property
    def n_channels(self) -> int:
        return int(self.audio.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.audio.shape[1])

    @property
    def is_close(self) -> bool:
        return self.role in CLOSE_ROLES

    def mono(self) -> np.ndarray:
        """Mean of the channels, shape ``(n_samples,)``."""
        if self.n_channels == 1:
            return self.audio[0]
        return self.audio.mean(axis=0)


@dataclass(frozen=True, eq=False)
class Session:
    """Stems of one recording, all at one sample rate and one length."""

    stems: tuple[Stem, ...]
    sample_rate: int

    @property
    def n_samples(self) -> int:
        return self.stems[0].n_samples if self.stems else 0

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def close_stems(self) -> tuple[Stem, ...]:
        return tuple(s for s in self.stems if s.is_close)

    def stem(self, name: str) -> Stem:
        for s in self.stems:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class TempoCandidate:
    bpm: float
    strength: float  # relative, the candidates' strengths sum to 1


@dataclass(frozen=True)
class Onset:
    """A detected attack on one close mic, in that stem's own time."""

    stem: str
    time_s: float
    level_db: float  # peak level of the attack, dBFS
    confidence: float = 1.0  # probability that this is the stem's own drum, not bleed


@dataclass(frozen=True)
class Hit:
    """One strike of the kit: the close-mic onsets that share a grid slot."""

    time_s: float  # anchor: centre of the delay-compensated close-mic onsets
    earliest_s: float  # earliest delay-compensated close-mic onset: where cuts are made
    slot: int
    deviation_ms: float  # time_s minus the slot's time
    onsets: Mapping[str, float]  # stem name -> that stem's own onset, seconds
    spread_ms: float = 0.0  # latest minus earliest delay-compensated onset


@dataclass(frozen=True)
class Flam:
    time_s: float
    slot: int
    spread_ms: float
    channels: Mapping[str, float]  # stem name -> onset_s
    deliberate: bool = False
    grace_onsets: Mapping[str, float] = field(default_factory=dict)  # deliberate: stem -> its grace note's onset_s


@dataclass(frozen=True)
class MicDelay:
    """Static delay and polarity of one stem against the close mics."""

    stem: str
    delay_ms: float  # positive: this stem hears the kit later than its reference
    polarity: int  # +1 in phase, -1 inverted
    reference: str | None  # stem measured against; None for a reference itself
    per_reference_ms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    sample_rate: int
    duration_s: float
    tempo_bpm: float
    tempo_candidates: tuple[TempoCandidate, ...]
    grid: Grid | MapGrid
    mic_delays: tuple[MicDelay, ...]
    onsets: tuple[Onset, ...]  # accepted close-mic onsets
    rejected: tuple[Onset, ...]  # onsets judged to be bleed
    hits: tuple[Hit, ...]
    flams: tuple[Flam, ...]
    engine: str = "classic"
    tempo_map: TempoMap | None = None  # the map the grid follows (given, or the drummer's); None: one tempo
    tempo_source: str = "given"  # given (--bpm) | estimated (one tempo) | follow (the drummer's map) | map
    tempo_changes_s: tuple[float, ...] = ()  # sudden tempo changes found by following the drummer
    feel: "Feel | None" = None  # straight / swing / triplet, and the grid that fits the playing best
    grid_spec: str = "1/16"  # the grid resolution used ("auto" resolved)
    fit: "FitCheck | None" = None  # whether the grid fits the playing (align refuses when it does not)
    polarity_check: "PolarityCheck | None" = None  # close mics against the overheads (reported, not acted on)

    def delay_s(self, stem: str) -> float:
        for d in self.mic_delays:
            if d.stem == stem:
                return d.delay_ms / 1000.0
        return 0.0
