"""Synthetic multitrack drum sessions with exact ground truth.

:func:`render_session` turns a :class:`SessionSpec` and a kit into stems and a
JSON-serialisable truth. :func:`render_ideal` renders the same strokes, shots,
mics and gains with every stroke on its grid time: the best any editor could
do, and so the yardstick of the benchmark. Deliberate flams keep their grace
stroke's distance to the main stroke there, because a good editor keeps them.

Everything is drawn from ``spec.seed``: the performance, the mic setup and the
shot chosen for each stroke come from separate generators, so the ideal render
reuses every choice of the performed one.

Truth (``truth.json``, version 1)::

    {version, ideal, seed, sample_rate, n_samples, duration_s, bpm, steps_per_beat,
     beats_per_bar, grid_offset_s, swing_pct, style, spread_ms, kit, n_channels,
     hits: [{index, drum, velocity, slot, grid_time_s, performed_time_s, onset_sample,
             flam, deliberate_flam, grace, ghost, layer, alternate, level_db}],
     channels: [{stem, file, role, n_channels, polarity, normalise_gain_db,
                 drums: {drum: {gain_db: [per channel], delay_samples: [...], delay_ms: [...]}},
                 reverb: {rt60_s, predelay_ms} (room mics only)}]}

* ``slot`` counts grid steps (1/16 notes, or 1/8 triplets when
  ``steps_per_beat`` is 3) from ``grid_offset_s``; ``grid_time_s`` is
  ``beatfix.grid.Grid(bpm, grid_offset_s, steps_per_beat, swing_pct).slot_time(slot)``.
* A spec with musical time (:attr:`SessionSpec.musical_time`: a tempo curve,
  another meter, a feel, a count-in) adds ``tempo_map`` (``positions_q``,
  ``times_s``, ``meters``: ``[q, numerator, denominator]``; see
  :func:`beatfix.synth.timeline.truth_tempo_map`), ``grid_resolution``,
  ``tempo_curve``, ``feel``, ``meter`` (labels), ``count_in_bars``,
  ``bpm_start`` and ``bpm_end``; ``bpm`` is then the median tempo,
  ``grid_offset_s`` the time of bar 1, ``beats_per_bar`` the first meter's
  numerator, and ``grid_time_s`` is ``MapGrid(tempo_map, steps_per_beat,
  swing_pct, (0, duration_s)).slot_time(slot)`` (count-in slots are negative).
  :func:`write_session` writes the map as ``tempo_map.mid`` beside the truth
  (a constant map at ``bpm`` for a fixed-tempo session).
* ``performed_time_s == onset_sample / sample_rate`` exactly; sample 0 of
  the one-shot (its attack) sits at ``onset_sample``.
* A drum's onset in channel ``c`` of a stem is exactly
  ``onset_sample + drums[drum].delay_samples[c]``, at level
  ``level_db + drums[drum].gain_db[c]``, inverted when ``polarity`` is -1.
  Gains include the per-stem normalisation (``normalise_gain_db``) that puts
  each stem's peak at :data:`PEAK_DBFS`. Room gains are the direct sound's.
* ``file`` is the stem's file name as :func:`write_session` writes it.
* ``flam``: another stroke of the same slot is at least 10 ms away;
  ``deliberate_flam``: both strokes of a written flam; ``grace``: its soft first stroke;
  ``ghost``: a soft written snare stroke between the backbeats.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Collection, Mapping, Sequence

import numpy as np

from ..audio_io import prepare_output_dir, write_bytes_atomic, write_files, write_text_atomic
from ..errors import ParameterError
from ..grid import MapGrid, check_bpm
from ..types import Session, Stem
from .groove import BEATS_PER_BAR, STYLES, Performance, on_grid_notes, perform
from .kits import TOMS, Kit
from .mics import MAX_CHANNELS, MicSetup, random_mics
from .render import drum_tracks, render_mics, velocity_gain_db
from ..midi_io import tempo_map_midi_bytes
from .timeline import (METERS, TEMPO_CURVES, Timeline, grid_resolution, parse_meter, resolve_timeline,
                       truth_tempo_map)

TRUTH_VERSION = 1
TEMPO_MAP_FILE = "tempo_map.mid"
PEAK_DBFS = -3.0
SAMPLE_RATES = (44100, 48000, 96000)


@dataclass(frozen=True)
class SessionSpec:
    """Everything that defines a session besides the kit; the rest follows from ``seed``."""

    seed: int
    sample_rate: int = 48000
    bpm: float = 120.0
    style: str = "rock"
    duration_s: float = 20.0
    spread_ms: float = 10.0  # about two standard deviations of the timing error
    limb_ms: float = 1.5  # at most this SD for each limb's own deviation: drums of a beat are a few ms apart
    kit: str = "procedural"
    n_channels: int = 8  # target; the setup gets as close as the kit's drums allow
    overheads_stereo_file: bool = False  # one stereo "overheads" stem instead of oh_l + oh_r
    room_stereo: bool = False
    n_toms: int = 3
    toms_played: int | None = None  # of the toms set up, how many the drummer plays (None: all); the rest are mic'd
    flam_rate: float = 0.05  # share of loud snare and tom strokes played as flams
    lead_in_s: float | None = None  # time of slot 0; drawn from 0.2-1.0 s when None
    mics: tuple[str, ...] | None = None  # fixed mic names (mics.MIC_NAMES); drawn to fit n_channels when None
    # Musical time (see beatfix.synth.timeline). The defaults are the fixed-tempo 4/4 session of the style,
    # rendered exactly as before these fields existed; anything else writes the true tempo map into the truth.
    tempo_curve: str = "steady"  # steady, ramp, breathing or change
    tempo_to_bpm: float | None = None  # ramp / change: the tempo after it (None: 10-20 % up or down, drawn)
    tempo_change_bar: int | None = None  # ramp / change: the bar where it starts (None: drawn mid-song)
    tempo_ramp_bars: int | None = None  # ramp: its length in bars (None: to the end)
    breathing_pct: float = 5.0  # breathing: the tempo's largest deviation, +- percent
    meter: str = "4/4"  # 2/4, 3/4, 4/4, 5/4, 6/8, 7/8 or 12/8
    meter_change: str | None = None  # a second meter from meter_change_bar on
    meter_change_bar: int | None = None  # None: mid-song
    feel: str | None = None  # straight, swing (16ths), shuffle (swung 8ths), triplet (1/8T); None: the style's own
    swing_pct: float | None = None  # swing / shuffle: None draws 54-62 % (swing) or 60-66 % (shuffle)
    count_in_bars: int = 0  # bars of closed hats on the beats before bar 1

    @property
    def musical_time(self) -> bool:
        """Whether any musical-time field differs from the fixed-tempo 4/4 default."""
        return (self.tempo_curve != "steady" or self.meter != "4/4" or self.meter_change is not None
                or self.feel is not None or self.swing_pct is not None or self.count_in_bars != 0)

    def timeline(self) -> Timeline | None:
        """The resolved musical time (drawn from the spec's own generator), or None for a plain session."""
        if not self.musical_time:
            return None
        return resolve_timeline(np.random.default_rng([self.seed, 6]), style=self.style, bpm=self.bpm,
                                duration_s=self.duration_s, curve=self.tempo_curve, to_bpm=self.tempo_to_bpm,
                                change_bar=self.tempo_change_bar, ramp_bars=self.tempo_ramp_bars,
                                depth_pct=self.breathing_pct, meter=self.meter, meter_change=self.meter_change,
                                meter_change_bar=self.meter_change_bar, feel=self.feel, swing_pct=self.swing_pct,
                                count_in_bars=self.count_in_bars)

    def __post_init__(self) -> None:
        check_bpm(self.bpm)
        if self.sample_rate < 8000:
            raise ParameterError(f"sample rate {self.sample_rate} Hz is too low")
        if self.style not in STYLES:
            raise ParameterError(f"unknown style {self.style!r}: use one of {', '.join(STYLES)}")
        if not (math.isfinite(self.duration_s) and 2.0 <= self.duration_s <= 3600.0):
            raise ParameterError(f"duration {self.duration_s:g} s is out of range: use 2 to 3600")
        if not 2 <= self.n_channels <= MAX_CHANNELS:
            raise ParameterError(f"{self.n_channels} channels is out of range: use 2 to {MAX_CHANNELS}")
        if not 0 <= self.n_toms <= 3:
            raise ParameterError(f"{self.n_toms} toms is out of range: use 0 to 3")
        if self.toms_played is not None and not 0 <= self.toms_played <= self.n_toms:
            raise ParameterError(f"{self.toms_played} toms played is out of range: use 0 to the {self.n_toms} set up")
        if not (math.isfinite(self.spread_ms) and 0.0 <= self.spread_ms <= 100.0):
            raise ParameterError(f"spread {self.spread_ms:g} ms is out of range: use 0 to 100")
        if not (math.isfinite(self.limb_ms) and 0.0 <= self.limb_ms <= 30.0):
            raise ParameterError(f"limb spread {self.limb_ms:g} ms is out of range: use 0 to 30")
        if not 0.0 <= self.flam_rate <= 1.0:
            raise ParameterError(f"flam rate {self.flam_rate:g} is out of range: use 0 to 1")
        if self.lead_in_s is not None and not 0.0 <= self.lead_in_s < self.duration_s - 1.0:
            raise ParameterError(f"lead-in {self.lead_in_s:g} s: use 0 to the duration minus 1 s")
        self.timeline()  # validates the musical-time fields


def random_spec(rng: np.random.Generator, *, sample_rates: Sequence[int] = SAMPLE_RATES,
                bpm_range: tuple[float, float] = (60.0, 200.0), spread_ms_range: tuple[float, float] = (3.0, 30.0),
                channels_range: tuple[int, int] = (2, 16), duration_s: float = 20.0,
                styles: Sequence[str] = STYLES, kit: str = "procedural", idle_tom_rate: float = 0.0,
                tempo_curves: Sequence[str] = ("steady",), meters: Sequence[str] = ("4/4",),
                feels: Sequence[str | None] = (None,), count_in_rate: float = 0.0) -> SessionSpec:
    """Draw a spec; spreads are log-uniform so tight and sloppy drummers are equally common per octave.

    ``idle_tom_rate``: the share of sessions whose drummer leaves some of the
    toms set up unplayed (drawn from the spec's own seed, so the other draws do
    not depend on it).

    Musical time, each drawn per session from the choices given (from the
    spec's own seed too, so the defaults draw exactly what they always did):
    ``tempo_curves`` (:data:`~beatfix.synth.timeline.TEMPO_CURVES`),
    ``meters`` (:data:`~beatfix.synth.timeline.METERS`, or ``"change"``: 4/4
    turning into another meter mid-song), ``feels``
    (:data:`~beatfix.synth.timeline.FEELS`, or None for the style's own) and
    ``count_in_rate`` (the share of sessions with a one-bar count-in).
    """
    lo, hi = spread_ms_range
    if not 0.0 < lo <= hi:
        raise ParameterError(f"spread range {lo:g}-{hi:g} ms: use 0 < min <= max")
    if not 2 <= channels_range[0] <= channels_range[1] <= MAX_CHANNELS:
        raise ParameterError(f"channel range {channels_range[0]}-{channels_range[1]}: use 2 <= min <= max <= 16")
    if bpm_range[0] > bpm_range[1]:
        raise ParameterError(f"bpm range {bpm_range[0]:g}-{bpm_range[1]:g}: min is above max")
    if not 0.0 <= idle_tom_rate <= 1.0:
        raise ParameterError(f"idle tom rate {idle_tom_rate:g}: use 0 to 1")
    spec = SessionSpec(
        seed=int(rng.integers(2**31)),
        sample_rate=int(rng.choice(list(sample_rates))),
        bpm=round(float(rng.uniform(*bpm_range)), 2),
        style=str(rng.choice(list(styles))),
        duration_s=float(duration_s),
        spread_ms=round(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), 2),
        kit=kit,
        n_channels=int(rng.integers(channels_range[0], channels_range[1] + 1)),
        overheads_stereo_file=bool(rng.random() < 0.5),
        room_stereo=bool(rng.random() < 0.4),
        n_toms=int(rng.choice([0, 1, 2, 3], p=[0.1, 0.2, 0.3, 0.4])),
        flam_rate=float(rng.uniform(0.0, 0.1)),
    )
    own = np.random.default_rng([spec.seed, 5])
    if spec.n_toms > 0 and own.random() < idle_tom_rate:
        spec = replace(spec, toms_played=int(own.integers(0, spec.n_toms)))
    if tuple(tempo_curves) != ("steady",) or tuple(meters) != ("4/4",) or tuple(feels) != (None,) or count_in_rate:
        spec = replace(spec, **_draw_musical_time(np.random.default_rng([spec.seed, 7]), spec, tempo_curves, meters,
                                                  feels, count_in_rate))
    return spec


def _draw_musical_time(rng: np.random.Generator, spec: SessionSpec, tempo_curves: Sequence[str],
                       meters: Sequence[str], feels: Sequence[str | None], count_in_rate: float) -> dict:
    for name in tempo_curves:
        if name not in TEMPO_CURVES:
            raise ParameterError(f"tempo curve {name!r}: use one of {', '.join(TEMPO_CURVES)}")
    for name in meters:
        if name != "change":
            parse_meter(name)
    if not 0.0 <= count_in_rate <= 1.0:
        raise ParameterError(f"count-in rate {count_in_rate:g}: use 0 to 1")
    out: dict = {"tempo_curve": str(rng.choice(list(tempo_curves)))}
    meter = str(rng.choice(list(meters)))
    if meter == "change":
        out["meter"], out["meter_change"] = "4/4", str(rng.choice([m for m in METERS if m != "4/4"]))
    else:
        out["meter"] = meter
    feel = feels[int(rng.integers(len(feels)))]
    eighths = any(m.endswith("/8") for m in (out["meter"], out.get("meter_change", "4/4")))
    if eighths and (feel in ("shuffle", "triplet") or (feel is None and spec.style == "shuffle")):
        feel = "straight"  # 6/8, 7/8 and 12/8 have no triplet grid of their own: played straight
    out["feel"] = feel
    if out["tempo_curve"] == "breathing":
        out["breathing_pct"] = round(float(rng.uniform(2.0, 6.0)), 2)
    out["count_in_bars"] = int(rng.random() < count_in_rate)
    return out


@dataclass(frozen=True, eq=False)
class RenderedSession:
    spec: SessionSpec
    sample_rate: int
    stems: Mapping[str, np.ndarray]  # stem name -> (n_channels, n_samples) float32
    roles: Mapping[str, str]
    truth: Mapping  # JSON-serialisable, see the module docstring
    performance: Performance
    mics: MicSetup
    hit_shots: tuple[np.ndarray, ...]  # the kit's one-shot used by each truth hit, by index

    @property
    def n_samples(self) -> int:
        return int(self.truth["n_samples"])

    def as_session(self) -> Session:
        """The stems as a :class:`beatfix.types.Session`, for analysis without writing files."""
        stems = tuple(Stem(name=n, audio=a, sample_rate=self.sample_rate, role=self.roles[n])
                      for n, a in self.stems.items())
        return Session(stems=stems, sample_rate=self.sample_rate)


@dataclass(frozen=True)
class _Plan:
    performance: Performance
    mics: MicSetup
    choices: tuple[tuple[int, int], ...]  # (layer, alternate) per note
    timeline: Timeline | None = None


def _plan(spec: SessionSpec, kit: Kit) -> _Plan:
    if kit.sample_rate != spec.sample_rate:
        raise ParameterError(f"kit {kit.name!r} is at {kit.sample_rate} Hz but the session at {spec.sample_rate} Hz")
    toms = [t for t in TOMS if t in kit.drums]
    # Fewer toms set up: keep the high and the floor tom, the usual small kit.
    keep = {0: [], 1: toms[:1], 2: toms[:1] + toms[-1:] if len(toms) > 1 else toms}.get(spec.n_toms, toms)
    drums = [d for d in kit.drums if d not in TOMS or d in keep]
    idle: list[str] = []
    if spec.toms_played is not None and spec.toms_played < len(keep):
        # A verse without fills: some toms are set up and mic'd but never hit, so their mics hear only bleed.
        order = np.random.default_rng([spec.seed, 4]).permutation(len(keep))
        idle = [keep[i] for i in sorted(order[:len(keep) - spec.toms_played])]
    timeline = spec.timeline()
    performance = perform(np.random.default_rng([spec.seed, 1]), style=spec.style, bpm=spec.bpm,
                          duration_s=spec.duration_s, spread_ms=spec.spread_ms, sample_rate=spec.sample_rate,
                          drums=[d for d in drums if d not in idle], lead_in_s=spec.lead_in_s,
                          flam_rate=spec.flam_rate, limb_ms=spec.limb_ms, timeline=timeline)
    mics = random_mics(np.random.default_rng([spec.seed, 2]), drums=sorted(set(performance.drums) | set(idle)),
                       sample_rate=spec.sample_rate, n_channels=spec.n_channels,
                       overheads_stereo_file=spec.overheads_stereo_file, room_stereo=spec.room_stereo,
                       names=spec.mics)
    rng = np.random.default_rng([spec.seed, 3])
    last: dict[tuple[str, int], int] = {}
    choices = []
    for note in performance.notes:
        layer = kit.layer_for(note.drum, note.velocity)
        n_alt = len(kit.shots[note.drum][layer])
        alt = int(rng.integers(n_alt))
        if n_alt > 1 and last.get((note.drum, layer)) == alt:
            alt = (alt + 1 + int(rng.integers(n_alt - 1))) % n_alt  # no machine-gun repeats
        last[(note.drum, layer)] = alt
        choices.append((layer, alt))
    return _Plan(performance, mics, tuple(choices), timeline)


def _mix(plan: _Plan, kit: Kit, n_samples: int, solo: Collection[str] | None = None) -> dict[str, np.ndarray]:
    performance = plan.performance
    sr = performance.sample_rate
    placements = [
        (n.drum, int(round(n.performed_time_s * sr)), 10 ** (velocity_gain_db(n.velocity) / 20), kit.shot(n.drum, *c))
        for n, c in zip(performance.notes, plan.choices) if solo is None or n.drum in solo
    ]
    return render_mics(plan.mics, drum_tracks(placements, n_samples), n_samples)


def _normalise_gains_db(stems: Mapping[str, np.ndarray]) -> dict[str, float]:
    gains = {}
    for name, audio in stems.items():
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        gains[name] = PEAK_DBFS - 20.0 * math.log10(peak) if peak > 0 else 0.0
    return gains


def _finish(spec: SessionSpec, kit: Kit, plan: _Plan, stems: dict[str, np.ndarray],
            norm_db: Mapping[str, float], ideal: bool) -> RenderedSession:
    performance = plan.performance
    for name, audio in stems.items():
        audio *= np.float32(10 ** (norm_db[name] / 20))
    n_samples = next(iter(stems.values())).shape[1]
    truth = _truth(spec, kit, plan, norm_db, n_samples, ideal)
    shots = tuple(kit.shot(n.drum, *c) for n, c in zip(performance.notes, plan.choices))
    return RenderedSession(spec=spec, sample_rate=spec.sample_rate, stems=stems,
                           roles={m.name: m.role for m in plan.mics.mics}, truth=truth,
                           performance=performance, mics=plan.mics, hit_shots=shots)


def render_session(spec: SessionSpec, kit: Kit, *, solo: Collection[str] | None = None) -> RenderedSession:
    """Render the performed session: stems ``(n_channels, n_samples)`` float32 plus truth.

    ``solo`` renders only those drums, with the full session's gains, e.g. to
    measure bleed or to build per-drum targets.
    """
    plan = _plan(spec, kit)
    n_samples = int(round(spec.duration_s * spec.sample_rate))
    stems = _mix(plan, kit, n_samples)
    norm_db = _normalise_gains_db(stems)
    if solo is not None:
        stems = _mix(plan, kit, n_samples, solo)
    return _finish(spec, kit, plan, stems, norm_db, ideal=False)


def render_pair(spec: SessionSpec, kit: Kit, *,
                keep_deliberate_flams: bool = True) -> tuple[RenderedSession, RenderedSession]:
    """The performed session and its ideal, sharing strokes, shots, mics and gains."""
    plan = _plan(spec, kit)
    n_samples = int(round(spec.duration_s * spec.sample_rate))
    stems = _mix(plan, kit, n_samples)
    norm_db = _normalise_gains_db(stems)
    performed = _finish(spec, kit, plan, stems, norm_db, ideal=False)
    notes = on_grid_notes(plan.performance, keep_deliberate_flams=keep_deliberate_flams)
    order = sorted(range(len(notes)), key=lambda i: (notes[i].performed_time_s, notes[i].drum))
    on_grid = replace(plan.performance, notes=tuple(notes[i] for i in order), spread_ms=0.0)
    ideal_plan = replace(plan, performance=on_grid, choices=tuple(plan.choices[i] for i in order))
    ideal_stems = _mix(ideal_plan, kit, n_samples)
    ideal = _finish(spec, kit, ideal_plan, ideal_stems, norm_db, ideal=True)
    return performed, ideal


def render_ideal(spec: SessionSpec, kit: Kit, *, keep_deliberate_flams: bool = True) -> RenderedSession:
    """The session as played exactly on the grid; gains match :func:`render_session`."""
    return render_pair(spec, kit, keep_deliberate_flams=keep_deliberate_flams)[1]


def _truth(spec: SessionSpec, kit: Kit, plan: _Plan, norm_db: Mapping[str, float], n_samples: int,
           ideal: bool) -> dict:
    performance = plan.performance
    sr = spec.sample_rate
    grid = performance.grid
    hits = []
    for i, (n, (layer, alt)) in enumerate(zip(performance.notes, plan.choices)):
        hits.append({
            "index": i, "drum": n.drum, "velocity": n.velocity, "slot": n.slot,
            "grid_time_s": n.grid_time_s, "performed_time_s": n.performed_time_s,
            "onset_sample": int(round(n.performed_time_s * sr)),
            "flam": n.flam, "deliberate_flam": n.deliberate_flam, "grace": n.grace, "ghost": n.ghost,
            "layer": layer, "alternate": alt, "level_db": velocity_gain_db(n.velocity),
        })
    channels = []
    for mic in plan.mics.mics:
        g = norm_db[mic.name]
        drums = {d: {"gain_db": [x + g for x in f.gain_db], "delay_samples": list(f.delay_samples),
                     "delay_ms": [s * 1000.0 / sr for s in f.delay_samples]}
                 for d, f in mic.feeds.items()}
        entry = {"stem": mic.name, "file": f"{mic.name}.wav", "role": mic.role, "n_channels": mic.n_channels,
                 "polarity": mic.polarity, "normalise_gain_db": g, "drums": drums}
        if mic.rt60_s is not None:
            entry["reverb"] = {"rt60_s": mic.rt60_s, "predelay_ms": mic.predelay_ms}
        channels.append(entry)
    truth = {
        "version": TRUTH_VERSION, "ideal": ideal, "seed": spec.seed, "sample_rate": sr, "n_samples": n_samples,
        "duration_s": n_samples / sr, "bpm": grid.bpm, "steps_per_beat": int(grid.steps_per_beat),
        "beats_per_bar": BEATS_PER_BAR, "grid_offset_s": grid.offset_s, "swing_pct": grid.swing_pct,
        "style": spec.style, "spread_ms": spec.spread_ms, "limb_ms": spec.limb_ms, "kit": kit.name,
        "n_channels": plan.mics.n_channels, "spec": asdict(spec), "hits": hits, "channels": channels,
    }
    if isinstance(grid, MapGrid) and plan.timeline is not None:
        truth.update(_musical_time(grid, plan.timeline))
    return truth


def _musical_time(grid: MapGrid, timeline: Timeline) -> dict:
    """Truth keys of a performance with musical time; ``bpm`` becomes the median tempo, ``grid_offset_s`` bar 1."""
    tm = grid.tempo_map
    return {
        "beats_per_bar": tm.meters[0].numerator,
        "grid_resolution": grid_resolution(timeline.steps_per_beat),
        "tempo_curve": timeline.curve, "feel": timeline.feel, "count_in_bars": timeline.count_in_bars,
        "bpm_start": timeline.bpm, "bpm_end": float(timeline.bpm_at(float(tm.position_at(grid.span_s[1])))),
        "meter": [m.label for m in tm.meters],
        "tempo_map": {"positions_q": [float(q) for q in tm.positions_q], "times_s": [float(t) for t in tm.times_s],
                      "meters": [[m.position_q, m.numerator, m.denominator] for m in tm.meters]},
    }


# ----------------------------------------------------------------------------- files

FORMATS = {"WAV": ".wav", "FLAC": ".flac"}
_SUBTYPES = {"WAV": ("PCM_16", "PCM_24", "PCM_32", "FLOAT"), "FLAC": ("PCM_16", "PCM_24")}


def check_format(fmt: str, subtype: str) -> str:
    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise ParameterError(f"format {fmt!r}: use wav or flac")
    if subtype not in _SUBTYPES[fmt]:
        raise ParameterError(f"{fmt} cannot hold {subtype}: use one of {', '.join(_SUBTYPES[fmt])}")
    return fmt


def write_session(folder: Path | str, rendered: RenderedSession, *, fmt: str = "WAV",
                  subtype: str = "PCM_24") -> list[Path]:
    """Write each stem as ``<stem>.<ext>`` and ``truth.json`` into ``folder`` (created if needed).

    Stems are written all-or-nothing; the truth last, so a folder with a
    ``truth.json`` is a complete session.
    """
    fmt = check_format(fmt, subtype)
    folder = Path(folder)
    prepare_output_dir(folder, [], force=True)
    truth = copy.deepcopy(dict(rendered.truth))
    for channel in truth["channels"]:
        channel["file"] = channel["stem"] + FORMATS[fmt]
    jobs = [(folder / (name + FORMATS[fmt]), audio, rendered.sample_rate, fmt, subtype)
            for name, audio in rendered.stems.items()]
    paths = write_files(jobs)
    midi_path = folder / TEMPO_MAP_FILE
    write_bytes_atomic(midi_path, tempo_map_midi_bytes(truth_tempo_map(truth), end_s=truth["duration_s"]))
    truth_path = folder / "truth.json"
    write_text_atomic(truth_path, json.dumps(truth, indent=1) + "\n")
    return paths + [midi_path, truth_path]
