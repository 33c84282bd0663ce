"""Tempo maps and hits in and out: Standard MIDI Files (every DAW's conductor-track export) and CSVs of beats.

The file side of :mod:`beatfix.tempomap`. A DAW's SMF puts bar 1 at the
file's time 0. beatfix writes a map whose bar 1 comes later than the start of
the audio (a drummer who starts at 1.2 s) with a pickup bar before it and a
``bar 1`` marker where the song's bar 1 is; reading such a file numbers the
bars from the marker.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError, ParameterError
from .tempomap import Meter, TempoMap

PPQ = 960
BAR1_MARKER = "bar 1"
DEFAULT_TEMPO_US = 500_000  # SMF default: 120 BPM
GM_DRUM_NOTES = {"kick": 36, "snare": 38, "hat": 42, "ride": 51, "crash": 49, "perc": 39}
GM_TOM_NOTES = (48, 45, 43, 41)  # high, mid, floor, low floor
DRUM_CHANNEL = 9  # MIDI channel 10


def _mido():
    try:
        import mido
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise InputError("reading MIDI files needs the mido package: pip install mido") from exc
    return mido


def read_tempo_map(path: Path) -> TempoMap:
    """A tempo map from a Standard MIDI File (tempo and time-signature meta events) or a CSV of beats."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--tempo-map {path}: no such file")
    head = path.read_bytes()[:4]
    if head == b"MThd":
        return _read_smf(path)
    if path.suffix.lower() in (".mid", ".midi", ".smf"):
        raise InputError(f"--tempo-map {path}: not a Standard MIDI File (no MThd header)")
    return _read_csv(path)


def _read_smf(path: Path) -> TempoMap:
    mido = _mido()
    try:
        mid = mido.MidiFile(str(path))
    except Exception as exc:  # mido raises plain IOError/ValueError/EOFError on broken files
        raise InputError(f"--tempo-map {path}: unreadable MIDI file ({exc})") from None
    if mid.type == 2:
        raise InputError(f"--tempo-map {path}: MIDI type 2 (independent sequences) is not a tempo map")
    ppq = int(mid.ticks_per_beat)
    if ppq <= 0:
        raise InputError(f"--tempo-map {path}: SMPTE time division is not supported; export with PPQ ticks")
    tempos: dict[int, int] = {}
    meters: dict[int, tuple[int, int]] = {}
    bar1_tick = None
    last_tick = 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            last_tick = max(last_tick, tick)
            if msg.type == "set_tempo":
                tempos[tick] = int(msg.tempo)
            elif msg.type == "time_signature":
                meters[tick] = (int(msg.numerator), int(msg.denominator))
            elif msg.type == "marker" and msg.text.strip().lower() == BAR1_MARKER and bar1_tick is None:
                bar1_tick = tick
    if 0 not in tempos:  # SMF: 120 BPM until the first tempo event
        tempos[0] = DEFAULT_TEMPO_US
    ticks = sorted(tempos)
    end_tick = max(ticks[-1] + ppq, last_tick)
    anchor_ticks = [*ticks, end_tick]
    times = [0.0]
    for a, b in zip(anchor_ticks, anchor_ticks[1:]):
        times.append(times[-1] + (b - a) / ppq * tempos[a] / 1e6)
    origin = bar1_tick or 0
    positions = (np.array(anchor_ticks, dtype=float) - origin) / ppq
    meter_items = sorted(meters.items()) or [(0, (4, 4))]
    # the song's meters start at bar 1; one before it belongs to the pickup bar
    in_song = [(t, m) for t, m in meter_items if t >= origin]
    before = [m for t, m in meter_items if t < origin]
    if not in_song or in_song[0][0] != origin:
        in_song.insert(0, (origin, before[-1] if before else meter_items[0][1]))
    try:
        meter_list = tuple(Meter((t - origin) / ppq, n, d) for t, (n, d) in in_song)
        return TempoMap(positions, np.array(times), meter_list)
    except ParameterError as exc:
        raise InputError(f"--tempo-map {path}: {exc}") from None


def _read_csv(path: Path) -> TempoMap:
    """Rows ``time_s[,meter]``: one row per beat of the meter (a quarter in 4/4, a dotted quarter in
    6/8, an eighth in 7/8); a meter such as ``3/4`` on a row starts a bar in that meter there.
    A header row and ``#`` comments are allowed; bar 1 starts on the first row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--tempo-map {path}: unreadable ({exc})") from None
    times: list[float] = []
    meters: list[tuple[int, int, int]] = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not cells[0] or cells[0].startswith("#"):
            continue
        try:
            t = float(cells[0])
        except ValueError:
            if not times:  # a header
                continue
            raise InputError(f"--tempo-map {path}: line {n}: {cells[0]!r} is not a time in seconds") from None
        if not math.isfinite(t):
            raise InputError(f"--tempo-map {path}: line {n}: time must be finite")
        if len(cells) > 1 and cells[1]:
            try:
                num, den = (int(x) for x in cells[1].split("/"))
            except ValueError:
                raise InputError(f"--tempo-map {path}: line {n}: meter {cells[1]!r}: use e.g. 4/4 or 7/8") from None
            meters.append((len(times), num, den))
        times.append(t)
    if len(times) < 2:
        raise InputError(f"--tempo-map {path}: needs at least two beat times")
    if not meters or meters[0][0] != 0:
        meters.insert(0, (0, 4, 4))
    try:
        return TempoMap.from_beats(times, meters=meters)
    except ParameterError as exc:
        raise InputError(f"--tempo-map {path}: {exc}") from None


def _tempo_track(tempo_map: TempoMap, mido, *, end_s: float | None = None):
    """Meta events of a tempo map as a track whose tick 0 is the audio's time 0, and the tick of bar 1.

    When bar 1 comes after the audio starts, the ticks before it are a pickup
    in the first meter and a ``bar 1`` marker shows where the song starts.
    Tempi are integer microseconds per quarter: each is rounded with the error
    carried into the next, so beat times stay within a microsecond of the map's.
    """
    q0 = float(tempo_map.position_at(0.0))  # the audio's start, in the song's quarters
    if q0 > 1e-9:
        raise ParameterError("the tempo map's bar 1 is before the audio starts: it cannot be written with "
                             "bar 1 at or after the file's time 0")
    bar1_tick = int(round(-q0 * PPQ))
    end_s = float(tempo_map.times_s[-1]) if end_s is None else max(end_s, float(tempo_map.times_s[-1]))
    q_end = float(tempo_map.position_at(end_s))
    inside = tempo_map.positions_q[(tempo_map.positions_q > q0 + 1.0 / PPQ) & (tempo_map.positions_q < q_end)]
    last_q = math.ceil((q_end + 1.0) * PPQ) / PPQ  # on a tick, so the last segment's tempo is exact
    anchors_q = np.concatenate([[q0], inside, [last_q]])
    anchors_t = tempo_map.time_at(anchors_q)
    ticks = [0, *(bar1_tick + int(round(q * PPQ)) for q in anchors_q[1:])]
    events: list[tuple[int, object]] = []
    acc_s = 0.0
    for i in range(len(ticks) - 1):
        dq = (ticks[i + 1] - ticks[i]) / PPQ
        if dq <= 0:
            continue
        us = int(round((float(anchors_t[i + 1]) - acc_s) / dq * 1e6))
        us = min(max(us, 1), 0xFFFFFF)
        acc_s += us * dq / 1e6
        events.append((ticks[i], mido.MetaMessage("set_tempo", tempo=us)))
    first = tempo_map.meters[0]
    if bar1_tick > 0:
        events.append((0, mido.MetaMessage("time_signature", numerator=first.numerator,
                                           denominator=first.denominator)))
    for m in tempo_map.meters:
        events.append((bar1_tick + int(round(m.position_q * PPQ)),
                       mido.MetaMessage("time_signature", numerator=m.numerator, denominator=m.denominator)))
    events.append((bar1_tick, mido.MetaMessage("marker", text=BAR1_MARKER)))
    return events, bar1_tick


def _track(events: list[tuple[int, object]], mido, name: str):
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    now = 0
    for tick, msg in sorted(events, key=lambda e: (e[0], getattr(e[1], "type", "") != "note_off")):
        track.append(msg.copy(time=max(0, tick - now)))  # type: ignore[attr-defined]  # mido messages
        now = max(now, tick)
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def tempo_map_midi_bytes(tempo_map: TempoMap, *, end_s: float | None = None) -> bytes:
    """The map as a type-1 SMF (tempo, meters and a ``bar 1`` marker on the conductor track)."""
    mido = _mido()
    events, _ = _tempo_track(tempo_map, mido, end_s=end_s)
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    mid.tracks.append(_track(events, mido, "tempo map"))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def gm_note(role: str, stem_name: str, tom_index: Mapping[str, int]) -> int:
    if role == "tom":
        return GM_TOM_NOTES[min(tom_index.get(stem_name, 0), len(GM_TOM_NOTES) - 1)]
    return GM_DRUM_NOTES.get(role, 39)


def hits_midi_bytes(tempo_map: TempoMap, tracks: Mapping[str, Sequence[tuple[float, int, int]]], *,
                    end_s: float | None = None, note_s: float = 0.05) -> bytes:
    """An SMF with the tempo map and one track per entry of ``tracks``: ``(time_s, note, velocity)``
    notes on the GM drum channel (10)."""
    mido = _mido()
    meta, _ = _tempo_track(tempo_map, mido, end_s=end_s)
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    mid.tracks.append(_track(meta, mido, "tempo map"))
    _, bar1_tick = _tempo_track(tempo_map, mido, end_s=end_s)
    offset_q = bar1_tick / PPQ
    for name, notes in tracks.items():
        events: list[tuple[int, object]] = []
        for time_s, note, velocity in notes:
            on = int(round((float(tempo_map.position_at(time_s)) + offset_q) * PPQ))
            off = int(round((float(tempo_map.position_at(time_s + note_s)) + offset_q) * PPQ))
            vel = int(min(127, max(1, velocity)))
            events.append((max(on, 0), mido.Message("note_on", channel=DRUM_CHANNEL, note=int(note), velocity=vel)))
            events.append((max(off, on + 1, 1), mido.Message("note_off", channel=DRUM_CHANNEL, note=int(note),
                                                             velocity=0)))
        mid.tracks.append(_track(events, mido, name))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def velocity_from_level(level_db: float, top_db: float) -> int:
    """MIDI velocity of a hit: 127 at the stem's loud hits, 3 per dB below (40 dB down is 7)."""
    return int(min(127, max(1, round(127 + 3.0 * (level_db - top_db)))))
