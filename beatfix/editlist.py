"""``edits.json`` back into an :class:`~beatfix.plan.EditPlan`, checked, for ``beatfix render``.

A person may change the list between ``align`` and ``render``: move a cut,
delete an edit, change a shift. Each edit's ``cut_sample`` and
``shift_samples`` are what render reads; ``cut_s`` / ``shift_ms`` are kept
for reading, and a value changed in one unit only is refused rather than
guessed (which one did the person mean?). A list whose seams no longer fit
the decay room is refused with the renderer's own one-line reason.

A crossfade's shape was fitted by ``align`` to its seam's move
(``xfade_correlation`` measured for ``xfade_measured_for``: its cut and
move); where an edit changed either, the correlation is measured again on the session's audio,
as the planner does, so the re-render is what ``align`` would write for
the same decisions. Unchanged, the plan is rebuilt exactly and renders
bit-identical audio.

Pure: documents and arrays in, plans out; every mistake is a ParameterError
or InputError with one line.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np

from .align import EDITS_SCHEMA
from .errors import InputError, ParameterError
from .plan import Edit, EditPlan, seam_correlation
from .render import plan_seams

_REQUIRED = ("sample_rate", "n_samples", "pad_ms", "xfade_ms", "protect_ms", "edits")


def _number(where: str, name: str, value, *, whole: bool = False, optional: bool = False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{where}: {name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ParameterError(f"{where}: {name} is not finite ({value!r})")
    if whole:
        if float(value) != math.floor(value):
            raise ParameterError(f"{where}: {name} must be a whole number of samples, got {value!r}")
        return int(value)
    return float(value)


def _samples(where: str, row: Mapping, samples_key: str, seconds_key: str, scale: float) -> int:
    """The edit's value in samples; its seconds/ms twin must agree to half a sample if both are given."""
    if samples_key not in row and seconds_key not in row:
        raise ParameterError(f"{where}: no {samples_key}")
    if samples_key not in row:
        value = _number(where, seconds_key, row[seconds_key]) * scale
        whole = math.floor(value + 0.5)
        if abs(value - whole) > 0.01:
            raise ParameterError(f"{where}: {seconds_key} {row[seconds_key]} is not a whole number of samples; "
                                 f"give {samples_key}")
        return int(whole)
    samples = _number(where, samples_key, row[samples_key], whole=True)
    if seconds_key in row and row[seconds_key] is not None:
        twin = _number(where, seconds_key, row[seconds_key]) * scale
        # edits.json rounds seconds to 1 us and ms to 0.1 us: well inside half a sample at any rate.
        if abs(twin - samples) > 0.5:
            raise ParameterError(f"{where}: {samples_key} {samples} and {seconds_key} {row[seconds_key]} disagree; "
                                 f"change one and delete the other")
    return samples


def _edit(k: int, row, sr: int, n_samples: int) -> tuple[Edit, tuple[int, int] | None]:
    where = f"edit {k}"
    if not isinstance(row, dict):
        raise ParameterError(f"{where}: must be an object, got {type(row).__name__}")
    cut = _samples(where, row, "cut_sample", "cut_s", sr)
    shift = _samples(where, row, "shift_samples", "shift_ms", sr / 1000.0)
    attack = _samples(where, row, "attack_sample", "attack_s", sr) if ("attack_sample" in row or "attack_s" in row) \
        else cut
    if not 0 <= cut < n_samples:
        raise ParameterError(f"{where}: cut_sample {cut} is outside the audio (0 to {n_samples - 1})")
    if attack < cut:
        raise ParameterError(f"{where}: cut_sample {cut} is after the piece's attack (attack_sample {attack}): "
                             "keep the cut before it, or move attack_sample too")
    if attack >= n_samples:
        raise ParameterError(f"{where}: attack_sample {attack} is outside the audio (0 to {n_samples - 1})")
    if abs(shift) >= n_samples:
        raise ParameterError(f"{where}: shift_samples {shift} moves the piece out of the audio")
    last = _number(where, "last_attack_sample", row.get("last_attack_sample"), whole=True, optional=True)
    if last is not None and not attack <= last < n_samples:
        raise ParameterError(f"{where}: last_attack_sample {last} must lie between attack_sample and the audio's end")
    room_from = _number(where, "room_from_sample", row.get("room_from_sample"), whole=True, optional=True)
    if room_from is not None and not 0 <= room_from <= cut:
        raise ParameterError(f"{where}: room_from_sample {room_from} must lie between 0 and its cut ({cut})")
    corr = _number(where, "xfade_correlation", row.get("xfade_correlation"), optional=True)
    if corr is not None and not 0.0 <= corr <= 1.0:
        raise ParameterError(f"{where}: xfade_correlation {corr} must be 0 to 1")
    measured = row.get("xfade_measured_for")
    if measured is not None:
        if not isinstance(measured, list) or len(measured) != 2:
            raise ParameterError(f"{where}: xfade_measured_for must be [cut_sample, move_samples]")
        measured = tuple(_number(where, "xfade_measured_for", v, whole=True) for v in measured)
    merged = row.get("merged_hits", [])
    if not isinstance(merged, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in merged):
        raise ParameterError(f"{where}: merged_hits must be a list of hit numbers")
    hit = row.get("hit", k)
    slot = row.get("slot", 0)
    for name, value in (("hit", hit), ("slot", slot)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{where}: {name} must be a whole number, got {value!r}")
    deviation = _number(where, "deviation_ms", row.get("deviation_ms", 0.0))
    edit = Edit(hit_index=hit, slot=slot, cut_sample=cut, attack_sample=attack, shift_samples=shift,
                deviation_ms=deviation, merged_hit_indices=tuple(merged), last_attack_sample=last,
                room_from_sample=room_from, xfade_correlation=corr)
    return edit, measured


def check_document(doc) -> None:
    """Refuse what is not a keep-mode edits.json of this schema, in one line."""
    if not isinstance(doc, dict):
        raise InputError("edits.json: not a JSON object")
    schema = doc.get("schema")
    if schema is None:
        raise InputError(f"edits.json: no schema field (written by an older beatfix?): expected {EDITS_SCHEMA!r}; "
                         "run align again")
    if schema != EDITS_SCHEMA:
        raise InputError(f"edits.json: unknown schema {schema!r}: this beatfix reads {EDITS_SCHEMA!r}")
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise InputError(f"edits.json: no {missing[0]} field")
    if doc.get("flams", "keep") != "keep":
        raise InputError(f"edits.json: made with --flams {doc['flams']}: beatfix render re-renders --flams keep "
                         "edits only (per-drum splits need the analysis); run align again")
    if not isinstance(doc["edits"], list):
        raise InputError("edits.json: edits must be a list")


def plan_from_document(doc: Mapping, *, audio: Sequence[np.ndarray] | None = None) -> EditPlan:
    """The plan ``doc`` describes; raises ParameterError (one line) if it is not renderable.

    ``audio``: the session's stems ``(n_channels, n_samples)``, padded to one
    length as :func:`beatfix.audio_io.load_session` does. With it, a seam
    whose move changed gets its crossfade correlation measured again; without
    it, such a seam falls back to the renderer's default.
    """
    check_document(doc)
    sr = _number("edits.json", "sample_rate", doc["sample_rate"], whole=True)
    n_samples = _number("edits.json", "n_samples", doc["n_samples"], whole=True)
    if sr <= 0 or n_samples <= 0:
        raise ParameterError("edits.json: sample_rate and n_samples must be positive")
    plan = EditPlan(sr, n_samples, _number("edits.json", "pad_ms", doc["pad_ms"]),
                    _number("edits.json", "xfade_ms", doc["xfade_ms"]),
                    _number("edits.json", "protect_ms", doc["protect_ms"]), edits=())
    for name, value in (("pad_ms", plan.pad_ms), ("xfade_ms", plan.xfade_ms), ("protect_ms", plan.protect_ms)):
        if not 0.0 <= value <= 1000.0:
            raise ParameterError(f"edits.json: {name} {value:g} is out of range (0 to 1000)")
    edits: list[Edit] = []
    for k, row in enumerate(doc["edits"]):
        edit, measured_for = _edit(k, row, sr, n_samples)
        if edits and edit.cut_sample <= edits[-1].cut_sample:
            raise ParameterError(f"edit {k}: cut_sample {edit.cut_sample} is not after the previous edit's "
                                 f"({edits[-1].cut_sample}): cuts must be in order")
        move = abs(edit.shift_samples - (edits[-1].shift_samples if edits else 0))
        if move and measured_for != (edit.cut_sample, move):
            corr = None if audio is None else seam_correlation(audio, edit.cut_sample, move, plan.xfade_samples)
            edit = replace(edit, xfade_correlation=corr)
        edits.append(edit)
    plan = replace(plan, edits=tuple(edits))
    plan_seams(plan)  # the renderer's own checks: every seam fits its decay room
    return plan


def check_stems(doc: Mapping, stems: Sequence) -> None:
    """The loaded stems (:class:`beatfix.types.Stem`) against the list: same names, rate and lengths."""
    sr = doc["sample_rate"]
    listed = {e.get("name"): e for e in doc.get("stems", []) if isinstance(e, dict)}
    for stem in stems:
        if stem.sample_rate != sr:
            raise InputError(f"{stem.path or stem.name}: {stem.sample_rate} Hz, but the edits are for {sr} Hz")
        entry = listed.get(stem.name)
        if listed and entry is None:
            raise InputError(f"{stem.path or stem.name}: not a stem of this edit list "
                             f"(it lists {', '.join(sorted(str(k) for k in listed))})")
        length = stem.source_n_samples or stem.n_samples
        if entry is not None and entry.get("n_samples") not in (None, length):
            raise InputError(f"{stem.path or stem.name}: {length} samples, but the edits list it with "
                             f"{entry['n_samples']}: not the same file")
    names = {s.name for s in stems}
    for name in listed:
        if name not in names:
            raise InputError(f"stem {name} of the edit list was not given")
    n = max(s.n_samples for s in stems)
    if n != doc["n_samples"]:
        raise InputError(f"the stems are {n} samples long, but the edits are for {doc['n_samples']}")


def document_for(doc: Mapping, plan: EditPlan) -> dict:
    """``doc``'s edits as ``plan`` renders them: units made consistent, crossfade fields as measured.

    Rendering the result again gives the same plan without measuring anything.
    """
    sr = plan.sample_rate
    rows = []
    prev_shift = 0
    for row, e in zip(doc["edits"], plan.edits):
        rows.append(dict(row, cut_sample=e.cut_sample, cut_s=round(e.cut_sample / sr, 6),
                         attack_sample=e.attack_sample, attack_s=round(e.attack_sample / sr, 6),
                         shift_samples=e.shift_samples, shift_ms=round(e.shift_samples / sr * 1000.0, 4),
                         xfade_correlation=e.xfade_correlation,
                         xfade_measured_for=[e.cut_sample, abs(e.shift_samples - prev_shift)]))
        prev_shift = e.shift_samples
    return {"edits": rows}
