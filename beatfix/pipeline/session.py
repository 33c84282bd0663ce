"""One session through the pipeline: load -> analyse -> plan -> render -> write + report.

The library entry points behind ``beatfix report`` and ``beatfix align``. They
print nothing; ``progress(stage, fraction)`` is told how far they got, and
warnings for the user come back in the result.
"""

from __future__ import annotations

import json
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from .options import AlignOptions, AnalyseOptions

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class AnalyseResult:
    """A session analysed: the stems as loaded, the analysis, and what the user should be told."""

    session: Any  # beatfix.types.Session: the drum stems, analysed and edited
    analysis: Any  # beatfix.types.Analysis
    engine: str
    device: str
    warnings: tuple[str, ...] = ()  # about the inputs (padding, metadata not carried, ...)
    notes: tuple[str, ...] = ()  # one-time notes from the engine (CPU fallback)
    options: AnalyseOptions = AnalyseOptions()
    untouched: tuple = ()  # stems written unchanged: clicks, instruments that are not drums
    device_reason: str = ""  # what --device auto chose and why (one informational line)

    def document(self) -> dict:
        """The ``report --json`` document."""
        from ..report import analysis_document

        return analysis_document(self.analysis, self.session, grid_spec=self.analysis.grid_spec)


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
    from ..clicktrack import set_aside
    from ..engine import channel_minutes_of, choose_engine
    from ..midi_io import read_tempo_map

    tell = progress or (lambda stage, fraction: None)
    tempo_map = read_tempo_map(options.tempo_map) if options.tempo_map is not None else None
    tell("loading", 0.0)
    session, warnings = load_session(paths, roles=options.role_map())
    session, untouched, clicks, aside_notes = set_aside(session)
    if options.click is not None:
        tempo_map = _click_map(options.click, clicks, untouched, session.sample_rate)
    tell("loading", 1.0)
    choice = choose_engine(options.engine, options.device, model_path=options.model_dir,
                           channel_minutes=channel_minutes_of(session))
    analysis = analyse_session(session, bpm=options.bpm, grid=options.grid, swing_pct=options.swing_pct,
                               flam_threshold_ms=options.flam_threshold_ms, judge=choice.judge,
                               grid_offset_s=options.grid_offset_s, progress=progress, tempo_map=tempo_map,
                               follow=options.follow)
    return AnalyseResult(session, analysis, choice.name, choice.device, tuple(warnings) + tuple(aside_notes),
                         tuple(choice.notes), options, untouched, choice.device_reason)


def _grid_fit(analysis, *, force: bool) -> list[str]:
    """Refuse to edit on a grid that does not fit the playing (see beatfix.fitcheck), unless forced."""
    from ..errors import GridFitError

    fit = analysis.fit
    if fit is None or fit.fits:
        return []
    line = f"the grid does not fit the playing: {'; '.join(fit.reasons)}; {fit.suggestion}"
    if not force:
        raise GridFitError(line)
    return [f"--force: editing anyway, though {line.split(': ', 1)[1].rsplit('; --force', 1)[0]}"]


def _click_map(path: Path, clicks: Mapping, untouched: Sequence, sample_rate: int):
    """The tempo map of ``--click``: a stem of the session (set aside as a click) or another file."""
    from ..audio_io import read_stem
    from ..clicktrack import analyse_click
    from ..errors import InputError

    for stem in untouched:
        if stem.path is not None and stem.path.resolve() == Path(path).resolve() and stem.name in clicks:
            return clicks[stem.name].tempo_map()
    stem = read_stem(Path(path), role="click")
    if stem.sample_rate != sample_rate:
        raise InputError(f"--click {path}: {stem.sample_rate} Hz, the session is {sample_rate} Hz")
    found = analyse_click(stem.mono(), stem.sample_rate)
    if found is None:
        raise InputError(f"--click {path}: no click found (a steady train of identical short blips)")
    return found.tempo_map()


def _daw_files(kinds, session, result) -> dict:
    """session.rpp / session.aaf for ``daw``: the original files cut and moved (beatfix.daw)."""
    if not kinds:
        return {}
    from ..align import stem_entry
    from ..daw import session_files

    drums = result.drums
    own = {} if drums is None else {s.name: drums.plan_for(s.name, result.plan) for s in session.stems
                                    if drums.drum_of(s.name) in drums.moved}
    return session_files(kinds, result.plan, [stem_entry(s) for s in session.stems], drum_plans=own,
                         flams=drums.mode if drums is not None else "keep")


def _self_check(session, analysis, result, progress, rules=None):
    """The plans after :func:`beatfix.selfcheck.check_and_revert`, with the timing table to match."""
    from dataclasses import replace

    from ..align import TimingSummary, stem_deviation_table
    from ..selfcheck import check_and_revert

    plan, drums, check = check_and_revert(session, analysis, result.plan, result.drums, progress=progress,
                                          targets_s=None if rules is None else rules.target_s)
    if not check.reverted:
        return result, check
    _, after = stem_deviation_table(analysis, plan, drums, rules)
    return replace(result, plan=plan, drums=drums, after={k: TimingSummary.of(v) for k, v in after.items()}), check


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
    from ..align import align_session, edits_document, flam_csv, flam_rows, hits_moved, render_stems, stem_entry
    from ..audio_io import prepare_output_dir, write_stems
    from ..errors import ParameterError
    from ..report import tempo_map_document
    from .provenance import provenance

    options = options or AlignOptions()
    paths = _paths(stems)
    tell = progress or (lambda stage, fraction: None)
    dry_run = options.dry_run
    if out_dir is None and not dry_run:
        raise ParameterError("an output folder is needed unless dry_run is set")
    # a dry run without a folder still gets a path object (never created or written)
    out = Path(out_dir) if out_dir is not None else Path(".")
    created = out_dir is not None and not out.exists()
    if not dry_run:
        prepare_output_dir(out, paths, force=options.force)
    plot_path = options.plot_path
    if plot_path is not None and plot_path.resolve() in {p.resolve() for p in paths}:
        raise ParameterError(f"--plot {plot_path} is an input file")
    try:
        analysed = _load_and_analyse(paths, options.analyse_options(), progress)
        session, analysis = analysed.session, analysed.analysis
        fit_notes = _grid_fit(analysis, force=options.force)
        if options.daw and not dry_run:
            from ..daw.session import check_linkable

            check_linkable(options.daw, [stem_entry(s) for s in session.stems])
        rules = None
        if options.has_sections:
            from ..sections import resolve

            rules = resolve(analysis, sections=options.sections, locks=options.locks,
                            edit_range=options.edit_range, strength_pct=options.strength_pct,
                            exclude_within_ms=options.exclude_within_ms)
        tell("planning", 0.0)
        result = align_session(session, analysis, strength_pct=options.strength_pct,
                               exclude_within_ms=options.exclude_within_ms, pad_ms=options.pad_ms,
                               xfade_ms=options.xfade_ms, flams=options.flams, render_audio=False, rules=rules)
        check = None
        if not dry_run:  # the output is rendered and checked before anything is written
            result, check = _self_check(session, analysis, result, progress, rules)
        rows = flam_rows(analysis, result.plan, result.drums, check)
        edits_doc = edits_document(analysis, result.plan, result.drums, stems=session.stems, check=check)
        if rules is not None:
            edits_doc["sections"] = list(rules.sections)
        plot = None
        if plot_path is not None:  # drawn before anything is written, so a failure leaves nothing behind
            from ..plot import align_plot, plot_format

            plot = align_plot(analysis, session, result.plan, fmt=plot_format(plot_path), drums=result.drums,
                              rules=rules)
        tell("planning", 1.0)
        written: list[Path] = []
        # the edit list as edits.json holds it (a dry run's too: `beatfix render` takes it after a script's edit)
        edits_doc = {"schema": edits_doc["schema"],
                     **provenance(paths, options, engine=analysed.engine, device=analysed.device), **edits_doc}
        if not dry_run:
            reports = {
                "edits.json": json.dumps(edits_doc, indent=2),
                "flam_report.json": json.dumps({"flams": rows}, indent=2),
                "flam_report.csv": flam_csv(rows),
            }
            # Stems are rendered and written one at a time, to temporary names; they and the
            # reports are renamed into place together at the end, or none of them is.
            edited = chain(render_stems(session, result.plan, drums=result.drums, progress=progress),
                           analysed.untouched)  # a click or a bass DI is written exactly as it came
            extra = {name: text.encode("utf-8") for name, text in reports.items()}
            extra.update(_daw_files(options.daw, session, result))
            written = list(write_stems(edited, out, extra=extra))
        if plot is not None and plot_path is not None:
            from ..audio_io import write_bytes_atomic

            write_bytes_atomic(plot_path, plot)
            written.append(plot_path)
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
        "device_reason": analysed.device_reason,
        "notes": list(analysed.notes),
        "warnings": list(analysed.warnings) + fit_notes,
        "tempo_bpm": round(analysis.tempo_bpm, 3),
        "grid_offset_s": round(analysis.grid.offset_s, 6),
        "grid": analysis.grid_spec,
        "swing_pct": round(float(analysis.grid.swing_pct), 2),
        "tempo_source": analysis.tempo_source,
        "tempo_map": tempo_map_document(analysis),
        "feel": analysis.feel.as_dict() if analysis.feel is not None else None,
        "grid_fit": analysis.fit.as_dict() if analysis.fit is not None else None,
        "n_hits": len(analysis.hits),
        "n_edits": len(result.plan.edits),
        "n_hits_moved": hits_moved(result.plan, result.drums),
        "n_edits_capped": statuses.count("capped"),
        "n_edits_excluded": statuses.count("excluded"),
        "n_edits_locked": statuses.count("locked"),
        "n_flams": len(analysis.flams),
        "flams_mode": options.flams,
        "n_hits_fixed": len(result.drums.fixed_hits) if result.drums is not None else 0,
        "dry_run": dry_run,
        "outputs": [str(p) for p in written],
        **({"edit_list": edits_doc} if dry_run else {}),
        "self_check": check.as_dict() if check is not None else None,
        "drums_kept": dict(result.drums.kept or {}) if result.drums is not None else {},
        "before": {k: vars(v) for k, v in result.before.items()},
        "after": {k: vars(v) for k, v in result.after.items()},
    }
    return AlignSummary(summary=summary, outputs=tuple(written), edits=tuple(edits))

