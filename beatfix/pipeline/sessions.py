"""What a batch is made of: a folder of session folders, or a CSV/JSON list of sessions, each with
its own stems, roles, tempo or tempo map.

CSV, one row per session (``stems`` a folder, or files separated by ``;``;
``roles`` ``FILE=ROLE`` pairs separated by ``;``; empty cells keep the
command line's value)::

    session,stems,bpm,roles,tempo_map
    song1,song1/,120,,
    song2,song2/kick.wav;song2/oh.wav,,oh.wav=overhead,song2/map.mid

JSON: ``{"sessions": [{"session": "song1", "stems": "song1/", "bpm": 120,
"roles": {"oh.wav": "overhead"}, "tempo_map": "song1/map.mid"}, ...]}`` (or
the list alone). Relative paths are relative to the list's own folder.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import BeatfixError, InputError
from .options import AlignOptions

_FIELDS = ("session", "stems", "bpm", "roles", "tempo_map")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")  # a session's output folder name


@dataclass(frozen=True)
class BatchSession:
    """One session of a batch: its stems and options, or why it cannot run (``error``)."""

    name: str
    stems: tuple[Path, ...] = ()
    options: AlignOptions | None = None
    error: str | None = None

    def inputs(self) -> tuple[Path, ...]:
        """Every file the output depends on: the stems and the tempo map, if any."""
        extra = (self.options.tempo_map,) if self.options is not None and self.options.tempo_map else ()
        return self.stems + extra


def read_sessions(source: Path | str, options: AlignOptions) -> list[BatchSession]:
    """The sessions of ``--batch SOURCE``, sorted by name: a folder of folders, a ``.csv`` or a ``.json``."""
    from ..audio_io import find_session_files

    source = Path(source)
    if source.is_dir():
        folders = sorted(p for p in source.iterdir() if p.is_dir())
        if not folders:
            raise InputError(f"--batch {source}: no session subfolders")
        return [_session(f.name, find_session_files(f), options, f"{f}: no audio files") for f in folders]
    if not source.is_file():
        raise InputError(f"--batch {source}: no such folder or file")
    suffix = source.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(source)
    elif suffix == ".json":
        rows = _json_rows(source)
    else:
        raise InputError(f"--batch {source}: give a folder of session folders, a .csv or a .json list")
    if not rows:
        raise InputError(f"--batch {source}: lists no sessions")
    sessions = [_row_session(source, i, row, options) for i, row in enumerate(rows, 1)]
    names = [s.name for s in sessions]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"--batch {source}: session {twice[0]!r} is listed twice")
    return sorted(sessions, key=lambda s: s.name)


def _session(name: str, stems: list[Path], options: AlignOptions, empty: str) -> BatchSession:
    if not stems:
        return BatchSession(name, error=empty)
    return BatchSession(name, tuple(stems), options)


def _csv_rows(source: Path) -> list[dict[str, Any]]:
    try:
        with source.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            unknown = [h for h in header if h not in _FIELDS]
            if "session" not in header or "stems" not in header or unknown:
                raise InputError(f"--batch {source}: the header must name session and stems, and may name "
                                 f"bpm, roles, tempo_map" + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
            rows = []
            for row in reader:
                clean = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                rows.append({k: v for k, v in clean.items() if v != ""})
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"--batch {source}: cannot read it as CSV ({exc})") from None


def _json_rows(source: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--batch {source}: cannot read it as JSON ({exc})") from None
    rows = doc.get("sessions") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"--batch {source}: expected a list of sessions, or {{\"sessions\": [...]}}")
    for i, row in enumerate(rows, 1):
        unknown = sorted(set(row) - set(_FIELDS))
        if unknown:
            raise InputError(f"--batch {source}: session {i} has unknown field {unknown[0]!r} "
                             f"(use {', '.join(_FIELDS)})")
    return rows


def _row_session(source: Path, index: int, row: dict[str, Any], options: AlignOptions) -> BatchSession:
    from ..audio_io import find_session_files

    name = str(row.get("session", "")).strip()
    if not _NAME.match(name):
        raise InputError(f"--batch {source}: session {index} needs a name usable as a folder name, got {name!r}")
    stems_field = row.get("stems")
    if isinstance(stems_field, str):
        items = [s.strip() for s in stems_field.split(";") if s.strip()]
    elif isinstance(stems_field, list):
        items = [str(s) for s in stems_field]
    else:
        raise InputError(f"--batch {source}: session {name!r} lists no stems")
    base = source.parent
    paths = [_resolve(base, s) for s in items]
    if len(paths) == 1 and paths[0].is_dir():
        paths = find_session_files(paths[0])
    changes: dict[str, Any] = {}
    if row.get("bpm") not in (None, ""):
        changes["bpm"] = row["bpm"]
    if row.get("roles"):
        roles = row["roles"]
        if isinstance(roles, str):
            roles = dict(_pair(source, name, p) for p in roles.split(";") if p.strip())
        changes["roles"] = roles
    if row.get("tempo_map"):
        changes["tempo_map"] = _resolve(base, str(row["tempo_map"]))
    try:
        session_options = replace(options, **changes) if changes else options
    except BeatfixError as exc:  # a bad value fails its session only
        return BatchSession(name, error=f"{source} session {name}: {exc}")
    return _session(name, paths, session_options, f"{source} session {name}: no audio files")


def _resolve(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _pair(source: Path, name: str, spec: str) -> tuple[str, str]:
    file, sep, role = spec.partition("=")
    if not sep:
        raise InputError(f"--batch {source}: session {name!r} role {spec.strip()!r}: use FILE=ROLE")
    return file.strip(), role.strip()
