"""Rich tables for the terminal, built from the same documents ``--json`` prints."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

MAX_FLAM_ROWS = 20


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def print_report(console: Console, doc: dict) -> None:
    tempo = Table(title="Tempo", title_justify="left", show_edge=False)
    tempo.add_column("BPM", justify="right")
    tempo.add_column("strength", justify="right")
    tempo.add_column("")
    chosen = doc["tempo_bpm"]
    candidates = doc["tempo_candidates"] or [{"bpm": chosen, "strength": 1.0}]
    for c in candidates:
        mark = "used" if abs(c["bpm"] - chosen) / chosen < 0.03 else ""
        tempo.add_row(f"{c['bpm']:.2f}", f"{c['strength']:.2f}", mark)
    console.print(tempo)
    grid = doc["grid"]
    console.print(f"grid {grid['resolution']} at {chosen:.2f} BPM, first slot at {grid['offset_s']:.4f} s"
                  + (f", swing {grid['swing_pct']:g} %" if grid["swing_pct"] != 50 else "")
                  + f"; engine: {doc['engine']}\n")
    print_tempo_map(console, doc.get("tempo_map"))
    print_feel(console, doc.get("feel"), grid)
    print_fit(console, doc.get("grid_fit"))

    timing = Table(title="Timing per close mic (ms; + late, - early; static delay removed)",
                   title_justify="left", show_edge=False)
    for col in ("stem", "role", "hits", "bleed rejected", "mean", "SD", "p95 |dev|", "trend ms/min", "tendency"):
        timing.add_column(col, justify="left" if col in ("stem", "role", "tendency") else "right")
    from ..report import ChannelStats

    for ch in doc["channels"]:
        stats = ChannelStats(**ch)
        timing.add_row(ch["stem"], ch["role"], str(ch["n_hits"]), str(ch["n_bleed_rejected"]), _signed(ch["mean_ms"]),
                       f"{ch['sd_ms']:.1f}", f"{ch['p95_abs_ms']:.1f}", _signed(ch["trend_ms_per_min"]), stats.tendency)
    console.print(timing)
    console.print()

    delays = Table(title="Mic delays and polarity", title_justify="left", show_edge=False)
    for col in ("stem", "delay ms", "polarity", "against"):
        delays.add_column(col, justify="right" if col == "delay ms" else "left")
    check = doc.get("mic_polarity_check") or {"stems": {}, "pairs": []}
    for stem, ms in doc["mic_delays_ms"].items():
        pol = doc["mic_polarity"].get(stem, 1)
        reference = doc["mic_delay_reference"].get(stem)
        own = check["stems"].get(stem)
        if reference is None and own is not None:
            # a close mic is its own delay reference: its polarity is the one measured against the overheads
            delays.add_row(stem, f"{ms:.2f}", f"{own['verdict']} ({own['confidence']:.2f})", "overheads")
        else:
            delays.add_row(stem, f"{ms:.2f}", "inverted" if pol < 0 else "normal", reference or "reference")
    console.print(delays)
    for pair in check["pairs"]:
        first, second = pair["stems"]
        console.print(f"{first} / {second} (one drum): {pair['verdict']} polarity, {second} {pair['lag_ms']:+.2f} ms")
    console.print()

    flams = doc["flams"]
    if not flams:
        console.print(f"No flams ({len(doc['hits'])} hits).")
        return
    table = Table(title=f"Flams: {len(flams)} of {len(doc['hits'])} hits", title_justify="left", show_edge=False)
    for col in ("time s", "slot", "spread ms", "drums (onset s)", "kind"):
        table.add_column(col, justify="right" if col in ("time s", "slot", "spread ms") else "left")
    for f in flams[:MAX_FLAM_ROWS]:
        drums = ", ".join(f"{k} {v:.4f}" for k, v in f["channels"].items())
        table.add_row(f"{f['time_s']:.3f}", str(f["slot"]), f"{f['spread_ms']:.1f}", drums,
                      "deliberate" if f["deliberate"] else "")
    console.print(table)
    if len(flams) > MAX_FLAM_ROWS:
        console.print(f"... and {len(flams) - MAX_FLAM_ROWS} more (use --json or --csv for all)")


_SOURCE = {"given": "--bpm, one tempo", "estimated": "estimated, one steady tempo",
           "follow": "following the drummer (no --bpm, the tempo moves)", "map": "the tempo map given"}


def print_tempo_map(console: Console, tm: dict | None) -> None:
    """The tempo the grid follows: one line for a steady tempo, a table of segments for a map."""
    if not tm:
        return
    segments = tm["segments"]
    if len(segments) <= 1 and tm["source"] in ("given", "estimated"):
        return
    table = Table(title=f"Tempo map ({_SOURCE.get(tm['source'], tm['source'])}); bar 1 at {tm['bar1_s']:.3f} s",
                  title_justify="left", show_edge=False)
    for col in ("from", "to", "bar|beat", "", "BPM", "meter"):
        table.add_column(col, justify="right" if col in ("from", "to", "BPM") else "left")
    for seg in segments:
        bpm = f"{seg['bpm_start']:.1f}" if seg["kind"] == "constant" else f"{seg['bpm_start']:.1f} -> {seg['bpm_end']:.1f}"
        table.add_row(f"{seg['start_s']:.2f} s", f"{seg['end_s']:.2f} s", f"{seg['start']} - {seg['end']}",
                      seg["kind"], bpm, seg["meter"])
    console.print(table)
    if tm["changes_s"]:
        console.print("sudden tempo changes at " + ", ".join(f"{t:.2f} s" for t in tm["changes_s"]))
    console.print()


def print_feel(console: Console, feel: dict | None, grid: dict) -> None:
    if not feel:
        return
    swing = f" {feel['swing_pct']:.0f} %" if feel["kind"] == "swing" else ""
    others = ", ".join(f"{c['grid']}{' swing ' + format(c['swing_pct'], '.0f') + ' %' if c['swing_pct'] != 50 else ''}"
                       f" {c['fit']:.2f}" for c in feel["candidates"][:4])
    line = f"feel: {feel['kind']}{swing}; best grid {feel['grid']}" + (
        f" --swing {feel['swing_pct']:.0f}" if feel["swing_pct"] != 50 else "") + f" (fit {feel['fit']:.2f}; {others})"
    if feel["grid"] != grid["resolution"] or abs(feel["swing_pct"] - grid["swing_pct"]) >= 3:
        line += f" [yellow]- the grid used is {grid['resolution']}" + (
            f" swing {grid['swing_pct']:g} %" if grid["swing_pct"] != 50 else "") + "[/]"
    console.print(line)


def print_fit(console: Console, fit: dict | None) -> None:
    if not fit:
        return
    if fit["fits"]:
        console.print(f"grid fit: ok ({fit['far']} of {fit['n_hits']} hits more than a third of a step off)\n")
        return
    console.print(f"[red]grid fit: the grid does not fit the playing[/]: {'; '.join(fit['reasons'])}")
    console.print(f"  {fit['suggestion']}\n")


def print_worst(console: Console, fit: dict | None) -> None:
    """The largest moves of an edit, so that a bad one is seen before it is heard."""
    if not fit or not fit.get("worst_moves"):
        return
    table = Table(title="Largest moves", title_justify="left", show_edge=False)
    for col in ("bar|beat", "time s", "shift ms", "stems"):
        table.add_column(col, justify="right" if col in ("time s", "shift ms") else "left")
    for m in fit["worst_moves"]:
        table.add_row(m["bar_beat"], f"{m['time_s']:.3f}", f"{m['shift_ms']:+.1f}", ", ".join(m["stems"]))
    console.print(table)


def print_align(console: Console, doc: dict, out_dir) -> None:
    counts = f"{doc['n_hits']} hits, {doc['n_hits_moved']} moved"
    held = [f"{doc[key]} {word}" for key, word in (("n_edits_capped", "capped"), ("n_edits_excluded", "excluded"),
                                                    ("n_edits_locked", "locked"))
            if doc.get(key)]
    if held:
        counts += f" ({', '.join(held)} edits)"
    table = Table(title=f"Timing before -> after ({counts}, engine {doc['engine']})",
                  title_justify="left", show_edge=False)
    for col in ("stem", "hits", "mean |dev| ms", "p95 |dev| ms", "max |dev| ms"):
        table.add_column(col, justify="left" if col == "stem" else "right")
    for stem, before in doc["before"].items():
        after = doc["after"][stem]
        table.add_row(stem, str(before["n_hits"]),
                      f"{before['mean_abs_ms']:.1f} -> [bold]{after['mean_abs_ms']:.1f}[/]",
                      f"{before['p95_abs_ms']:.1f} -> [bold]{after['p95_abs_ms']:.1f}[/]",
                      f"{before['max_abs_ms']:.1f} -> [bold]{after['max_abs_ms']:.1f}[/]")
    console.print(table)
    print_worst(console, doc.get("grid_fit"))
    source = doc.get("tempo_source", "given")
    tempo = (f"tempo {doc['tempo_bpm']:.2f} BPM" if source in ("given", "estimated")
             else f"tempo map ({_SOURCE.get(source, source)}), median {doc['tempo_bpm']:.2f} BPM")
    console.print(f"{tempo}, grid {doc.get('grid', '1/16')}, first slot at {doc['grid_offset_s']:.4f} s, "
                  f"{doc['n_flams']} flams (see flam_report.json)")
    check = doc.get("self_check")
    if check:
        line = f"self-check: {check['checked_edits']} edits checked"
        if check["failed_edits"]:
            kinds = ", ".join(f"{n} {why}" for why, n in check["failures"].items())
            line += (f", [yellow]{check['failed_edits']} failed[/] ({kinds}): {check['reverted_one_piece']} rendered "
                     f"as one piece, {check['reverted_unmoved']} left unmoved (see edits.json)")
            if check["still_failing"]:
                line += f", [red]{check['still_failing']} still failing[/]"
        else:
            line += ", all passed"
        console.print(line)
    if doc.get("drums_kept"):
        for drum, why in doc["drums_kept"].items():
            console.print(f"--flams: {drum} kept with its hits: {why}")
    if doc["dry_run"]:
        console.print("dry run: nothing written")
    else:
        console.print(f"wrote {len(doc['outputs'])} files to {out_dir}/")


_STATUS_STYLE = {"moved": "", "zero": "dim", "excluded": "dim", "capped": "yellow", "locked": "cyan"}


def print_edits(console: Console, edits: list[dict]) -> None:
    """The --dry-run preview: every edit, where it is, what it moves and by how much."""
    table = Table(title=f"Edits ({len(edits)})", title_justify="left", show_edge=False)
    for col in ("bar|beat|tick", "time s", "stems", "shift ms", "wanted ms", "status"):
        table.add_column(col, justify="right" if col in ("time s", "shift ms", "wanted ms") else "left")
    for e in edits:
        shift = f"{e['shift_ms']:+.2f}"
        if e.get("drum_shifts_ms"):
            shift += " (" + ", ".join(f"{d} {v:+.2f}" for d, v in e["drum_shifts_ms"].items()) + ")"
        style = _STATUS_STYLE.get(e["status"], "")
        status = f"[{style}]{e['status']}[/]" if style else e["status"]
        table.add_row(e["position"], f"{e['time_s']:.3f}", ", ".join(e["stems"]), shift,
                      f"{e['wanted_shift_ms']:+.2f}", status)
    console.print(table)
    console.print()


def print_batch(console: Console, results: list[dict]) -> None:
    table = Table(title="Batch", title_justify="left", show_edge=False)
    for col in ("session", "status", "BPM", "hits", "p95 before -> after ms", "detail"):
        table.add_column(col, justify="right" if col in ("BPM", "hits") else "left")
    for r in results:
        if r["status"] != "ok":
            table.add_row(r["session"], "[red]failed[/]", "", "", "", r.get("error", ""))
            continue
        p95_before = max((v["p95_abs_ms"] for v in r["before"].values()), default=0.0)
        p95_after = max((v["p95_abs_ms"] for v in r["after"].values()), default=0.0)
        status = "[green]ok[/] (done before)" if r.get("resumed") else "[green]ok[/]"
        table.add_row(r["session"], status, f"{r['tempo_bpm']:.2f}", str(r["n_hits"]),
                      f"{p95_before:.1f} -> {p95_after:.1f}", f"{r['n_flams']} flams")
    console.print(table)
    failed = sum(r["status"] != "ok" for r in results)
    console.print(f"{len(results) - failed} ok, {failed} failed")
