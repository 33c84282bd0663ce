"""Small batches for the batch tests: three sessions cut from conftest's ``small_session`` and one corrupt."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import beatfix
from beatfix.pipeline.resume import MANIFEST

GOOD = ("a_full", "b_no_crash", "c_no_room")
CORRUPT = "d_corrupt"


def make_batch(folder: Path, root: Path) -> Path:
    """``root/sessions/`` with sessions a-c (the small session, less a stem in b and c) and d (a text file as kick)."""
    sessions = root / "sessions"
    drop = {"a_full": (), "b_no_crash": ("crash.wav",), "c_no_room": ("room.wav",)}
    for name, left_out in drop.items():
        (sessions / name).mkdir(parents=True)
        for p in sorted(folder.glob("*.wav")):
            if p.name not in left_out:
                shutil.copy2(p, sessions / name / p.name)
    (sessions / CORRUPT).mkdir()
    (sessions / CORRUPT / "kick.wav").write_text("not audio")
    return sessions


def options(truth) -> beatfix.AlignOptions:
    return beatfix.AlignOptions(bpm=truth["bpm"], engine="classic")


def output_digests(out: Path) -> dict[str, str]:
    """sha256 of every output file, by ``session/file``; the manifest without its summary's output paths
    (absolute, so they differ between two output folders and nothing else)."""
    digests = {}
    for p in sorted(out.glob("*/*")):
        data = p.read_bytes()
        if p.name == MANIFEST:
            doc = json.loads(data)
            doc["summary"].pop("outputs")
            data = json.dumps(doc, sort_keys=True).encode()
        digests[f"{p.parent.name}/{p.name}"] = hashlib.sha256(data).hexdigest()
    return digests


def documents(outcomes) -> dict[str, dict]:
    """The ``--json`` document of each session, less the output paths."""
    docs = {}
    for o in outcomes:
        doc = dict(o.document())
        doc.pop("outputs", None)
        docs[o.session] = doc
    return docs
