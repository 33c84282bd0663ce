"""Marked sections of benchmarks/RESULTS.md: each benchmark script owns one and leaves the rest alone.

Also the one JSON-ready rounding the scripts' raw results files share."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def update_section(path: Path, name: str, body: str) -> bool:
    """Replace section ``name`` of ``path`` with ``body`` (markers added), or append it. False if no file."""
    path = Path(path)
    if not path.exists():
        return False
    begin, end = markers(name)
    section = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    return True


def marked_sections(path: Path) -> list[str]:
    """Every marked section in ``path`` (markers included), in order: what a rewrite of the file must keep."""
    path = Path(path)
    if not path.exists():
        return []
    return [m.group(0) for m in re.finditer(r"<!-- (\w+):begin -->.*?<!-- \1:end -->", path.read_text(), re.S)]


def rounded(x, digits: int = 4):
    """JSON-ready copy with floats to ``digits`` decimals (non-finite -> None), so results files stay small."""
    if isinstance(x, dict):
        return {str(k): rounded(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [rounded(v, digits) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(x) else round(float(x), digits)
    if isinstance(x, np.integer):
        return int(x)
    return x
