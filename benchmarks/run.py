"""beatfix quality benchmark: one command, held-out sessions, every engine, measured from the audio.

    make bench                      # = .venv/bin/python benchmarks/run.py
    .venv/bin/python benchmarks/run.py --quick          # 2 sessions, a smoke test
    .venv/bin/python benchmarks/run.py --sessions 6 --out /tmp/bench

Renders the held-out sessions (benchmarks/sessions.py: seeds >= 10000, the
held-out fluidgm kit), runs none / classic / neural / oracle / ideal on each
(benchmarks/harness.py), measures every output with beatfix.evaluation, and
writes RESULTS.md, results.json and residuals.png into --out (default:
benchmarks/). About 6-8 minutes for the 12 sessions on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # run from a checkout, beatfix not installed

import numpy as np  # noqa: E402

import report  # noqa: E402
from harness import ANALYSED, run_session  # noqa: E402
from machine import code_version, cpu_model, usable_cores  # noqa: E402
from sections import marked_sections, rounded  # noqa: E402
from sessions import DURATION_S, KIT_DIR, LAYOUTS, SESSIONS, bench_kit, bench_sessions  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/run.py"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=len(SESSIONS), help=f"sessions to run, 1-{len(SESSIONS)}")
    p.add_argument("--quick", action="store_true", help="2 sessions, for a smoke test")
    p.add_argument("--out", type=Path, default=HERE, help="folder for RESULTS.md, results.json, residuals.png")
    p.add_argument("--engines", default=",".join(ANALYSED), help="analysing engines to run (classic,neural)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs of the CLI")
    args = p.parse_args(argv)
    if args.quick:
        args.sessions = 2
    if not 1 <= args.sessions <= len(SESSIONS):
        p.error(f"--sessions {args.sessions}: use 1 to {len(SESSIONS)}")
    return args


def machine() -> dict:
    cpu, usable = cpu_model(), usable_cores()
    import numpy
    import scipy
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "platform": platform.platform(),
            "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None}


def overlap_check(seeds: list[int]) -> str:
    """Whether any training session on this machine (data/**/truth.json) shares a seed or the kit with ours."""
    truths = sorted(REPO.glob("data/**/truth.json"))
    if not truths:
        return "no training sessions found under data/ to check against"
    found, kits = [], set()
    for path in truths:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        kits.add(doc.get("kit", "?"))
        found.append(int(doc.get("seed", -1)))
    shared = sorted(set(found) & set(seeds))
    held_kit = any(KIT_DIR.name == k.split("+")[0] for k in kits)
    return (f"checked against the {len(found)} sessions under data/ (seeds {min(found)} and up, kits "
            f"{', '.join(sorted(kits))}): " + ("**seeds shared: " + ", ".join(map(str, shared)) + "**" if shared
                                                else "no seed shared")
            + ("; **the held-out kit was used in training**" if held_kit else "; the held-out kit is not among them"))


def load_engines(names: list[str]) -> dict:
    """Engine name -> EngineChoice, or a string saying why it is not available."""
    from beatfix.engine import choose_engine

    out = {}
    for name in names:
        try:
            choice = choose_engine(name, "cpu")
            out[name] = choice
        except Exception as exc:  # the neural engine may not be ready: the benchmark still runs
            out[name] = f"{type(exc).__name__}: {exc}".strip()
    return out


# Runs the CLI in a fresh process and records that process's own peak RSS when it exits. VmHWM is
# the peak of this process image; ru_maxrss would also count the benchmark's pages it was forked from.
_MEASURE = r"""
import json, os, resource, runpy, sys, time
sys.argv = ["beatfix"] + sys.argv[2:]
t0, code = time.perf_counter(), 0
try:
    runpy.run_module("beatfix", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code or 0
try:
    peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(os.environ["BENCH_RSS_OUT"], "w") as fh:
    json.dump({"maxrss_kb": peak_kb, "exit": code, "wall_s": time.perf_counter() - t0}, fh)
"""


def peak_memory(engines: dict, bench) -> dict:
    """Peak RSS of ``python -m beatfix align`` on one session, per available engine, in a fresh process."""
    from dataclasses import replace

    from beatfix.synth import render_session, write_session

    kit, _ = bench_kit(bench.spec.sample_rate)
    out = {}
    with tempfile.TemporaryDirectory(prefix="beatfix-bench-") as tmp:
        tmp = Path(tmp)
        paths = [p for p in write_session(tmp / "in", render_session(replace(bench.spec, kit=kit.name), kit))
                 if p.suffix == ".wav"]
        for name in ANALYSED:
            if isinstance(engines.get(name), str) or engines.get(name) is None:
                continue
            rss = tmp / f"{name}.json"
            cmd = [sys.executable, "-c", _MEASURE, "-", "align", *map(str, paths), "--bpm", f"{bench.spec.bpm:g}",
                   "--grid", bench.grid, "--engine", name, "--device", "cpu", "-o", str(tmp / f"out_{name}"),
                   "--force", "--json"]
            env = {**os.environ, "BENCH_RSS_OUT": str(rss), "PYTHONPATH": str(REPO)}
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not rss.exists():
                out[name] = {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}
                continue
            info = json.loads(rss.read_text())
            out[name] = {"peak_mb": info["maxrss_kb"] / 1024.0, "wall_s": info["wall_s"], "exit": info["exit"]}
    return out


def write_results(path: Path, sessions, pooled, quality, memory, info) -> None:
    m = info["machine"]
    lines = [
        "# beatfix benchmark results",
        "",
        f"Written by `{info['command']}` on {info['date']} (beatfix at {info['code']}) in "
        f"{info['elapsed_s'] / 60:.1f} min "
        f"({len(sessions)} sessions of {DURATION_S:g} s, {sum(s['duration_s'] for s in sessions) / 60:.1f} min of audio).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable, shared with other work; load average "
        f"at start {', '.join(f'{x:.1f}' for x in m['load_avg'] or [])}, at the end "
        f"{', '.join(f'{x:.1f}' for x in info.get('load_avg_end') or [])}), Python {m['python']}, torch {m['torch']} "
        f"(installed; the hit model runs through numpy on a CPU), numpy {m['numpy']}, scipy {m['scipy']}; {m['platform']}.",
        "",
        f"Data: held-out seeds {sessions[0]['seed']}-{sessions[-1]['seed']}, held-out kit "
        f"`{KIT_DIR.relative_to(REPO)}` only (`{sessions[0]['kit']}`"
        + (f"; drums filled from the procedural kit: {', '.join(sessions[0]['kit_filled'])}" if sessions[0]['kit_filled']
           else "; it has every drum, none filled from the procedural kit") + "). "
        "8 stems per session (layouts: " + "; ".join(f"{k} = {', '.join(v[0])}" for k, v in LAYOUTS.items())
        + "), close mics with bleed, overheads 2-5 ms late, a reverberant room 8-20 ms late. Training data "
        + info["overlap"] + ".",
        "",
        "## In short",
        "",
        *report.in_short(pooled, quality, sum(s["duration_s"] for s in sessions) / 60.0),
        "",
        "## Alignment: residual of every close-mic hit after the edit",
        "",
        "Engines run on the same stems. classic and neural get what an engineer with a click-synced DAW "
        "session gives: the true BPM and bar 1's time (`--bpm`, `--grid-offset`), the grid "
        "(1/8T for the shuffle, else 1/16) and the session's swing, and edit at strength 100. "
        "Without `--grid-offset` the grid's phase is fitted to the playing and follows the drummer's "
        "average lean against the click, which no editor can see in the audio: that case is the "
        "'offset removed' column of earlier runs and the `report` analysis below.",
        "",
        *report.engine_table(pooled),
        "",
        "### p95 |residual| per drum, ms",
        "",
        *report.drum_table(pooled),
        "",
        "## Analysis quality (`report`: tempo estimated, no --bpm)",
        "",
        *report.quality_table(quality),
        "",
        "Per session (false triggers are counts of accepted onsets):",
        "",
        *report.analysis_session_table(sessions),
        "",
        "## Per session",
        "",
        "p95 |residual| ms / close-mic hits lost / double attacks + clicks; phase: the engine's grid minus the true "
        "grid, ms (an offset the engine moves every hit by).",
        "",
        *report.session_table(sessions),
        "",
        "| seed | stems | channels | strokes | hits not measurable |",
        "|---|---|---|---|---|",
        *[f"| {s['seed']} | {', '.join(s['stems'])} | {s['n_channels']} | {s['n_strokes']} | {s['unmeasurable']} |"
          for s in sessions],
        "",
        "## Speed and memory",
        "",
        "x realtime = audio duration / wall time of analyse_session + align_session in this process (model "
        "loaded once, not counted). Peak memory: `python -m beatfix align` on the first session in a fresh "
        "process (its peak resident set, VmHWM), with its end-to-end wall time (imports and model load included).",
        "",
        "| engine | x realtime | analysis s / session | edit s / session | CLI peak memory MB | CLI wall s |",
        "|---|---|---|---|---|---|",
    ]
    for name in ANALYSED:
        row = pooled.get(name, {})
        runs = report._ok(sessions, name)
        mem = memory.get(name, {})
        if not runs:
            lines.append(f"| {name} | not available | | | | |")
            continue
        lines.append(f"| {name} | {row['x_realtime']:.1f}× | {np.mean([r['analysis_s'] for r in runs]):.2f} "
                     f"| {np.mean([r['edit_s'] for r in runs]):.2f} | {report._f(mem.get('peak_mb'), 0)} "
                     f"| {report._f(mem.get('wall_s'), 1)} |" + (f" {mem['error']}" if 'error' in mem else ""))
    lines += ["", "## What the engines got wrong (from the audio; seeds and times to reproduce)", "",
              *(report.findings(sessions) or ["Nothing: no lost hits, double attacks, clicks or lag changes."]),
              "", NOTES, ""]
    # Sections other scripts own (speed.py, sloppy.py, ...) survive a rerun of this one.
    kept = marked_sections(path)
    path.write_text("\n".join(lines) + "".join("\n" + k + "\n" for k in kept))


NOTES = """## How to read this

* **Residual**: where a close-mic hit's attack landed in the output minus where it belongs (its slot's
  time plus that mic's delay for that drum, so the ideal render scores ~0), re-found in the output
  audio by normalised cross-correlation of the hit's own one-shot, high-passed at 2 kHz so a ringing
  tom body cannot pull the match, searched within ± half a grid step of the slot. Pooled over all
  close-mic hits of all sessions; deliberate flams' grace notes are left out (they should keep their
  distance to the main stroke, not go to the grid). **none** shows the drummer's own timing.
* **Offset removed**: the same with each session's median residual subtracted. Without a click or
  a DAW grid an editor cannot know where the "true" grid is, only fit one to the playing: a drummer
  who sits 8 ms ahead of the click all take long gets a grid fitted 8 ms early, and every hit lands
  8 ms off the true slots while being perfectly tight. The per-session "phase" column is that
  constant for each engine; it matches the drummer's own mean deviation (the none row's median) to
  about 1 ms, so it says nothing about the engine. The offset-removed p95 is the fair comparison
  between engines; the plain p95 is what a user aligning to an existing click would get. Also
  unobservable: each close mic's own acoustic delay (0-1 ms), a floor of ~0.5 ms for any engine.
* **oracle** is the limit of one shift per hit (all drums of a slot move together): drums of one slot
  that were played apart stay apart, so its residual is not 0. **ideal** is the limit of any editor.
* **Lost / wrong slot**: a close-mic hit not found within ± half a step of its slot (weak match or
  best match at the edge): its attack was cut apart, dropped, or moved to another slot. Hits that are
  not measurable even in the input (a ghost note under hi-hat bleed) are counted in the per-session
  table and left out everywhere. **Cymbal attacks lost**: the same for strokes without a close mic
  (ride, crash), found in the overhead that hears them loudest: collection mode only cuts at close-mic
  hits, so a cymbal played just before a hit's cut can be trimmed away or played twice.
* **Lag change**: per hit and overhead channel, the lag from the close-mic attack to the same attack
  in the overhead, output minus input. Collection mode keeps it at 0 exactly.
* **Clicks / double attacks / bumps**: the same strokes are rendered again by the synthesizer, each
  where it landed; the output's > 4 kHz energy in 1 ms frames is compared with that reference. A click
  is a spike (<= 3 ms) more than 6 dB above the reference and above the output's own surroundings,
  and not already in the input where that moment was copied from; a double attack is an attack heard
  again (a second strong match of a hit's attack near its landing, or a > 3 ms burst that starts an
  attack the reference lacks); a bump is a > 3 ms burst 6 dB over the reference without a new attack.
  Events within 25 ms on any channels count once (seams are further apart). Per minute of audio.
* **Held out**: the sessions use seeds 10000-10011 and the fluidgm kit (FluidR3 GM "Standard" preset),
  checked at every run against the training sessions on disk (see the data line at the top).
* **Spectral distance**: mean |log-magnitude STFT difference| (dB, 2048-point frames, 80 dB range) to
  the ideal render, divided by the input's own distance to it: 1.0 = no closer to the ideal than the
  input, 0 = the ideal. Close mics and overheads + room separately.
* **Analysis quality**: per close mic, accepted onsets matched one-to-one within 5 ms to the truth
  onsets of its own drums (`onset_sample + delay_samples`). Bleed false trigger: an unmatched onset
  within 5 ms of another drum's arrival in that mic; other false triggers: the rest (e.g. a drum's own
  decay); both per truth hit. Soft ghost notes: snare ghosts with velocity < 0.4, on their main mic.
"""


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    info = {"command": COMMAND + (f" --sessions {args.sessions}" if args.sessions != len(SESSIONS) and not args.quick
                                  else "") + (" --quick" if args.quick else ""),
            "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
            "code": code_version()}
    engines = load_engines([e.strip() for e in args.engines.split(",") if e.strip()])
    for name, choice in engines.items():
        state = choice if isinstance(choice, str) else f"ready ({choice.device})"
        print(f"engine {name}: {state}", flush=True)
    benches = bench_sessions(args.sessions)
    info["overlap"] = overlap_check([b.spec.seed for b in benches])
    sessions = []
    for i, bench in enumerate(benches, 1):
        t0 = time.perf_counter()
        result = run_session(bench, engines)
        sessions.append(result)
        parts = []
        for name in ("none", "classic", "neural", "oracle", "ideal"):
            r = result["engines"].get(name, {})
            if r.get("status") == "ok":
                p95 = report._pct(r["residuals_ms"], 95)
                parts.append(f"{name} p95 {p95:.1f} lost {len(r['lost'])}")
            elif r.get("status") == "failed":
                parts.append(f"{name} FAILED")
        print(f"[{i}/{len(benches)}] seed {bench.spec.seed} {bench.spec.style} {bench.spec.bpm:g} BPM "
              f"({time.perf_counter() - t0:.0f} s): " + ", ".join(parts), flush=True)
    memory = {} if args.no_memory else peak_memory(engines, benches[0])
    pooled = report.pool(sessions)
    quality = report.pool_quality(sessions)
    info["elapsed_s"] = time.perf_counter() - t_start
    info["load_avg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out / "RESULTS.md", sessions, pooled, quality, memory, info)
    report.plot_residuals(pooled, args.out / "residuals.png")
    serialisable = {k: {kk: vv for kk, vv in v.items() if kk not in ("residuals", "centred")}
                    for k, v in pooled.items()}
    (args.out / "results.json").write_text(json.dumps(rounded(
        {"info": info, "pooled": serialisable, "quality": quality, "memory": memory, "sessions": sessions}),
        separators=(",", ":")) + "\n")
    print()
    print("\n".join(report.summary_lines(pooled, quality)))
    for name, m in memory.items():
        print(f"{name} CLI peak memory: " + (f"{m['peak_mb']:.0f} MB" if "peak_mb" in m else str(m)))
    print(f"\nwrote {args.out / 'RESULTS.md'}, residuals.png, results.json in {info['elapsed_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
