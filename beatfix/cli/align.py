"""``beatfix align``: edit every stem of a session onto the grid, phase-coherently."""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from . import common

HELP = """Align a multitrack drum session to the tempo grid and write corrected stems.

\b
Examples:
  beatfix align kick.wav snare.wav hh.wav oh_l.wav oh_r.wav room.wav --bpm 120 -o fixed/
  beatfix align session/*.wav --bpm 96 --strength 75 --exclude-within 3 -o fixed/
  beatfix align session/*.wav --grid 1/8T --swing 62 -o fixed/ --dry-run
  beatfix align --batch sessions/ -o fixed/ --jobs 2 --json
  beatfix align session/*.wav --bpm 120 --flams fix -o fixed/

Every channel is cut at the same points, a pad before each hit's earliest
close-mic attack, and moved by the same amount, so the phase between close
mics, overheads and room is kept exactly. Gaps are filled from the previous
decay, overlaps are crossfaded in decay regions. -o DIR receives the stems
(same names, format, bit depth, rate and length), edits.json (every cut and
shift), flam_report.json and flam_report.csv. Inputs are never written.

--flams fix also puts drums of one hit that were played apart (kick and hats
6 ms apart) each on the slot: each drum's close mics get their own shift, and
each drum's part of the overheads and room (estimated from its close mic; in
a room its direct sound) and its bleed in the other close mics move with it,
so every drum keeps its recorded close-to-overhead lag; what no close mic
explains (cymbals, the room's reverb) moves with the hit.
Deliberate flams (a soft grace stroke before the main one) are left as
played; --flams fix-all puts their drums on the slot too, the grace keeping
its distance to the main stroke. The default, keep, is the phase-exact mode.
Exit codes: 0 ok, 1 bad input or a failed session, 2 usage error.
"""


class FlamMode(str, Enum):
    keep = "keep"
    fix = "fix"
    fix_all = "fix-all"


def register(app: typer.Typer) -> None:
    app.command("align", help=HELP, no_args_is_help=True)(align)


def check_options(*, strength: float, exclude_within: float, pad_ms: float, xfade_ms: float, jobs: int) -> None:
    """Validate the editing options before any slow work starts."""
    from ..errors import ParameterError

    checks = (
        ("--strength", strength, 0.0, 100.0),
        ("--exclude-within", exclude_within, 0.0, 1000.0),
        ("--pad-ms", pad_ms, 0.0, 50.0),
        ("--xfade-ms", xfade_ms, 0.1, 50.0),
    )
    for name, value, lo, hi in checks:
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ParameterError(f"{name} {value:g} is out of range: use {lo:g} to {hi:g}")
    if jobs < 1:
        raise ParameterError(f"--jobs {jobs}: use 1 or more")


def run_session(paths: list[Path], out_dir: Path, opts: dict, progress=None) -> dict:
    """Load, analyse, plan, render and write one session; return its summary document."""
    from ..align import align_session, edits_document, flam_csv, flam_rows, render_stems
    from ..analyse import analyse_session
    from ..audio_io import load_session, prepare_output_dir, write_stems
    from ..engine import channel_minutes_of, choose_engine
    from ..roles import parse_role_overrides

    dry_run = opts["dry_run"]
    created = not out_dir.exists()
    if not dry_run:
        prepare_output_dir(out_dir, paths, force=opts["force"])
    try:
        session, warnings = load_session(paths, roles=parse_role_overrides(opts["role"]))
        choice = choose_engine(opts["engine"], opts["device"], model_path=opts.get("model"),
                               channel_minutes=channel_minutes_of(session))
        analysis = analyse_session(session, bpm=opts["bpm"], grid=opts["grid"], swing_pct=opts["swing"],
                                   flam_threshold_ms=opts["flam_threshold_ms"], judge=choice.judge,
                                   grid_offset_s=opts.get("grid_offset"), progress=progress)
        result = align_session(session, analysis, strength_pct=opts["strength"],
                               exclude_within_ms=opts["exclude_within"], pad_ms=opts["pad_ms"],
                               xfade_ms=opts["xfade_ms"], flams=opts.get("flams", "keep"), render_audio=False)
        rows = flam_rows(analysis, result.plan, result.drums)
        written: list[str] = []
        if not dry_run:
            reports = {
                "edits.json": json.dumps(edits_document(analysis, result.plan, result.drums), indent=2),
                "flam_report.json": json.dumps({"flams": rows}, indent=2),
                "flam_report.csv": flam_csv(rows),
            }
            # Stems are rendered and written one at a time, to temporary names; they and the
            # reports are renamed into place together at the end, or none of them is.
            edited = render_stems(session, result.plan, drums=result.drums, progress=progress)
            extra = {name: text.encode("utf-8") for name, text in reports.items()}
            written = [str(p) for p in write_stems(edited, out_dir, extra=extra)]
    except BaseException:
        if created and not dry_run and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return {
        "status": "ok",
        "engine": choice.name,
        "device": choice.device,
        "notes": list(choice.notes),
        "device_reason": choice.device_reason,
        "warnings": warnings,
        "tempo_bpm": round(analysis.tempo_bpm, 3),
        "grid_offset_s": round(analysis.grid.offset_s, 6),
        "n_hits": len(analysis.hits),
        "n_edits": len(result.plan.edits),
        "n_flams": len(analysis.flams),
        "flams_mode": opts.get("flams", "keep"),
        "n_hits_fixed": len(result.drums.fixed_hits) if result.drums is not None else 0,
        "dry_run": dry_run,
        "outputs": written,
        "before": {k: vars(v) for k, v in result.before.items()},
        "after": {k: vars(v) for k, v in result.after.items()},
    }


def _batch_worker(args: tuple) -> dict:
    name, paths, out_dir, opts = args
    from ..errors import BeatfixError

    try:
        doc = run_session(paths, out_dir, opts)
    except BeatfixError as exc:
        return {"session": name, "status": "failed", "error": str(exc)}
    except Exception as exc:  # one broken session must not stop the others
        return {"session": name, "status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}"}
    doc["session"] = name
    return doc


def run_batch(sessions_dir: Path, out_dir: Path, opts: dict, jobs: int, show_progress: bool) -> list[dict]:
    from ..audio_io import find_session_files, prepare_output_dir
    from ..errors import InputError

    if not sessions_dir.is_dir():
        raise InputError(f"--batch {sessions_dir}: not a folder")
    folders = sorted(p for p in sessions_dir.iterdir() if p.is_dir())
    if not folders:
        raise InputError(f"--batch {sessions_dir}: no session subfolders")
    if not opts["dry_run"]:
        prepare_output_dir(out_dir, [p for f in folders for p in find_session_files(f)], force=opts["force"])
    tasks = []
    results: list[dict] = []
    for folder in folders:
        files = find_session_files(folder)
        if not files:
            results.append({"session": folder.name, "status": "failed", "error": f"{folder}: no audio files"})
            continue
        tasks.append((folder.name, files, out_dir / folder.name, opts))
    with common.progress_bar("sessions", enabled=show_progress) as progress:
        done = 0
        if jobs == 1:
            for task in tasks:
                results.append(_batch_worker(task))
                done += 1
                progress(task[0], done / max(1, len(tasks)))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(_batch_worker, t): t[0] for t in tasks}
                for fut in as_completed(futures):
                    results.append(fut.result())
                    done += 1
                    progress(futures[fut], done / max(1, len(tasks)))
    return sorted(results, key=lambda r: r["session"])


@contextmanager
def _interrupt_reported():
    """Ctrl-C: one line on stderr, then exit 130 (typer turns KeyboardInterrupt into that exit silently).

    By then the outputs are all-or-nothing: the session being written was rolled back."""
    try:
        yield
    except KeyboardInterrupt:
        from . import _print_error

        _print_error("interrupted: nothing half-written was left behind")
        raise


def align(
    stems: Optional[List[Path]] = common.STEMS_ARG,
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (must be empty unless --force; never an input's folder)."),
    bpm: Optional[float] = common.BPM_OPT,
    grid: str = common.GRID_OPT,
    strength: float = typer.Option(100.0, "--strength", help="How far to move hits toward the grid, 0-100 %."),
    exclude_within: float = typer.Option(0.0, "--exclude-within", help="Leave hits already within this many ms of their slot."),
    swing: float = common.SWING_OPT,
    grid_offset: Optional[float] = common.OFFSET_OPT,
    pad_ms: float = typer.Option(3.0, "--pad-ms", help="Cut this many ms before each hit's earliest attack."),
    xfade_ms: float = typer.Option(4.0, "--xfade-ms", help="Equal-power crossfade length at each seam."),
    engine: str = common.ENGINE_OPT,
    device: str = common.DEVICE_OPT,
    model: Optional[Path] = common.MODEL_OPT,
    role: Optional[List[str]] = common.ROLE_OPT,
    flam_threshold_ms: float = common.FLAM_OPT,
    flams: FlamMode = typer.Option(FlamMode.keep, "--flams", help="keep: one shift per hit, phase-exact (default). fix: each drum of a hit on its slot, its part of the overheads and room moved with it; deliberate flams left as played. fix-all: deliberate flams' drums too."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and report, write no audio."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty output folder."),
    batch: Optional[Path] = typer.Option(None, "--batch", help="A folder of session subfolders; results go to OUT/<session>/."),
    jobs: int = typer.Option(1, "--jobs", help="Sessions processed in parallel with --batch."),
    as_json: bool = common.JSON_OPT,
) -> None:
    from ..errors import ParameterError
    from ..grid import check_bpm, check_swing, parse_grid

    parse_grid(grid)
    check_swing(swing)
    if bpm is not None:
        check_bpm(bpm)
    check_options(strength=strength, exclude_within=exclude_within, pad_ms=pad_ms, xfade_ms=xfade_ms, jobs=jobs)
    if grid_offset is not None and not math.isfinite(grid_offset):
        raise ParameterError(f"--grid-offset {grid_offset:g}: use a finite time in seconds")
    opts = dict(bpm=bpm, grid=grid, strength=strength, exclude_within=exclude_within, swing=swing, pad_ms=pad_ms,
                xfade_ms=xfade_ms, engine=engine, device=device, model=model, role=role,
                flam_threshold_ms=flam_threshold_ms, grid_offset=grid_offset, dry_run=dry_run, force=force,
                flams=FlamMode(flams).value)
    show_progress = common.is_tty() and not as_json
    if batch is not None:
        if stems:
            raise typer.BadParameter("give either stems or --batch, not both")
        with _interrupt_reported():
            results = run_batch(batch, out, opts, jobs, show_progress)
        failed = [r for r in results if r["status"] != "ok"]
        if as_json:
            typer.echo(json.dumps({"sessions": results, "failed": len(failed)}, indent=2))
        else:
            from .views import print_batch

            print_batch(common.stdout_console(), results)
        if failed:
            raise typer.Exit(1)
        return
    paths = common.stems_or_fail(stems)
    with _interrupt_reported(), common.progress_bar("aligning", enabled=show_progress) as progress:
        doc = run_session(paths, out, opts, progress=progress)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    common.warn(doc["warnings"] + doc["notes"])
    common.info([doc["device_reason"]])
    from .views import print_align

    print_align(common.stdout_console(), doc, out)
