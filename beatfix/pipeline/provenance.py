"""What edits.json records beside the edits, so an edit can be reproduced or audited later:
beatfix's version, the inputs (name, size, sha256), every option, the engine and its model."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .options import AlignOptions


def model_facts(engine: str, model_dir: Path | None) -> dict | None:
    """The model's name, version and recorded sha256 (neural engine), None for the classic judge."""
    if engine != "neural":
        return None
    from ..neural.weights import model_identity

    return model_identity(model_dir)


def provenance(paths: Sequence[Path], options: AlignOptions, *, engine: str, device: str) -> dict:
    """Keys added to edits.json; its ``tempo_bpm`` and ``grid_offset_s`` are the values used."""
    from .. import __version__
    from ..audio_io import file_facts

    return {
        "beatfix_version": __version__,
        "inputs": [file_facts(p) for p in paths],
        "options": options.to_dict(),
        "engine": engine,
        "device": device,
        "model": model_facts(engine, options.model_dir),
        "tempo_source": "given" if options.bpm is not None else "estimated",
        "grid_offset_source": "given" if options.grid_offset_s is not None else "fitted",
    }
