"""Sections: parts of a session edited their own way (``--range``, ``--lock``, a sections file).

A span is written one of three ways, always half-open ``[A, B)``:

* seconds: ``12.5-20`` (an ``s`` after a number is allowed: ``12.5s-20s``);
* whole bars, both included: ``bar 9-12`` (or ``bars 9-12``) is bar 9's start to bar 13's start;
* positions, the end excluded: ``9|1-13|1`` (``bar|beat`` or ``bar|beat|tick``, 960 ticks a beat).

Bars are the analysis grid's (:attr:`beatfix.grid.Grid.tempo_map`: bar 1
at the grid offset, 4/4 for a fixed tempo; the tempo map's own bars and
meters when the grid follows one). A hit belongs to a span when its slot on
the analysis grid does, so a downbeat played a little early still belongs
to its bar.

:func:`resolve` turns the specs into :class:`SectionRules`, one rule per hit
(its target, strength, exclude-within, whether it is locked), which the
planner applies (:func:`beatfix.plan.plan_edits`). Pure: no file access
(reading a sections file is :mod:`beatfix.sections_file`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import ParameterError
from .grid import Grid, MapGrid, check_swing, parse_grid

if TYPE_CHECKING:
    from .tempomap import TempoMap
    from .types import Analysis

TICKS_PER_BEAT = 960
END_TOLERANCE_S = 0.001  # a span may end this far past the audio (rounding of a bar line at the end)

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_SECONDS_RE = re.compile(rf"^{_NUM}\s*s?\s*-\s*{_NUM}\s*s?$")
_BARS_RE = re.compile(r"^bars?\s*(\d+)\s*-\s*(\d+)$")
_POS = r"(\d+)\|(\d+)(?:\|(\d+))?"
_POSITIONS_RE = re.compile(rf"^{_POS}\s*-\s*{_POS}$")
SYNTAX = "use seconds (12.5-20), whole bars (bar 9-12, both included) or positions (9|1-13|1, end excluded)"


@dataclass(frozen=True)
class Span:
    """A span as the user wrote it, checked for syntax; times come from :meth:`seconds`."""

    text: str
    kind: str  # "seconds" | "bars" | "positions"
    start: tuple[float, ...]  # seconds: (s,); bars: (bar,); positions: (bar, beat, tick)
    end: tuple[float, ...]  # seconds: (s,); bars: (last bar, included); positions: (bar, beat, tick)

    def __str__(self) -> str:
        return self.text

    def seconds(self, tempo_map: "TempoMap", duration_s: float, *, flag: str = "span") -> tuple[float, float]:
        """``(start_s, end_s)`` on the analysis grid's bars; a span past the audio's end is refused."""
        if self.kind == "seconds":
            start_s, end_s = self.start[0], self.end[0]
        elif self.kind == "bars":
            first, last = int(self.start[0]), int(self.end[0])
            start_s = _bar_time(tempo_map, first, 1, 0)
            last_start_s = _bar_time(tempo_map, last, 1, 0)
            if last_start_s >= duration_s:
                raise ParameterError(f"{flag} {self.text!r}: bar {last} starts at {last_start_s:.2f} s, "
                                     f"after the audio's end ({duration_s:.2f} s)")
            end_s = min(_bar_time(tempo_map, last + 1, 1, 0), duration_s)
        else:
            start_s = _bar_time(tempo_map, *map(int, self.start))
            end_s = _bar_time(tempo_map, *map(int, self.end))
            if end_s <= start_s:
                raise ParameterError(f"{flag} {self.text!r}: the end comes before the start")
        if start_s >= duration_s:
            raise ParameterError(f"{flag} {self.text!r} starts at {start_s:.2f} s, after the audio's end "
                                 f"({duration_s:.2f} s)")
        if end_s > duration_s + END_TOLERANCE_S:
            raise ParameterError(f"{flag} {self.text!r} ends at {end_s:.2f} s, past the audio's end "
                                 f"({duration_s:.2f} s)")
        return float(start_s), float(min(end_s, duration_s))


def parse_span(text: Any, *, flag: str = "span") -> Span:
    """A span's syntax (see the module docstring); B before A is refused here, bars past the end later."""
    if isinstance(text, Span):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(f"{flag} {text!r}: {SYNTAX}")
    clean = " ".join(text.strip().lower().split())
    if m := _SECONDS_RE.match(clean):
        a, b = float(m.group(1)), float(m.group(2))
        if not b > a:
            raise ParameterError(f"{flag} {text!r}: the end ({b:g} s) must come after the start ({a:g} s)")
        return Span(text.strip(), "seconds", (a,), (b,))
    if m := _BARS_RE.match(clean):
        a, b = int(m.group(1)), int(m.group(2))
        if a < 1:
            raise ParameterError(f"{flag} {text!r}: bars are counted from 1")
        if b < a:
            raise ParameterError(f"{flag} {text!r}: the last bar ({b}) comes before the first ({a})")
        return Span(text.strip(), "bars", (a,), (b,))
    if m := _POSITIONS_RE.match(clean):
        start = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        end = (int(m.group(4)), int(m.group(5)), int(m.group(6) or 0))
        for bar, beat, tick in (start, end):
            if bar < 1 or beat < 1 or tick >= TICKS_PER_BEAT:
                raise ParameterError(f"{flag} {text!r}: bars and beats are counted from 1, ticks 0-959")
        if end <= start:
            raise ParameterError(f"{flag} {text!r}: the end ({'|'.join(map(str, end[:2]))}) must come after "
                                 f"the start ({'|'.join(map(str, start[:2]))})")
        return Span(text.strip(), "positions", start, end)
    raise ParameterError(f"{flag} {text!r}: {SYNTAX}")


def _bar_time(tempo_map: "TempoMap", bar: int, beat: int, tick: int) -> float:
    """Time in seconds of ``bar|beat|tick`` (bar >= 1) on the tempo map."""
    q_end = 4.0 * bar * max(m.bar_q for m in tempo_map.meters) / 4.0 + 8.0
    starts = tempo_map.bar_starts_q(0.0, q_end)
    starts = starts[starts >= -1e-9]
    start_q = float(starts[bar - 1])
    meter = tempo_map.meter_at(start_q)
    if beat - 1 >= meter.bar_q / meter.beat_q - 1e-9:
        raise ParameterError(f"{bar}|{beat}: bar {bar} ({meter.label}) has "
                             f"{int(round(meter.bar_q / meter.beat_q))} beats")
    q = start_q + (beat - 1 + tick / TICKS_PER_BEAT) * meter.beat_q
    return float(tempo_map.time_at(q))


@dataclass(frozen=True)
class Section:
    """One row of a sections file: a span and what differs there (None: the session's setting)."""

    span: Span  # or its text, parsed when made
    name: str = ""
    grid: str | None = None  # 1/16, 1/8T ...
    swing_pct: float | None = None
    strength_pct: float | None = None
    exclude_within_ms: float | None = None
    lock: bool = False

    def __post_init__(self) -> None:
        where = f"section {self.name or str(self.span)!r}"
        object.__setattr__(self, "span", parse_span(self.span, flag=where))
        if self.grid is not None:
            if not isinstance(self.grid, str):
                raise ParameterError(f"{where}: grid {self.grid!r}: use 1/4, 1/8, 1/16, 1/32 or a triplet such as 1/8T")
            parse_grid(self.grid)
        if self.swing_pct is not None:
            object.__setattr__(self, "swing_pct", check_swing(_number(where, "swing", self.swing_pct)))
        for key, label, high in (("strength_pct", "strength", 100.0), ("exclude_within_ms", "exclude_within", 1000.0)):
            value = getattr(self, key)
            if value is not None:
                value = _number(where, label, value)
                if not 0.0 <= value <= high:
                    raise ParameterError(f"{where}: {label} {value:g} is out of range: use 0 to {high:g}")
                object.__setattr__(self, key, value)
        if not isinstance(self.lock, bool):
            raise ParameterError(f"{where}: lock must be true or false, got {self.lock!r}")

    def to_dict(self) -> dict:
        return {"span": self.span.text, "name": self.name, "grid": self.grid, "swing_pct": self.swing_pct,
                "strength_pct": self.strength_pct, "exclude_within_ms": self.exclude_within_ms, "lock": self.lock}


def _number(where: str, label: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ParameterError(f"{where}: {label} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {label} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ParameterError(f"{where}: {label} must be a finite number")
    return out


@dataclass(frozen=True)
class SectionRules:
    """Per hit of an analysis: where it goes and how; and the spans played as recorded.

    ``lock_spans_samples`` are the locked spans ``[a, b)`` in samples, sorted
    and disjoint; ``lock_of[i]`` is the index of hit ``i``'s span, or -1.
    """

    target_s: tuple[float, ...]  # the slot each hit moves toward (its section's grid)
    strength: tuple[float, ...]  # 0 to 1
    exclude_within_ms: tuple[float, ...]
    lock_of: tuple[int, ...]
    section_of: tuple[str, ...]  # the section's name ("" outside any)
    lock_spans_samples: tuple[tuple[int, int], ...]
    sections: tuple[dict, ...] = ()  # every span as resolved, for edits.json

    def locked(self, i: int) -> bool:
        return self.lock_of[i] >= 0


def _section_grid(grid: Grid | MapGrid, steps_per_beat: float, swing_pct: float) -> Grid | MapGrid:
    """The analysis grid's tempo and phase with another resolution or swing."""
    if isinstance(grid, MapGrid):
        return MapGrid(grid.tempo_map, steps_per_beat, swing_pct, grid.span_s)
    return Grid(grid.bpm, grid.offset_s, steps_per_beat, swing_pct)


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def resolve(analysis: "Analysis", *, sections: Sequence[Section] = (), locks: Sequence[Span | str] = (),
            edit_range: Span | str | None = None, strength_pct: float = 100.0,
            exclude_within_ms: float = 0.0) -> SectionRules:
    """Each hit's rule from the sections, the locks and the range (outside it is locked).

    Sections may not overlap each other (one line names the two); locks may
    overlap anything and win. Raises ParameterError for spans past the end.
    """
    from .tempo import assign_slots

    grid = analysis.grid
    tempo_map = grid.tempo_map
    duration_s = analysis.duration_s
    sr = analysis.sample_rate
    resolved = []
    for sec in sections:
        start_s, end_s = sec.span.seconds(tempo_map, duration_s, flag=f"section {sec.name or sec.span.text!r}")
        resolved.append((start_s, end_s, sec))
    resolved.sort(key=lambda r: r[0])
    for (_a0, b0, s0), (a1, _b1, s1) in zip(resolved, resolved[1:]):
        if a1 < b0 - 1e-9:
            raise ParameterError(f"sections {s0.name or s0.span.text!r} and {s1.name or s1.span.text!r} overlap "
                                 f"({a1:.2f}-{b0:.2f} s)")
    lock_spans = [parse_span(x, flag="--lock").seconds(tempo_map, duration_s, flag="--lock") for x in locks]
    lock_spans += [(a, b) for a, b, sec in resolved if sec.lock]
    range_s = None
    if edit_range is not None:
        range_s = parse_span(edit_range, flag="--range").seconds(tempo_map, duration_s, flag="--range")
        # Outside the range is played as recorded; the hits before 0 s (none) and after the end too.
        lock_spans += [(-math.inf, range_s[0]), (range_s[1], math.inf)]
    lock_spans = [(a, b) for a, b in _merge(lock_spans) if b > a]

    n = len(analysis.hits)
    slot_t = np.array([float(grid.slot_time(h.slot)) for h in analysis.hits]) if n else np.zeros(0)
    target = slot_t.copy()
    strength = np.full(n, float(strength_pct) / 100.0)
    exclude = np.full(n, float(exclude_within_ms))
    names = [""] * n
    for start_s, end_s, sec in resolved:
        inside = np.flatnonzero((slot_t >= start_s - 1e-9) & (slot_t < end_s - 1e-9))
        for i in inside:
            names[i] = sec.name or sec.span.text
        if sec.strength_pct is not None:
            strength[inside] = sec.strength_pct / 100.0
        if sec.exclude_within_ms is not None:
            exclude[inside] = sec.exclude_within_ms
        if (sec.grid is not None or sec.swing_pct is not None) and inside.size:
            steps = parse_grid(sec.grid) if sec.grid is not None else grid.steps_per_beat
            swing = sec.swing_pct if sec.swing_pct is not None else grid.swing_pct
            own = _section_grid(grid, steps, swing)
            times = np.array([analysis.hits[i].time_s for i in inside])
            target[inside] = np.asarray(own.slot_time(assign_slots(times, own)), dtype=np.float64).reshape(-1)
    lock_of = np.full(n, -1, dtype=int)
    for k, (a, b) in enumerate(lock_spans):
        lock_of[(slot_t >= a - 1e-9) & (slot_t < b - 1e-9)] = k

    def to_sample(t: float, default: int) -> int:
        return default if not math.isfinite(t) else int(math.floor(t * sr + 0.5))

    n_samples = int(round(duration_s * sr))
    doc = [{"kind": "section", "name": sec.name, "span": sec.span.text, "start_s": round(a, 6),
            "end_s": round(b, 6), "start": tempo_map.label(float(tempo_map.position_at(a))),
            **{k: v for k, v in sec.to_dict().items() if k not in ("span", "name")}} for a, b, sec in resolved]
    for a, b in lock_spans:
        a_s, b_s = max(a, 0.0), min(b, duration_s)
        doc.append({"kind": "locked", "start_s": round(a_s, 6), "end_s": round(b_s, 6),
                    "start": tempo_map.label(float(tempo_map.position_at(a_s))),
                    "end": tempo_map.label(float(tempo_map.position_at(b_s)))})
    if range_s is not None:
        doc.append({"kind": "range", "span": str(edit_range), "start_s": round(range_s[0], 6),
                    "end_s": round(range_s[1], 6)})
    return SectionRules(
        target_s=tuple(float(t) for t in target),
        strength=tuple(float(s) for s in strength),
        exclude_within_ms=tuple(float(e) for e in exclude),
        lock_of=tuple(int(k) for k in lock_of),
        section_of=tuple(names),
        lock_spans_samples=tuple((to_sample(a, 0), to_sample(b, n_samples)) for a, b in lock_spans),
        sections=tuple(doc),
    )
