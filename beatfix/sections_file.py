"""Reading a sections file (``--sections FILE``): TOML or CSV, one section per entry or row.

TOML::

    [[section]]
    name = "verse"
    span = "bar 1-8"        # seconds 12.5-20, bars 9-12 (both included), positions 9|1-13|1
    grid = "1/16"
    strength = 100

    [[section]]
    name = "fill"
    span = "bar 9-9"
    lock = true

CSV: a header row naming the columns (``span`` required; ``name``, ``grid``,
``swing``, ``strength``, ``exclude_within``, ``lock``), an empty cell meaning
the session's setting. Keys are the command line's flags without dashes.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

from .errors import InputError, ParameterError
from .sections import Section

KEYS = ("span", "name", "grid", "swing", "strength", "exclude_within", "lock")
_FIELD = {"swing": "swing_pct", "strength": "strength_pct", "exclude_within": "exclude_within_ms"}
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def _section(entry: dict[str, Any], where: str) -> Section:
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise ParameterError(f"{where}: unknown key {unknown[0]!r}: use {', '.join(KEYS)}")
    if "span" not in entry or entry["span"] in (None, ""):
        raise ParameterError(f"{where}: give its span, e.g. span = \"bar 9-12\"")
    kwargs = {_FIELD.get(k, k): v for k, v in entry.items() if v is not None}
    kwargs["span"] = str(kwargs["span"])
    kwargs["name"] = str(kwargs.get("name") or "")
    try:
        return Section(**kwargs)
    except ParameterError as exc:
        raise ParameterError(f"{where}: {exc}") from None


def _csv_value(key: str, text: str) -> Any:
    text = text.strip()
    if key == "lock":
        if text.lower() not in _TRUE | _FALSE:
            raise ParameterError(f"lock {text!r}: use true or false")
        return text.lower() in _TRUE
    return text or None


def parse_sections(text: str, *, name: str = "sections") -> tuple[Section, ...]:
    """Sections from the text of a TOML or CSV file (TOML when it has a ``[[section]]`` table)."""
    if "[[section]]" in text or "[[sections]]" in text:
        try:
            data = _toml().loads(text)
        except Exception as exc:  # tomllib.TOMLDecodeError: its message has the line and column
            raise ParameterError(f"{name}: not valid TOML ({exc})") from None
        unknown = sorted(set(data) - {"section", "sections"})
        if unknown:
            raise ParameterError(f"{name}: unknown table {unknown[0]!r}: use [[section]]")
        entries = list(data.get("section", [])) + list(data.get("sections", []))
        return tuple(_section(e, f"{name}: section {i + 1}") for i, e in enumerate(entries))
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ParameterError(f"{name}: no sections (TOML [[section]] tables, or CSV with a header row)")
    out = []
    for i, row in enumerate(rows):
        where = f"{name}: row {i + 2}"
        if None in row:
            raise ParameterError(f"{where}: more cells than the header has columns")
        try:
            entry = {k.strip().lower(): _csv_value(k.strip().lower(), v or "") for k, v in row.items() if k}
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None
        out.append(_section(entry, where))
    return tuple(out)


def load_sections(path: Path | str) -> tuple[Section, ...]:
    """Read and check a sections file; a missing or unreadable file is an InputError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such sections file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the sections file ({exc})") from None
    if path.suffix.lower() not in (".toml", ".csv"):
        raise ParameterError(f"{path}: a sections file is .toml or .csv")
    return parse_sections(text, name=path.name)
