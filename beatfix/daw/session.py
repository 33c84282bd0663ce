"""Which DAW files an edit becomes, with the notes that say what they leave out."""

from __future__ import annotations

from typing import Mapping, Sequence

from ..errors import ParameterError
from ..plan import EditPlan
from .aaf import STRETCH_NOTE, aaf_bytes
from .clips import session_tracks
from .rpp import rpp_text

DAW_KINDS = ("rpp", "aaf")
FILE_NAMES = {"rpp": "session.rpp", "aaf": "session.aaf"}
PATHS_NOTE = "the original input files are referenced by absolute path: move them and the DAW asks where they are"
FIX_NOTE = ("--flams {mode}: this session moves each drum's close mics by its drum's own shifts and every other "
            "channel by the hit's shift; the per-drum split of overheads, room and bleed that the rendered stems "
            "carry is not in this session (it is not a cut of the original files)")


def parse_daw_kinds(text: str | None) -> tuple[str, ...]:
    """``"rpp,aaf"`` -> ``("rpp", "aaf")``; None or empty -> ``()``."""
    if not text:
        return ()
    kinds = tuple(dict.fromkeys(k.strip().lower() for k in text.split(",") if k.strip()))
    bad = [k for k in kinds if k not in DAW_KINDS]
    if bad or not kinds:
        raise ParameterError(f"--daw {text}: use rpp, aaf or rpp,aaf")
    return kinds


def check_linkable(kinds: Sequence[str], stems: Sequence[Mapping]) -> None:
    """Refuse, before any slow work, an AAF of media that AAF cannot link."""
    if "aaf" not in kinds:
        return
    from .aaf import LINKABLE_FORMATS

    for s in stems:
        if str(s.get("format", "WAV")).upper() not in LINKABLE_FORMATS:
            raise ParameterError(f"--daw aaf: {s['path']} is {s.get('format')}; AAF links WAV or AIFF media "
                                 "(use --daw rpp, or convert the stems)")


def session_files(kinds: Sequence[str], plan: EditPlan, stems: Sequence[Mapping], *,
                  drum_plans: Mapping[str, EditPlan] | None = None, flams: str = "keep") -> dict[str, bytes]:
    """File name -> bytes for each kind asked for.

    ``stems``: :func:`beatfix.align.stem_entry` dicts (absolute paths).
    ``drum_plans``: stem -> its own plan under ``--flams fix`` (close mics of
    moved drums); every other stem gets ``plan``.
    """
    tracks = session_tracks(plan, [dict(s) for s in stems], plans=dict(drum_plans) if drum_plans else None)
    notes = ["beatfix edit: one track per stem, the original files cut at the edit points and moved", PATHS_NOTE]
    if flams != "keep":
        notes.append(FIX_NOTE.format(mode=flams))
    out: dict[str, bytes] = {}
    for kind in kinds:
        if kind == "rpp":
            out[FILE_NAMES[kind]] = rpp_text(tracks, plan.sample_rate, notes=notes).encode("utf-8")
        elif kind == "aaf":
            stretched = any(c.kind == "stretch" for t in tracks for c in t.clips)
            out[FILE_NAMES[kind]] = aaf_bytes(tracks, plan.sample_rate, plan.n_samples,
                                              notes=notes + ([STRETCH_NOTE] if stretched else []))
    return out
