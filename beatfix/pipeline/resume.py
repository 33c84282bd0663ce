"""Resumable batches: a session's output folder is complete when it holds a manifest that matches.

The manifest (``beatfix-manifest.json``) is written last, atomically, after
every output is in place, so a session interrupted at any point has none and
is done again. It records the inputs (name, size, sha256), the options and
beatfix's version, the outputs (name, size) and the session's result document,
so a skipped session reports what it reported when it ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from .options import AlignOptions

MANIFEST = "beatfix-manifest.json"
SCHEMA = "beatfix-manifest/1"
# Options that change where or whether outputs are written, not what they are.
_NOT_OUTPUT = ("force", "dry_run")


def option_facts(options: AlignOptions) -> dict:
    facts = options.to_dict()
    for name in _NOT_OUTPUT:
        facts.pop(name, None)
    return json.loads(json.dumps(facts))  # tuples -> lists, as the manifest reads back


def input_facts(paths: Sequence[Path]) -> list[dict]:
    from ..audio_io import file_facts

    return [file_facts(p) for p in paths]


def write_manifest(out_dir: Path, inputs: Sequence[Path], options: AlignOptions, outputs: Sequence[Path],
                   summary: Mapping[str, Any]) -> Path:
    """Record a finished session in ``out_dir``; call it only once every output is in place."""
    from .. import __version__
    from ..audio_io import write_text_atomic

    doc = {
        "schema": SCHEMA,
        "beatfix_version": __version__,
        "inputs": input_facts(inputs),
        "options": option_facts(options),
        "outputs": [{"file": Path(p).name, "size_bytes": Path(p).stat().st_size} for p in outputs],
        "summary": dict(summary),
    }
    path = Path(out_dir) / MANIFEST
    write_text_atomic(path, json.dumps(doc, indent=2))
    return path


def completed_summary(out_dir: Path, inputs: Sequence[Path], options: AlignOptions) -> dict | None:
    """The stored result of a session already done with these inputs and options, or None to do it.

    None when there is no manifest, it cannot be read, beatfix's version,
    an input's size or checksum, or an option differs, or an output listed is
    missing or has another size.
    """
    from .. import __version__

    path = Path(out_dir) / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or doc.get("beatfix_version") != __version__:
        return None
    if doc.get("options") != option_facts(options):
        return None
    for entry in doc.get("outputs", []):
        out = Path(out_dir) / str(entry.get("file", ""))
        if not out.is_file() or out.stat().st_size != entry.get("size_bytes"):
            return None
    recorded = doc.get("inputs")
    if not isinstance(recorded, list) or len(recorded) != len(inputs):
        return None
    # sizes first: a changed length is found without reading every file
    for entry, p in zip(recorded, inputs):
        if not Path(p).is_file() or entry.get("file") != Path(p).name or entry.get("size_bytes") != Path(p).stat().st_size:
            return None
    if input_facts(inputs) != recorded:
        return None
    summary = doc.get("summary")
    return dict(summary) if isinstance(summary, dict) else None


def forget(out_dir: Path) -> None:
    """Remove a session's manifest before it is done again, so a redo cut short is never taken as complete."""
    (Path(out_dir) / MANIFEST).unlink(missing_ok=True)
