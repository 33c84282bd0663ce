"""``beatfix align``: edit every stem of a session onto the grid, phase-coherently."""

from __future__ import annotations

import json
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
  beatfix align session/*.wav -o fixed/                      # no click: follows the drummer's tempo
  beatfix align session/*.wav --tempo-map song.mid -o fixed/ # the DAW's tempo map (changes, meters)
  beatfix align session/*.wav --click click.wav -o fixed/    # the recorded click is the grid
  beatfix align session/*.wav --grid auto --swing auto -o fixed/
  beatfix align --batch sessions/ -o fixed/ --jobs 2 --json
  beatfix align --batch sessions.csv -o fixed/ --executor dask --scheduler tcp://host:8786
  beatfix align session/*.wav --bpm 120 --flams fix -o fixed/
  beatfix align session/*.wav --bpm 120 -o fixed/ --daw rpp,aaf
  beatfix align session/*.wav --bpm 120 --lock "bar 9-12" --plot timing.pdf -o fixed/
  beatfix align session/*.wav --bpm 120 --range 30-75.5 --sections song.toml -o fixed/

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
--daw rpp,aaf adds session.rpp (REAPER) and session.aaf: the original files
cut at the edit points and moved, one track per stem, with the crossfades,
to audition and adjust; `beatfix render OUT/edits.json` re-renders an edited list.
Before anything is written, align checks that the grid fits the playing
(hits that would move more than a third of a step, a grid drifting away from
the band, strokes sharing a slot, a much better fitting tempo or feel); when
it does not, it stops with one line saying what to pass, and writes nothing.
--force edits anyway. Click tracks and stems that are not drums (by name or
content) are written unchanged.
--range edits only the span given and --lock (repeatable) leaves spans as
played: seconds (12.5-20), whole bars (bar 9-12: bar 9's start to bar 13's
start) or positions (9|1-13|1, end excluded), bars from the analysis grid.
A hit belongs to a span when its slot does. A locked span is one unshifted
piece: its audio is the input's, sample for sample, but for the crossfades
of the seams at its ends. --sections FILE (TOML or CSV) gives spans their
own grid, swing, strength, exclude-within, or a lock.
--batch takes a folder of session folders or a CSV/JSON list of sessions
(each with its own stems, roles, bpm, tempo map); a batch started again skips
the sessions already done with the same inputs and options.
Exit codes: 0 ok, 1 bad input or a failed session, 2 usage error.
"""


class Executor(str, Enum):
    local = "local"
    dask = "dask"


class FlamMode(str, Enum):
    keep = "keep"
    fix = "fix"
    fix_all = "fix-all"


def register(app: typer.Typer) -> None:
    app.command("align", help=HELP, no_args_is_help=True)(align)


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
    swing: str = common.SWING_OPT,
    grid_offset: Optional[float] = common.OFFSET_OPT,
    pad_ms: float = typer.Option(3.0, "--pad-ms", help="Cut this many ms before each hit's earliest attack."),
    xfade_ms: float = typer.Option(4.0, "--xfade-ms", help="Equal-power crossfade length at each seam."),
    engine: str = common.ENGINE_OPT,
    device: str = common.DEVICE_OPT,
    model: Optional[Path] = common.MODEL_OPT,
    role: Optional[List[str]] = common.ROLE_OPT,
    flam_threshold_ms: float = common.FLAM_OPT,
    flams: FlamMode = typer.Option(FlamMode.keep, "--flams", help="keep: one shift per hit, phase-exact (default). fix: each drum of a hit on its slot, its part of the overheads and room moved with it; deliberate flams left as played. fix-all: deliberate flams' drums too."),
    edit_range: Optional[str] = typer.Option(None, "--range", help="Edit only this span; the rest stays as played. Seconds 12.5-20, whole bars 'bar 9-12' (both included) or positions 9|1-13|1 (end excluded)."),
    lock: Optional[List[str]] = typer.Option(None, "--lock", help="Leave this span as played (a fill, a rubato intro), same forms as --range. Repeatable."),
    sections: Optional[Path] = typer.Option(None, "--sections", help="A .toml or .csv file giving spans their own grid, swing, strength, exclude-within or lock."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a before/after timing plot by bars, one lane per drum: .png, .pdf or .svg."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and report, write no audio (a --plot is still drawn)."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty output folder, and edit even where the grid does not fit the playing (which is otherwise refused)."),
    tempo_map: Optional[Path] = common.TEMPO_MAP_OPT,
    click: Optional[Path] = common.CLICK_OPT,
    batch: Optional[Path] = typer.Option(None, "--batch", help="A folder of session subfolders, or a CSV/JSON list of sessions; results go to OUT/<session>/. Sessions already done (same inputs and options) are skipped."),
    jobs: int = typer.Option(1, "--jobs", help="Sessions processed in parallel with --batch (the local cluster's workers with --executor dask)."),
    executor: Executor = typer.Option(Executor.local, "--executor", help="With --batch: local (a process pool) or dask (one task per session on a Dask cluster; needs beatfix[cluster])."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="With --executor dask: the scheduler's address, e.g. tcp://host:8786. Without it a local cluster of --jobs workers is started."),
    quiet: bool = common.QUIET_OPT,
    daw: Optional[str] = typer.Option(None, "--daw", help="Also write the edit as a DAW session of the original files: rpp (REAPER), aaf (Pro Tools, Logic, Nuendo, Media Composer) or rpp,aaf. Written to OUT/session.rpp, OUT/session.aaf; inputs referenced by absolute path."),
    as_json: bool = common.JSON_OPT,
) -> None:
    from ..daw.session import parse_daw_kinds
    from ..pipeline import AlignOptions, align as align_session, align_batch, check_jobs

    options = AlignOptions(bpm=bpm, grid=grid, swing_pct=common.swing_value(swing), tempo_map=tempo_map, click=click,
                           grid_offset_s=grid_offset,
                           flam_threshold_ms=flam_threshold_ms, engine=engine, device=device, model_dir=model,
                           roles=common.role_pairs(role), strength_pct=strength, exclude_within_ms=exclude_within,
                           pad_ms=pad_ms, xfade_ms=xfade_ms, flams=FlamMode(flams).value, dry_run=dry_run,
                           force=force, daw=tuple(parse_daw_kinds(daw)), edit_range=edit_range,
                           locks=tuple(lock or ()), sections=sections if sections is not None else (), plot_path=plot)
    check_jobs(jobs)
    from .progress import job_progress, session_label

    if batch is not None:
        if stems:
            raise typer.BadParameter("give either stems or --batch, not both")
        if plot is not None:
            raise typer.BadParameter("--plot draws one session: run align without --batch")
        with _interrupt_reported(), job_progress("sessions", quiet=quiet) as progress:
            outcomes = align_batch(batch, out, options, jobs=jobs, executor=Executor(executor).value,
                                   scheduler=scheduler, progress=progress)
        results = [o.document() for o in outcomes]
        failed = [r for r in results if r["status"] != "ok"]
        if as_json:
            typer.echo(json.dumps({"sessions": results, "failed": len(failed)}, indent=2))
        elif not quiet:
            from .views import print_batch

            print_batch(common.stdout_console(), results)
        else:
            from . import _print_error

            for r in failed:  # --quiet keeps the errors
                _print_error(f"session {r['session']}: {r['error']}")
        if failed:
            raise typer.Exit(1)
        return
    if executor != Executor.local or scheduler is not None:
        raise typer.BadParameter("--executor and --scheduler go with --batch")
    paths = common.stems_or_fail(stems)
    label = session_label(paths)
    with _interrupt_reported(), job_progress("aligning", quiet=quiet) as progress:
        result = align_session(paths, out, options, progress=lambda stage, fraction: progress(label, stage, fraction))
        progress(label, "done", 1.0)
    doc = dict(result.summary)
    if dry_run:
        doc["edits"] = list(result.edits)  # the preview: every edit, as the table shows it
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    if quiet:
        return
    common.info([doc.get("device_reason", "")])
    common.warn(doc["warnings"] + doc["notes"])
    from .views import print_align, print_edits

    console = common.stdout_console()
    if dry_run:
        print_edits(console, doc["edits"])
    print_align(console, doc, out)

