"""The options of ``analyse`` and ``align``: frozen, validated once, when they are made.

Every bound lives here, with the message the command line shows: the CLI
builds these and lets their ParameterError speak. A new option is one field
with a default and, if it has bounds, one row in ``_RANGES``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Union

from ..errors import ParameterError

ENGINES = ("auto", "neural", "classic")
DEVICES = ("auto", "cpu", "cuda")
FLAM_MODES = ("keep", "fix", "fix-all")

# field -> (flag the user typed, lowest, highest): checked in __post_init__, inclusive
_RANGES = {
    "strength_pct": ("--strength", 0.0, 100.0),
    "exclude_within_ms": ("--exclude-within", 0.0, 1000.0),
    "pad_ms": ("--pad-ms", 0.0, 50.0),
    "xfade_ms": ("--xfade-ms", 0.1, 50.0),
}

RolesArg = Union[Mapping[str, str], tuple]


def _number(flag: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{flag} must be a number, got {value!r}") from None
    return float(value)


def _choice(flag: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = str(value).lower()
    if text not in allowed:
        raise ParameterError(f"{flag} {value!r}: use one of {', '.join(allowed)}")
    return text


@dataclass(frozen=True)
class AnalyseOptions:
    """What ``beatfix report`` takes: tempo, grid, engine. All times in seconds unless named."""

    bpm: float | None = None  # None: estimated (madmom), and followed where the drummer's tempo moves
    grid: str = "1/16"  # 1/4 ... 1/32, triplets 1/8T, 1/16T, or "auto" (the feel measured)
    swing_pct: float | None = 50.0  # None: the swing measured ("--swing auto")
    grid_offset_s: float | None = None  # time of any grid slot (bar 1 of the DAW); None: fitted
    flam_threshold_ms: float = 4.0
    engine: str = "auto"
    device: str = "auto"
    model_dir: Path | None = None  # None: the shipped beatfix-hit-v1
    roles: RolesArg = ()  # FILE=ROLE overrides, as a mapping or (file, role) pairs
    tempo_map: Path | None = None  # a Standard MIDI File or a CSV of beat times: the grid follows it
    click: Path | None = None  # a recorded click track (a stem or another file): the grid follows it
    follow: bool = True  # without bpm or map: follow the drummer's tempo where it moves

    def __post_init__(self) -> None:
        self._check()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalising in __post_init__ of a frozen dataclass

    def _check(self) -> None:
        from ..grid import check_bpm, check_swing, parse_grid
        from ..roles import parse_role_overrides

        if not isinstance(self.grid, str):
            raise ParameterError(f"--grid {self.grid!r}: use 1/4, 1/8, 1/16, 1/32, a triplet such as 1/8T, or auto")
        if self.grid.strip().lower() == "auto":
            self._set("grid", "auto")
        else:
            parse_grid(self.grid)
        if isinstance(self.swing_pct, str) and self.swing_pct.strip().lower() == "auto":
            self._set("swing_pct", None)
        if self.swing_pct is not None:
            self._set("swing_pct", check_swing(_number("--swing", self.swing_pct)))
        for name in ("tempo_map", "click"):
            if getattr(self, name) is not None:
                self._set(name, Path(getattr(self, name)))
        given = [flag for flag, value in (("--bpm", self.bpm), ("--tempo-map", self.tempo_map),
                                          ("--click", self.click)) if value is not None]
        if len(given) > 1:
            raise ParameterError(f"{' and '.join(given)} each set the tempo: give one of them")
        if self.grid_offset_s is not None and (self.tempo_map is not None or self.click is not None):
            raise ParameterError("--grid-offset pins a fixed tempo's grid: a tempo map or a click places bar 1 itself")
        self._set("follow", bool(self.follow))
        if self.bpm is not None:
            self._set("bpm", check_bpm(_number("--bpm", self.bpm)))
        if self.grid_offset_s is not None:
            offset = _number("--grid-offset", self.grid_offset_s)
            if not math.isfinite(offset):
                raise ParameterError(f"--grid-offset {offset:g}: use a finite time in seconds")
            self._set("grid_offset_s", offset)
        threshold = _number("--flam-threshold-ms", self.flam_threshold_ms)
        if not math.isfinite(threshold) or threshold < 0:
            raise ParameterError(f"--flam-threshold-ms {threshold:g}: use 0 or more")
        self._set("flam_threshold_ms", threshold)
        self._set("engine", _choice("--engine", self.engine, ENGINES))
        self._set("device", _choice("--device", self.device, DEVICES))
        if self.model_dir is not None:
            self._set("model_dir", Path(self.model_dir))
        if self.tempo_map is not None:
            self._set("tempo_map", Path(self.tempo_map))
        pairs = self.roles.items() if isinstance(self.roles, Mapping) else self.roles
        specs = [f"{k}={v}" for k, v in pairs]
        self._set("roles", tuple(sorted(parse_role_overrides(specs).items())))

    def role_map(self) -> dict[str, str]:
        return dict(self.roles)

    def to_dict(self) -> dict:
        """JSON-ready, as recorded in edits.json (every option, given or default)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif f.name == "roles":
                value = dict(value)
            out[f.name] = value
        return out


@dataclass(frozen=True)
class AlignOptions(AnalyseOptions):
    """What ``beatfix align`` takes: the analysis's options and the edit's."""

    strength_pct: float = 100.0
    exclude_within_ms: float = 0.0
    pad_ms: float = 3.0
    xfade_ms: float = 4.0
    flams: str = "keep"  # keep | fix | fix-all
    dry_run: bool = False  # plan and report, write nothing
    force: bool = False  # write into a non-empty output folder
    daw: tuple[str, ...] = ()  # DAW sessions to write beside the stems: "rpp", "aaf"
    # Sections (beatfix.sections): spans as "12.5-20" (s), "bar 9-12" (both included) or "9|1-13|1".
    edit_range: str | None = None  # --range: edit only this span, the rest as played
    locks: tuple[str, ...] = ()  # --lock, repeatable: spans played as recorded
    sections: Any = ()  # --sections: Section objects, or a .toml/.csv file's path (read when made)
    plot_path: Path | None = None  # --plot: before/after plot (.png, .pdf, .svg), written on a dry run too

    def _check(self) -> None:
        from ..plot import plot_format
        from ..sections import Section, parse_span
        from ..sections_file import load_sections

        super()._check()
        if isinstance(self.daw, str):
            from ..daw.session import parse_daw_kinds

            self._set("daw", tuple(parse_daw_kinds(self.daw)))
        self._set("daw", tuple(self.daw))
        for name, (flag, low, high) in _RANGES.items():
            value = _number(flag, getattr(self, name))
            if not math.isfinite(value) or not low <= value <= high:
                raise ParameterError(f"{flag} {value:g} is out of range: use {low:g} to {high:g}")
            self._set(name, value)
        self._set("flams", _choice("--flams", self.flams, FLAM_MODES))
        self._set("dry_run", bool(self.dry_run))
        self._set("force", bool(self.force))
        if self.edit_range is not None:
            self._set("edit_range", parse_span(self.edit_range, flag="--range").text)
        locks = (self.locks,) if isinstance(self.locks, str) else tuple(self.locks or ())
        self._set("locks", tuple(parse_span(x, flag="--lock").text for x in locks))
        sections = self.sections
        if isinstance(sections, (str, Path)):
            sections = load_sections(sections)
        sections = tuple(s if isinstance(s, Section) else Section(**s) for s in (sections or ()))
        self._set("sections", sections)
        if self.has_sections and self.flams != "keep":
            raise ParameterError("--range, --lock and --sections work with --flams keep only")
        if self.plot_path is not None:
            self._set("plot_path", Path(self.plot_path))
            plot_format(self.plot_path)

    @property
    def has_sections(self) -> bool:
        """Whether a range, a lock or a sections file changes the edit anywhere."""
        return self.edit_range is not None or bool(self.locks) or bool(self.sections)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["locks"] = list(self.locks)
        out["sections"] = [s.to_dict() for s in self.sections]
        return out

    def analyse_options(self) -> AnalyseOptions:
        names = {f.name for f in fields(AnalyseOptions)}
        return AnalyseOptions(**{k: getattr(self, k) for k in names})
