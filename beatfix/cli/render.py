"""``beatfix render``: re-render the stems from an edit list (edits.json) a person has changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from . import common

HELP = """Re-render corrected stems from an edits.json, after changing it by hand or by script.

\b
Examples:
  beatfix align session/*.wav --bpm 120 -o fixed/
  beatfix render fixed/edits.json -o fixed2/                  # stems found from the list
  beatfix render fixed/edits.json -o fixed2/ session/*.wav    # or named here
  beatfix render fixed/edits.json -o fixed2/ --daw rpp        # and a REAPER session of it
  python - <<'EOF'
  import json; d = json.load(open("fixed/edits.json"))
  d["edits"][3]["shift_samples"] = 0; del d["edits"][3]["shift_ms"]
  json.dump(d, open("mine.json", "w"))
  EOF
  beatfix render mine.json -o fixed3/
  beatfix align session/*.wav --bpm 120 --dry-run --json > plan.json   # a preview's list renders too
  beatfix render plan.json -o fixed4/

Each edit's cut_sample and shift_samples are what is rendered (cut_s and
shift_ms may be deleted; changed alone, they are refused as ambiguous). Move
a cut, delete an edit or change a shift: the list is checked against the
stems (names, sample rate, lengths) and against the seam rules, and every
problem is one line. The renderer is align's: an unchanged list gives
bit-identical stems, and a changed shift changes only its piece and seams.
Only --flams keep lists can be re-rendered. -o DIR receives the stems and
the edits.json that was rendered. Exit codes: 0 ok, 1 bad input, 2 usage error.
"""


def register(app: typer.Typer) -> None:
    app.command("render", help=HELP, no_args_is_help=True)(render)


def _read_document(path: Path) -> dict:
    from ..errors import InputError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(doc, dict) and isinstance(doc.get("edit_list"), dict):
        return doc["edit_list"]  # `align --dry-run --json` output: its edit list is an edits.json
    return doc


def _stem_paths(doc: dict, given: Optional[List[Path]], edits_path: Path) -> list[Path]:
    from ..errors import InputError

    if given:
        return list(given)
    listed = doc.get("stems")
    if not isinstance(listed, list) or not listed:
        raise InputError(f"{edits_path}: lists no stems; name them: beatfix render {edits_path} -o DIR kick.wav ...")
    paths = []
    for entry in listed:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str):
            raise InputError(f"{edits_path}: a stem entry has no path; name the stems as arguments")
        if not Path(path).is_file():
            raise InputError(f"stem {entry.get('name', path)}: {path}: no such file (name the stems as arguments)")
        paths.append(Path(path))
    return paths


def run_render(edits_path: Path, stems: Optional[List[Path]], out_dir: Path, *, force: bool, daw: tuple,
               progress=None) -> dict:
    """Check, rebuild and render the list; return the summary document."""
    from ..align import render_stems, stem_entry
    from ..audio_io import load_session, prepare_output_dir, write_stems
    from ..daw import session_files
    from ..daw.session import check_linkable
    from ..editlist import check_stems, document_for, plan_from_document

    doc = _read_document(edits_path)
    plan_from_document(doc)  # the list's own mistakes first, before any audio is read
    paths = _stem_paths(doc, stems, edits_path)
    created = not out_dir.exists()
    prepare_output_dir(out_dir, [*paths, edits_path], force=force)
    try:
        session, warnings = load_session(paths)
        check_stems(doc, session.stems)
        entries = [stem_entry(s) for s in session.stems]
        check_linkable(daw, entries)
        plan = plan_from_document(doc, audio=[s.audio for s in session.stems])
        rendered = dict(doc, stems=entries, **document_for(doc, plan))
        extra = {"edits.json": json.dumps(rendered, indent=2).encode("utf-8")}
        extra.update(session_files(daw, plan, entries))
        written = write_stems(render_stems(session, plan, progress=progress), out_dir, extra=extra)
    except BaseException:
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return {"status": "ok", "warnings": warnings, "n_edits": len(plan.edits),
            "n_moved": sum(1 for e in plan.edits if e.shift_samples), "outputs": [str(p) for p in written]}


def render(
    edits: Path = typer.Argument(..., help="The edit list: an edits.json written by beatfix align (and changed).",
                                 show_default=False, metavar="EDITS_JSON"),
    stems: Optional[List[Path]] = typer.Argument(None, help="The stems, if not where edits.json says.",
                                                 show_default=False, metavar="STEMS"),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (must be empty unless --force; never an input's folder)."),
    daw: Optional[str] = typer.Option(None, "--daw", help="Also write session.rpp / session.aaf of the edit: rpp, aaf or rpp,aaf."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty output folder."),
    as_json: bool = common.JSON_OPT,
) -> None:
    from ..daw import parse_daw_kinds

    kinds = parse_daw_kinds(daw)
    with common.progress_bar("rendering", enabled=common.is_tty() and not as_json) as progress:
        doc = run_render(edits, stems, out, force=force, daw=kinds, progress=progress)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    common.warn(doc["warnings"])
    common.stdout_console().print(f"rendered {doc['n_edits']} edits ({doc['n_moved']} moved) into {out}/: "
                                  f"{len(doc['outputs'])} files")
