"""Pooling per-session results into tables, RESULTS.md, the residual plot and the stdout summary."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from beatfix import evaluation as ev

from harness import ANALYSED, EDITED

DRUM_ORDER = ("kick", "snare", "hat", "hat_open", "tom_high", "tom_mid", "tom_low", "ride", "crash")
MAX_LISTED = 25


def _ok(sessions, engine):
    return [s["engines"][engine] for s in sessions if s["engines"].get(engine, {}).get("status") == "ok"]


def _pct(values, q):
    v = np.abs(np.asarray(values, dtype=float))
    return float(np.percentile(v, q)) if v.size else math.nan


def pool(sessions: list[dict]) -> dict:
    """Per engine: the headline numbers over all sessions (hits pooled, rates per minute of audio)."""
    out = {}
    for engine in EDITED:
        runs = _ok(sessions, engine)
        if not runs:
            reasons = {s["engines"].get(engine, {}).get("error", "") for s in sessions}
            status = {s["engines"].get(engine, {}).get("status", "") for s in sessions}
            out[engine] = {"status": "/".join(sorted(status)) or "not run", "error": "; ".join(sorted(reasons))}
            continue
        res = np.concatenate([np.asarray(r["residuals_ms"], dtype=float) for r in runs])
        # The grid's phase is a constant per session an engine cannot observe exactly; this shows what is left.
        centred = np.concatenate([np.asarray(r["residuals_ms"]) - np.median(r["residuals_ms"]) for r in runs
                                  if r["residuals_ms"]])
        lags = np.concatenate([np.asarray(r["lag_changes_ms"], dtype=float) for r in runs])
        minutes = sum(r["duration_s"] for r in runs) / 60.0
        n_hits = sum(r["n_hits"] for r in runs)
        per_drum = {}
        drums = np.concatenate([np.asarray(r["residual_drums"], dtype=object) for r in runs])
        for d in DRUM_ORDER:
            if np.any(drums == d):
                per_drum[d] = _pct(res[drums == d], 95)
        row = {
            "status": "ok", "sessions": len(runs), "failed": len(sessions) - len(runs),
            "p50_ms": _pct(res, 50), "p95_ms": _pct(res, 95), "max_ms": float(np.max(np.abs(res))) if res.size else math.nan,
            "p95_centred_ms": _pct(centred, 95),
            "lost_pct": 100.0 * sum(len(r["lost"]) for r in runs) / max(1, n_hits),
            "lost_uncovered_pct": 100.0 * sum(len(r["lost_uncovered"]) for r in runs)
            / max(1, sum(r["n_uncovered"] for r in runs)),
            "lag_p95_ms": _pct(lags, 95) if lags.size else math.nan, "lag_max_ms": _pct(lags, 100) if lags.size else math.nan,
            "clicks_per_min": sum(len(r["clicks_s"]) for r in runs) / minutes,
            "double_per_min": sum(len(r["double_attacks_s"]) for r in runs) / minutes,
            "bumps_per_min": sum(len(r["bumps_s"]) for r in runs) / minutes,
            "spectral_close": float(np.nanmean([r["spectral_rel"]["close"] for r in runs])),
            "spectral_follow": float(np.nanmean([r["spectral_rel"]["follow"] for r in runs])),
            "per_drum_p95": per_drum, "residuals": res, "centred": centred,
        }
        if engine in ANALYSED:
            row["x_realtime"] = sum(r["duration_s"] for r in runs) / sum(r["wall_s"] for r in runs)
            row["phase_error_ms"] = float(np.mean([abs(r["grid_phase_error_ms"]) for r in runs]))
        if engine == "oracle":
            row["edit_x_realtime"] = sum(r["duration_s"] for r in runs) / sum(r["edit_s"] for r in runs)
        out[engine] = row
    return out


def pool_quality(sessions: list[dict]) -> dict:
    out = {}
    for engine in ANALYSED:
        counts = [s["quality"][engine] for s in sessions if s["quality"].get(engine, {}).get("status") == "ok"]
        if counts:
            out[engine] = ev.quality_rates(counts)
            out[engine]["sessions"] = len(counts)
            out[engine]["metrical_errors"] = sum(
                metrical_error(c["tempo_bpm"], s["bpm"]) is not None
                for s in sessions for c in [s["quality"].get(engine, {})] if c.get("status") == "ok")
    return out


METRICAL_RATIOS = {"×2": 2.0, "×1/2": 0.5, "×3/2": 1.5, "×2/3": 2 / 3, "×3": 3.0, "×1/3": 1 / 3}


def metrical_error(found_bpm: float, true_bpm: float) -> str | None:
    """The ratio's name when a tempo is a metrical relative of the true one (half, double, 3:2...), within 3 %."""
    for name, ratio in METRICAL_RATIOS.items():
        if abs(math.log(found_bpm / (true_bpm * ratio))) < 0.03:
            return name
    return None


def _f(x, digits=2, suffix=""):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}{suffix}"


def engine_table(pooled: dict) -> list[str]:
    lines = ["| engine | p50 ms | p95 ms | max ms | p95 ms, offset removed | lost / wrong slot % "
             "| cymbal attacks lost % | lag change p95 ms | clicks /min | double attacks /min | bumps /min "
             "| spectral dist. close (rel.) | spectral dist. OH+room (rel.) | x realtime |",
             "|" + "---|" * 14]
    for engine in EDITED:
        row = pooled[engine]
        if row["status"] != "ok":
            lines.append(f"| {engine} | {row['status']}: {row['error'][:120]} |" + " |" * 13)
            continue
        speed = _f(row.get("x_realtime"), 1, "×")
        if engine == "oracle":
            speed = f"(edit only {row['edit_x_realtime']:.0f}×)"
        failed = f" ({row['failed']} failed)" if row.get("failed") else ""
        lines.append(
            f"| {engine}{failed} | {_f(row['p50_ms'])} | {_f(row['p95_ms'])} | {_f(row['max_ms'])} "
            f"| {_f(row['p95_centred_ms'])} | {_f(row['lost_pct'])} | {_f(row['lost_uncovered_pct'])} "
            f"| {_f(row['lag_p95_ms'], 3)} | {_f(row['clicks_per_min'])} | {_f(row['double_per_min'])} "
            f"| {_f(row['bumps_per_min'])} | {_f(row['spectral_close'])} | {_f(row['spectral_follow'])} | {speed} |")
    return lines


def drum_table(pooled: dict) -> list[str]:
    drums = [d for d in DRUM_ORDER if any(d in pooled[e].get("per_drum_p95", {}) for e in EDITED)]
    lines = ["| engine | " + " | ".join(drums) + " |", "|" + "---|" * (len(drums) + 1)]
    for engine in EDITED:
        per = pooled[engine].get("per_drum_p95", {})
        if per:
            lines.append(f"| {engine} | " + " | ".join(_f(per.get(d)) for d in drums) + " |")
    return lines


def quality_table(quality: dict) -> list[str]:
    lines = ["| engine | hit F1 (5 ms) | precision | recall | mean onset error ms | tempo error % (mean / max) "
             "| metrical tempo errors (×2, ×1/2, ×3/2...) | bleed false-trigger rate | other false triggers | missed soft ghost notes |",
             "|" + "---|" * 10]
    for engine in ANALYSED:
        q = quality.get(engine)
        if not q:
            lines.append(f"| {engine} | not available |" + " |" * 8)
            continue
        lines.append(
            f"| {engine} | {q['f1']:.3f} | {q['precision']:.3f} | {q['recall']:.3f} | {_f(q['onset_error_ms'], 3)} "
            f"| {_f(q['tempo_error_pct'])} / {_f(q['tempo_error_max_pct'])} | {q['metrical_errors']} of {q['sessions']} "
            f"| {q['bleed_false_rate']:.3f} | {q['other_false_rate']:.3f} "
            f"| {q['soft_missed']} of {q['soft_ghosts']} ({100 * q['soft_missed_rate']:.0f} %) |")
    return lines


def session_table(sessions: list[dict]) -> list[str]:
    engines = [e for e in ("classic", "neural", "oracle") if any(s["engines"].get(e, {}).get("status") == "ok"
                                                                   for s in sessions)]
    head = "| seed | style | BPM | kHz | spread ms | layout | none p95 |"
    for e in engines:
        head += f" {e} p95 / lost / dbl+clk" + (" / phase ms" if e in ANALYSED else "") + " |"
    lines = [head, "|" + "---|" * (7 + len(engines))]
    for s in sessions:
        none = s["engines"]["none"]
        row = (f"| {s['seed']} | {s['style']} | {s['bpm']:g} | {s['sample_rate'] / 1000:g} | {s['spread_ms']:g} "
               f"| {s['layout']} | {_f(_pct(none['residuals_ms'], 95))} |")
        for e in engines:
            r = s["engines"].get(e, {})
            if r.get("status") != "ok":
                row += f" {r.get('status', '–')} |"
                continue
            cell = (f" {_f(_pct(r['residuals_ms'], 95))} / {len(r['lost'])} / "
                    f"{len(r['double_attacks_s']) + len(r['clicks_s'])}")
            if e in ANALYSED:
                cell += f" / {r['grid_phase_error_ms']:+.1f}"
            row += cell + " |"
        lines.append(row)
    return lines


def analysis_session_table(sessions: list[dict]) -> list[str]:
    engines = [e for e in ANALYSED if any(s["quality"].get(e, {}).get("status") == "ok" for s in sessions)]
    lines = ["| seed | style | true BPM | " + " | ".join(f"{e} BPM | {e} F1 | {e} bleed / other false"
                                                     for e in engines) + " |",
             "|" + "---|" * (3 + 3 * len(engines))]
    for s in sessions:
        row = f"| {s['seed']} | {s['style']} | {s['bpm']:g} |"
        for e in engines:
            c = s["quality"].get(e, {})
            if c.get("status") != "ok":
                row += f" {c.get('status', '–')} | | |"
                continue
            q = ev.quality_rates([c])
            tag = metrical_error(c["tempo_bpm"], s["bpm"])
            row += (f" {c['tempo_bpm']:.2f}" + (f" ({tag})" if tag else "") + f" | {q['f1']:.3f} "
                    f"| {c['bleed_false']} / {c['fp'] - c['bleed_false']} |")
        lines.append(row)
    return lines


def findings(sessions: list[dict]) -> list[str]:
    """Where each engine went wrong, with seeds and times, for whoever debugs it."""
    lines = []
    for engine in ("classic", "neural", "oracle"):
        items = []
        for s in sessions:
            r = s["engines"].get(engine, {})
            if r.get("status") == "failed":
                items.append(f"seed {s['seed']}: **failed**: {r['error']}")
                continue
            if r.get("status") != "ok":
                continue
            for l in r["lost"]:
                items.append(f"seed {s['seed']}: {l['drum']} hit at {l['time_s']:.3f} s lost or on a wrong slot "
                             f"(best match {l['match']:.2f})")
            for e in r.get("events", []):
                items.append(f"seed {s['seed']}: {e['kind']} at {e['time_s']:.3f} s (output; near {e['near']})")
            for l in r["lost_uncovered"]:
                items.append(f"seed {s['seed']}: {l['drum']} (no close mic) attack at {l['time_s']:.3f} s "
                             "chopped or displaced (not found in the overheads)")
            big = [c for c in r["lag_changes_ms"] if abs(c) > 0.01]
            if big:
                items.append(f"seed {s['seed']}: {len(big)} close-to-overhead lags changed by > 0.01 ms "
                             f"(max {max(big, key=abs):+.3f} ms)")
            res = np.abs(np.asarray(r["residuals_ms"]))
            if res.size and engine in ANALYSED and float(np.max(res)) > 15.0:
                worst = int(np.argmax(res))
                items.append(f"seed {s['seed']}: worst residual {res[worst]:.1f} ms ({r['residual_drums'][worst]}, "
                             f"slot at {r['residual_times_s'][worst]:.3f} s)")
        for s in sessions:
            c = s["quality"].get(engine, {})
            for stem, (n_own, found, bleed, other) in c.get("by_stem", {}).items():
                if bleed + other >= max(5, 0.2 * n_own):
                    items.append(f"seed {s['seed']} (report analysis): {stem} accepted {bleed} bleed and {other} "
                                 f"other false triggers against {n_own} own hits ({found} found)")
                if n_own >= 5 and found < 0.8 * n_own:
                    items.append(f"seed {s['seed']} (report analysis): {stem} found only {found} of {n_own} own hits")
            tag = metrical_error(c["tempo_bpm"], s["bpm"]) if c.get("status") == "ok" else None
            if tag:
                items.append(f"seed {s['seed']} (report analysis, {s['style']}): tempo {c['tempo_bpm']:.2f} BPM, "
                             f"{tag} the true {s['bpm']:g}")
        if items:
            lines.append(f"**{engine}** ({len(items)} items" + (f", first {MAX_LISTED} shown" if len(items) > MAX_LISTED
                                                                  else "") + "):")
            lines += [f"- {i}" for i in items[:MAX_LISTED]]
            lines.append("")
    return lines


def plot_residuals(pooled: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    colours = {"none": "#888888", "classic": "#1f77b4", "neural": "#d62728", "oracle": "#2ca02c", "ideal": "#9467bd"}
    bins = np.linspace(-40, 40, 161)
    for engine in EDITED:
        row = pooled[engine]
        if row["status"] != "ok" or not len(row["residuals"]):
            continue
        res = row["residuals"]
        left.hist(np.clip(res, -40, 40), bins=bins, histtype="step", lw=1.4, color=colours[engine],
                  label=f"{engine} (p95 {row['p95_ms']:.2f} ms)")
        a = np.sort(np.maximum(np.abs(res), 1e-3))
        right.plot(a, np.arange(1, a.size + 1) / a.size, color=colours[engine], lw=1.6, label=engine)
        if engine in ANALYSED:
            c = np.sort(np.maximum(np.abs(row["centred"]), 1e-3))
            right.plot(c, np.arange(1, c.size + 1) / c.size, color=colours[engine], lw=1.2, ls="--",
                       label=f"{engine}, session offset removed")
    left.set_yscale("log")
    left.set_xlabel("residual to the slot, ms (landed - slot - mic delay; clipped at ±40)")
    left.set_ylabel("hits")
    left.legend(fontsize=8)
    left.set_title("Close-mic hits, all sessions")
    right.set_xscale("log")
    right.set_xlim(1e-3, 100)
    right.set_xlabel("|residual|, ms")
    right.set_ylabel("share of hits at or below")
    right.axvline(1.0, color="k", lw=0.5, ls=":")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    right.set_title("Cumulative |residual|")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def in_short(pooled: dict, quality: dict, minutes: float) -> list[str]:
    """A few sentences of the headline numbers, written from the numbers (nothing hand-typed to go stale)."""
    ok = {e: r for e, r in pooled.items() if r["status"] == "ok"}
    lines = []
    if "none" in ok:
        parts = [f"{e} {ok[e]['p95_ms']:.1f} ms ({ok[e]['p95_centred_ms']:.1f} ms with the session's constant "
                 "offset removed)" for e in ("classic", "neural") if e in ok]
        lines.append(f"- p95 |residual|: the input has {ok['none']['p95_ms']:.1f} ms; " + "; ".join(parts)
                     + (f"; one shift per hit with perfect analysis (oracle) reaches {ok['oracle']['p95_ms']:.1f} ms"
                        if "oracle" in ok else "") + ".")
    edited = [e for e in ("classic", "neural", "oracle") if e in ok]
    if edited:
        lost = ", ".join(f"{e} {ok[e]['lost_pct']:.2f} %" for e in edited)
        lag = max(ok[e]["lag_max_ms"] for e in edited)
        lines.append(f"- Close-mic hits lost or on a wrong slot: {lost}. Largest close-to-overhead lag change: "
                     f"{lag:.4f} ms.")
        art = "; ".join(f"{e} {round(ok[e]['clicks_per_min'] * minutes)} clicks, "
                        f"{round(ok[e]['double_per_min'] * minutes)} double attacks, "
                        f"{round(ok[e]['bumps_per_min'] * minutes)} bumps" for e in edited)
        lines.append(f"- Seam artifacts in {minutes:.1f} min of audio: {art} (each listed below with its seed).")
    for e, q in quality.items():
        lines.append(f"- {e} analysis without --bpm: hit F1 {q['f1']:.3f}, bleed false triggers "
                     f"{q['bleed_false_rate']:.3f} per hit, {q['soft_missed']} of {q['soft_ghosts']} soft ghost "
                     f"notes missed, {q['metrical_errors']} of {q['sessions']} tempos off by a metrical ratio.")
    for e in ("classic", "neural"):
        if e in ok:
            lines.append(f"- {e}: {ok[e]['x_realtime']:.1f}× realtime (analysis + edit) on this machine.")
    return lines


def summary_lines(pooled: dict, quality: dict) -> list[str]:
    out = [f"{'engine':8s} {'p50':>6s} {'p95':>6s} {'max':>6s} {'p95c':>6s} {'lost%':>6s} {'lag95':>6s} "
           f"{'clk/m':>6s} {'dbl/m':>6s} {'spec':>5s} {'xRT':>6s}   (ms; p95c: session offset removed)"]
    for engine in EDITED:
        r = pooled[engine]
        if r["status"] != "ok":
            out.append(f"{engine:8s} {r['status']}: {r['error'][:80]}")
            continue
        out.append(f"{engine:8s} {r['p50_ms']:6.2f} {r['p95_ms']:6.2f} {r['max_ms']:6.1f} {r['p95_centred_ms']:6.2f} "
                   f"{r['lost_pct']:6.2f} "
                   f"{r['lag_p95_ms']:6.3f} {r['clicks_per_min']:6.2f} {r['double_per_min']:6.2f} "
                   f"{r['spectral_close']:5.2f} {_f(r.get('x_realtime'), 1):>6s}")
    for engine, q in quality.items():
        out.append(f"{engine} analysis: F1 {q['f1']:.3f}, onset err {q['onset_error_ms']:.3f} ms, tempo err "
                   f"{q['tempo_error_pct']:.2f} %, bleed false {q['bleed_false_rate']:.3f}, soft ghosts missed "
                   f"{q['soft_missed']}/{q['soft_ghosts']}")
    return out
