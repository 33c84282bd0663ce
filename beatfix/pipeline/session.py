"""One session through the pipeline: load -> analyse -> plan -> render -> write + report.

The library entry points behind ``beatfix report`` and ``beatfix align``. They
print nothing; ``progress(stage, fraction)`` is told how far they got, and
warnings for the user come back in the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from .options import AlignOptions, AnalyseOptions

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class AnalyseResult:
    """A session analysed: the stems as loaded, the analysis, and what the user should be told."""

    session: Any  # beatfix.types.Session
    analysis: Any  # beatfix.types.Analysis
    engine: str
    device: str
    warnings: tuple[str, ...] = ()  # about the inputs (padding, metadata not carried, ...)
    notes: tuple[str, ...] = ()  # one-time notes from the engine (CPU fallback)
    options: AnalyseOptions = AnalyseOptions()

    def document(self) -> dict:
        """The ``report --json`` document."""
        from ..report import analysis_document

        return analysis_document(self.analysis, self.session, grid_spec=self.options.grid)


@dataclass(frozen=True)
class AlignSummary:
    """What ``align`` did. ``summary`` is the ``align --json`` document (JSON-ready)."""

    summary: Mapping[str, Any]
    outputs: tuple[Path, ...] = ()  # files written (none on a dry run)
    edits: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)  # every edit (see beatfix.align.edit_rows)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self.summary["warnings"]) + tuple(self.summary["notes"])


def _paths(stems: Sequence[Path | str]) -> list[Path]:
    from ..errors import InputError

    if isinstance(stems, (str, Path)):
        raise InputError(f"{stems}: give a list of stem files, not one path")
    return [Path(p) for p in stems]


def _load_and_analyse(paths: list[Path], options: AnalyseOptions, progress: Optional[Progress]):
    from ..analyse import analyse_session
    from ..audio_io import load_session
    from ..engine import choose_engine

    tell = progress or (lambda stage, fraction: None)
    tell("loading", 0.0)
    session, warnings = load_session(paths, roles=options.role_map())
    tell("loading", 1.0)
    choice = choose_engine(options.engine, options.device, model_path=options.model_dir)
    analysis = analyse_session(session, bpm=options.bpm, grid=options.grid, swing_pct=options.swing_pct,
                               flam_threshold_ms=options.flam_threshold_ms, judge=choice.judge,
                               grid_offset_s=options.grid_offset_s, progress=progress)
    return AnalyseResult(session, analysis, choice.name, choice.device, tuple(warnings), tuple(choice.notes),
                         options)


def analyse(stems: Sequence[Path | str], options: AnalyseOptions | None = None, *,
            progress: Optional[Progress] = None) -> AnalyseResult:
    """Load the stems of one session and analyse them (tempo, grid, hits, flams, mic delays)."""
    return _load_and_analyse(_paths(stems), options or AnalyseOptions(), progress)


def align(stems: Sequence[Path | str], out_dir: Path | str | None, options: AlignOptions | None = None, *,
          progress: Optional[Progress] = None) -> AlignSummary:
    """Align one session and write its corrected stems and reports to ``out_dir``, all or nothing.

    ``out_dir`` must be empty unless ``options.force``; it may be None on a dry
    run, which writes nothing. A folder this call created is removed again if
    it fails, so an error or Ctrl-C leaves the previous state.
    """
    from ..align import align_session, edits_document, flam_csv, flam_rows, hits_moved, render_stems
    from ..audio_io import prepare_output_dir, write_stems
    from ..errors import ParameterError
    from .provenance import provenance

    options = options or AlignOptions()
    paths = _paths(stems)
    tell = progress or (lambda stage, fraction: None)
    dry_run = options.dry_run
    if out_dir is None and not dry_run:
        raise ParameterError("an output folder is needed unless dry_run is set")
    out = Path(out_dir) if out_dir is not None else None
    created = out is not None and not out.exists()
    if not dry_run:
        prepare_output_dir(out, paths, force=options.force)
    try:
        analysed = _load_and_analyse(paths, options.analyse_options(), progress)
        session, analysis = analysed.session, analysed.analysis
        tell("planning", 0.0)
        result = align_session(session, analysis, strength_pct=options.strength_pct,
                               exclude_within_ms=options.exclude_within_ms, pad_ms=options.pad_ms,
                               xfade_ms=options.xfade_ms, flams=options.flams, render_audio=False)
        rows = flam_rows(analysis, result.plan, result.drums)
        edits_doc = edits_document(analysis, result.plan, result.drums)
        tell("planning", 1.0)
        written: list[Path] = []
        if not dry_run:
            edits_doc = {"schema": edits_doc["schema"],
                         **provenance(paths, options, engine=analysed.engine, device=analysed.device), **edits_doc}
            reports = {
                "edits.json": json.dumps(edits_doc, indent=2),
                "flam_report.json": json.dumps({"flams": rows}, indent=2),
                "flam_report.csv": flam_csv(rows),
            }
            # Stems are rendered and written one at a time, to temporary names; they and the
            # reports are renamed into place together at the end, or none of them is.
            edited = render_stems(session, result.plan, drums=result.drums, progress=progress)
            extra = {name: text.encode("utf-8") for name, text in reports.items()}
            written = list(write_stems(edited, out, extra=extra))
    except BaseException:
        if created and not dry_run and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    edits = edits_doc["edits"]
    statuses = [e["status"] for e in edits]
    summary = {
        "status": "ok",
        "engine": analysed.engine,
        "device": analysed.device,
        "notes": list(analysed.notes),
        "warnings": list(analysed.warnings),
        "tempo_bpm": round(analysis.tempo_bpm, 3),
        "grid_offset_s": round(analysis.grid.offset_s, 6),
        "n_hits": len(analysis.hits),
        "n_edits": len(result.plan.edits),
        "n_hits_moved": hits_moved(result.plan, result.drums),
        "n_edits_capped": statuses.count("capped"),
        "n_edits_excluded": statuses.count("excluded"),
        "n_flams": len(analysis.flams),
        "flams_mode": options.flams,
        "n_hits_fixed": len(result.drums.fixed_hits) if result.drums is not None else 0,
        "dry_run": dry_run,
        "outputs": [str(p) for p in written],
        "before": {k: vars(v) for k, v in result.before.items()},
        "after": {k: vars(v) for k, v in result.after.items()},
    }
    return AlignSummary(summary=summary, outputs=tuple(written), edits=tuple(edits))

