"""beatfix speed and memory benchmark: wall time, peak memory and scaling of `beatfix align`.

    make bench-speed                                   # = .venv/bin/python benchmarks/speed.py
    .venv/bin/python benchmarks/speed.py --quick       # small sizes only: a smoke test (~2 min)
    .venv/bin/python benchmarks/speed.py --budget-min 30 --out /tmp/speed

The main case is the one the issue names: a 4-minute session of 8 mono stems at
48 kHz, 24-bit WAV, rendered with beatfix.synth (procedural kit; kick, snare,
hh, tom1, ft, oh_l, oh_r, room). For it the script measures

* the I/O floor: reading every stem to float32 and writing it back as 24-bit
  WAV with soundfile, in one process (no imports or analysis counted);
* `python -m beatfix align STEMS --bpm 120 -o OUT` in a fresh process, for the
  default engine (neural, when models/beatfix-hit-v1 loads; else classic, and
  the report says so) and for classic: wall time from launch to exit (interpreter,
  imports and model load included) and the process's peak resident memory;
* the memory baseline: the same interpreter with the pipeline's libraries
  imported and the model loaded, before any audio;
* where the time and memory go, stage by stage, in one instrumented run per engine.

Then how the cost grows: 1 to 32 minutes at 8 channels and 2 to 16 channels at
2 minutes. Sessions longer than 4 minutes repeat the 4-minute render (whole
bars, so the grid runs on); shorter ones are its first minutes. Every duration
runs for both engines (about 20 minutes in all on a quiet 2-core machine);
channel counts beyond that are skipped, and the report says so, when the time
budget (default 14 minutes) would not hold them.

Writes SPEED.md and speed.json into --out (default: benchmarks/), and the
"Speed and memory (issue 7)" section of RESULTS.md between its markers when
that file exists. Timings on a shared machine vary: every figure comes with the
load average when it was taken, and the main case is run twice (both shown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # run from a checkout, beatfix not installed

from machine import code_version, cpu_model, usable_cores  # noqa: E402
from sections import update_section  # noqa: E402

COMMAND = ".venv/bin/python benchmarks/speed.py"
SAMPLE_RATE = 48000
BPM = 120.0  # 240 s is a whole number of bars at 120 BPM, so repeats keep the grid
BASE_MINUTES = 4
MAIN_MICS = ("kick", "snare", "hh", "tom1", "ft", "overheads", "room")  # 8 mono files
CHANNEL_LAYOUTS = {  # channels -> (mics, stereo room files); 16 channels are 14 files, the two rooms stereo
    2: (("kick", "snare"), False),
    4: (("kick", "snare", "hh", "room"), False),
    8: (MAIN_MICS, False),
    16: (("kick", "kick_out", "snare", "snare_bottom", "hh", "tom1", "tom2", "ft", "ride", "crash", "overheads",
          "room", "room_far"), True),
}
DURATIONS_MIN = (1, 2, 4, 8, 16, 32)
CHANNELS_AT_MIN = 2
TARGET_WALL_S = 60.0
TARGET_FLOOR_RATIO = 10.0


# ----------------------------------------------------------------------------- the machine


def machine() -> dict:
    cpu, usable = cpu_model(), usable_cores()
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    import numpy
    import scipy
    import soundfile

    version = code_version()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "memory_gb": mem_gb,
            "python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
            "libsndfile": soundfile.__libsndfile_version__, "platform": platform.platform(), "beatfix": version}


def load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


# ----------------------------------------------------------------------------- sessions


def render_base(folder: Path) -> dict:
    """The 4-minute, 8-stem session every duration is cut from or repeats; returns its truth."""
    from beatfix.synth import SessionSpec, procedural_kit, render_session, write_session

    spec = SessionSpec(seed=7, sample_rate=SAMPLE_RATE, bpm=BPM, style="rock", duration_s=BASE_MINUTES * 60.0,
                       spread_ms=15.0, n_channels=8, mics=MAIN_MICS)
    rendered = render_session(spec, procedural_kit(SAMPLE_RATE, seed=0))
    write_session(folder, rendered, fmt="WAV", subtype="PCM_24")
    return rendered.truth


def derive(base: Path, folder: Path, minutes: float) -> None:
    """``minutes`` of the base session: its first minutes, or the whole of it repeated; streamed, 24-bit."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    want = int(round(minutes * 60 * SAMPLE_RATE))
    for src in sorted(base.glob("*.wav")):
        data, _ = sf.read(str(src), dtype="float32", always_2d=True)
        with sf.SoundFile(str(folder / src.name), "w", samplerate=SAMPLE_RATE, channels=data.shape[1],
                          format="WAV", subtype="PCM_24") as out:
            left = want
            while left > 0:
                part = data[:left]
                out.write(np.ascontiguousarray(part))
                left -= len(part)


def render_layout(folder: Path, channels: int, minutes: float) -> None:
    from beatfix.synth import SessionSpec, procedural_kit, render_session, write_session

    mics, stereo_rooms = CHANNEL_LAYOUTS[channels]
    spec = SessionSpec(seed=11, sample_rate=SAMPLE_RATE, bpm=BPM, style="rock", duration_s=minutes * 60.0,
                       spread_ms=15.0, n_channels=channels, mics=mics, room_stereo=stereo_rooms)
    write_session(folder, render_session(spec, procedural_kit(SAMPLE_RATE, seed=0)), fmt="WAV", subtype="PCM_24")


def session_size(folder: Path) -> dict:
    import soundfile as sf

    stems = sorted(folder.glob("*.wav"))
    infos = [sf.info(str(p)) for p in stems]
    channels = sum(i.channels for i in infos)
    frames = max(i.frames for i in infos)
    return {"files": len(stems), "channels": channels, "seconds": frames / SAMPLE_RATE,
            "decoded_mb": channels * frames * 4 / 1e6, "disk_mb": sum(p.stat().st_size for p in stems) / 1e6}


# ----------------------------------------------------------------------------- measuring processes

_IO_FLOOR = r"""
import json, sys, time
from pathlib import Path
import soundfile as sf
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
for p in sorted(src.glob("*.wav")):
    info = sf.info(str(p))
    data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    sf.write(str(dst / p.name), data, rate, format=info.format, subtype=info.subtype)
    del data
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

# The pipeline's libraries and, for the neural engine, the model: the memory a run starts from.
_BASELINE = r"""
import json, sys
engine = sys.argv[1]
import numpy, scipy.signal, soundfile, soxr, typer, rich
from beatfix import madmom_adapter
madmom_adapter._onset_network(); madmom_adapter._onset_filterbanks()
if engine != "classic":
    from beatfix.engine import choose_engine
    choose_engine(engine, "cpu")
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print(json.dumps({"peak_mb": int(line.split()[1]) / 1024}))
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _python(code: str, *args: str, timeout: float = 600) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, env=_env(), capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"measurement failed: {r.stderr.strip()[-400:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def io_floor(folder: Path, scratch: Path, repeats: int = 3) -> dict:
    """Median of ``repeats`` read-all + write-all passes (same formats), seconds."""
    times = []
    for _ in range(repeats):
        out = scratch / "io_floor"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        times.append(_python(_IO_FLOOR, folder, out)["seconds"])
        shutil.rmtree(out, ignore_errors=True)
    times.sort()
    return {"seconds": times[len(times) // 2], "all_s": times}


def align(folder: Path, scratch: Path, engine: str) -> dict:
    """``python -m beatfix align`` in a fresh process: wall time (launch to exit) and its peak RSS."""
    out = scratch / f"out_{engine}"
    shutil.rmtree(out, ignore_errors=True)
    stems = sorted(folder.glob("*.wav"))
    cmd = [sys.executable, "-m", "beatfix", "align", *map(str, stems), "--bpm", f"{BPM:g}", "-o", str(out),
           "--engine", engine, "--json"]
    timer = Path("/usr/bin/time").exists()
    stats = scratch / "time.txt"
    if timer:  # GNU time: the peak RSS of exactly this process (its parent is tiny, nothing inherited)
        cmd = ["/usr/bin/time", "-f", "%e %M", "-o", str(stats), *cmd]
    load_before = load()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"align ({engine}) failed with exit {r.returncode}: {r.stderr.strip()[-400:]}")
    peak_mb = None
    if timer:
        peak_mb = int(stats.read_text().split()[-1]) / 1024
    else:  # fall back to the children's maximum (can include pages inherited at fork)
        import resource

        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    doc = json.loads(r.stdout)
    written = sum(1 for p in out.iterdir() if p.suffix == ".wav")
    shutil.rmtree(out, ignore_errors=True)
    return {"wall_s": wall, "peak_mb": peak_mb, "engine": doc["engine"], "n_hits": doc["n_hits"],
            "stems_written": written, "load": load_before}


_PROBE = r"""
import json, os, sys, time
from pathlib import Path
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the align command sets it
engine, folder, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

def reset_peak():  # Linux: VmHWM restarts from the current RSS
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")

t0 = time.perf_counter()
stages, current = [], {"name": "start-up (imports, model, reading the stems)", "t": t0}

def progress(stage, fraction):
    if stage != current["name"]:
        now = time.perf_counter()
        stages.append({"stage": current["name"], "seconds": now - current["t"], "peak_mb": status("VmHWM")})
        reset_peak()
        current.update(name=stage, t=now)

import beatfix
beatfix.align(sorted(folder.glob("*.wav")), out, beatfix.AlignOptions(bpm=120.0, engine=engine, device="cpu"),
              progress=progress)
now = time.perf_counter()
stages.append({"stage": current["name"], "seconds": now - current["t"], "peak_mb": status("VmHWM")})
print(json.dumps({"stages": stages, "total_s": now - t0}))
"""


def probe(folder: Path, scratch: Path, engine: str) -> dict:
    """Seconds and peak RSS of every stage of one run (in-process, after the interpreter started)."""
    out = scratch / f"probe_{engine}"
    shutil.rmtree(out, ignore_errors=True)
    try:
        return _python(_PROBE, engine, folder, out, timeout=1800)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def baseline(engine: str) -> float:
    return _python(_BASELINE, engine)["peak_mb"]


def default_engine() -> tuple[str, str]:
    """("neural", "") when the shipped model loads, else ("classic", why not)."""
    try:
        _python("from beatfix.engine import choose_engine; choose_engine('neural', 'cpu'); print('{}')")
        return "neural", ""
    except RuntimeError as exc:
        return "classic", str(exc).splitlines()[-1]


# ----------------------------------------------------------------------------- the plan


class Budget:
    def __init__(self, minutes: float):
        self.start, self.seconds = time.perf_counter(), minutes * 60.0

    @property
    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


def run(args: argparse.Namespace) -> dict:
    budget = Budget(args.budget_min)
    scratch = Path(tempfile.mkdtemp(prefix="beatfix-speed-"))
    result: dict = {"machine": machine(), "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "load_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                    "command": COMMAND + (" --quick" if args.quick else ""), "skipped": []}
    try:
        engine, why = default_engine()
        result["default_engine"], result["default_engine_note"] = engine, why
        engines = [engine] + (["classic"] if engine != "classic" else [])
        print(f"default engine: {engine} {why}", flush=True)

        base = scratch / "base"
        render_base(base)
        main_minutes = 1 if args.quick else BASE_MINUTES
        main = base if main_minutes == BASE_MINUTES else scratch / f"d{main_minutes}"
        if main is not base:
            derive(base, main, main_minutes)
        size = session_size(main)
        floor = io_floor(main, scratch)
        result["main"] = {"size": size, "io_floor": floor, "runs": {}, "baseline_mb": {}, "stages": {}}
        print(f"main: {size['files']} files, {size['seconds']:.0f} s, decoded {size['decoded_mb']:.0f} MB; "
              f"I/O floor {floor['seconds']:.2f} s", flush=True)
        for name in engines:
            result["main"]["baseline_mb"][name] = baseline(name)
            runs = [align(main, scratch, name) for _ in range(1 if args.quick else 2)]
            result["main"]["runs"][name] = runs
            print(f"  {name}: " + ", ".join(f"{r['wall_s']:.1f} s / {r['peak_mb']:.0f} MB (load {r['load']})"
                                            for r in runs), flush=True)
            result["main"]["stages"][name] = probe(main, scratch, name)

        # cost per second of audio and channel, for the budget's estimates
        per = {name: min(r["wall_s"] for r in result["main"]["runs"][name]) / (size["seconds"] * size["channels"])
               for name in engines}
        fixed = {name: 4.0 if name == "classic" else 8.0 for name in engines}

        def affordable(name: str, seconds: float, channels: int) -> bool:
            estimate = fixed[name] + per[name] * seconds * channels
            return budget.left > 1.3 * estimate + 30.0

        durations = [1, 2] if args.quick else [m for m in DURATIONS_MIN if args.durations is None or m in args.durations]
        channel_counts = [2, 4] if args.quick else sorted(CHANNEL_LAYOUTS)
        # every duration for each engine, whatever the budget (how the cost grows with the session is
        # the question); then channel counts, classic first, as far as the budget goes
        plan = [("minutes", name, m) for m in durations for name in engines]  # a long session is freed once both ran
        plan += [("channels", name, c) for name in engines for c in channel_counts]
        result["minutes"], result["channels"] = [], []
        sessions: dict = {}
        for kind, name, value in plan:
            seconds = value * 60.0 if kind == "minutes" else CHANNELS_AT_MIN * 60.0
            channels = 8 if kind == "minutes" else value
            if kind == "minutes" and value == main_minutes and main is base:
                runs = result["main"]["runs"][name]
                best = min(runs, key=lambda r: r["wall_s"])
                result[kind].append({"value": value, "engine": name, "size": size, "io_floor_s": floor["seconds"],
                                     **best})
                continue
            same = [r for r in result["minutes"] if r["engine"] == name and r["value"] == CHANNELS_AT_MIN]
            if kind == "channels" and value == 8 and same:  # the 8-channel point is the 2-minute run
                result[kind].append({**same[0], "value": value})
                continue
            if kind == "channels" and not affordable(name, seconds, channels):
                result["skipped"].append(f"{name}, {value} {'min' if kind == 'minutes' else 'channels'}")
                print(f"  skipped {name} {kind} {value}: over the time budget", flush=True)
                continue
            key = (kind, value)
            if key not in sessions:
                folder = scratch / f"{kind}{value}"
                if kind == "minutes":
                    derive(base, folder, value)
                elif value == 8:
                    derive(base, folder, CHANNELS_AT_MIN)
                else:
                    render_layout(folder, value, CHANNELS_AT_MIN)
                sessions[key] = (folder, session_size(folder), io_floor(folder, scratch, repeats=1)["seconds"])
            folder, sz, fl = sessions[key]
            r = align(folder, scratch, name)
            result[kind].append({"value": value, "engine": name, "size": sz, "io_floor_s": fl, **r})
            print(f"  {name} {kind} {value}: {r['wall_s']:.1f} s, {r['peak_mb']:.0f} MB "
                  f"(decoded {sz['decoded_mb']:.0f} MB, load {r['load']})", flush=True)
            if kind == "minutes" and value >= 16:  # long sessions take GBs of disk: free them once done
                last_for_size = all(not (k == kind and v == value) for k, _, v in
                                    plan[plan.index((kind, name, value)) + 1:])
                if last_for_size:
                    shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["load_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["elapsed_min"] = (time.perf_counter() - budget.start) / 60.0
    return result


# ----------------------------------------------------------------------------- the report


def _fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least-squares wall = fixed + slope * x; returns (fixed, slope, worst relative deviation)."""
    import numpy as np

    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    if len(x) < 2:
        return float("nan"), float("nan"), float("nan")
    slope, fixed = np.polyfit(x, y, 1)
    worst = float(np.max(np.abs(y - (fixed + slope * x)) / y))
    return float(fixed), float(slope), worst


def _row(r: dict, label: str) -> str:
    sz = r["size"]
    limit = 2 * sz["decoded_mb"]
    xrt = sz["seconds"] / r["wall_s"]
    ok = "yes" if r["peak_mb"] <= limit else "**no**"
    return (f"| {label} | {r['engine']} | {sz['files']} / {sz['channels']} | {r['wall_s']:.1f} | {xrt:.1f}× | "
            f"{r['io_floor_s']:.2f} | {r['wall_s'] / r['io_floor_s']:.1f}× | {r['peak_mb']:.0f} | "
            f"{sz['decoded_mb']:.0f} | {limit:.0f} | {ok} | {r['load']} |")


def markdown(res: dict) -> str:
    m, main = res["machine"], res["main"]
    size, floor = main["size"], main["io_floor"]
    limit = 2 * size["decoded_mb"]
    default = res["default_engine"]
    lines = [
        "# beatfix speed and memory",
        "",
        f"Written by `{res['command']}` on {res['started']} (beatfix at {m['beatfix']}) in "
        f"{res['elapsed_min']:.1f} min.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        + (f"{m['memory_gb']:.0f} GB RAM, " if m["memory_gb"] else "")
        + f"Python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, libsndfile {m['libsndfile']}; "
        f"{m['platform']}. "
        f"Shared with other work: load average at the start "
        f"{', '.join(f'{v:.1f}' for v in res['load_start'] or [])}, at the end "
        f"{', '.join(f'{v:.1f}' for v in res['load_end'] or [])} (every run below shows the 1-minute load when it "
        "started: on 2 cores, a load of 2 or more means the run shared its cores).",
        "",
        f"Session: {size['files']} mono stems, {size['seconds'] / 60:.0f} min at 48 kHz, 24-bit WAV "
        f"({size['disk_mb']:.0f} MB on disk, {size['decoded_mb']:.0f} MB decoded as float32), rendered with "
        "beatfix.synth (procedural kit). Command: `python -m beatfix align STEMS --bpm 120 -o OUT --engine E --json`"
        " in a fresh process; wall time from launch to exit (interpreter, imports, model load, reading, analysis,"
        " rendering, writing); peak RSS of that process (GNU time). I/O floor: reading every stem to float32 and"
        " writing it back as 24-bit WAV with soundfile, median of 3, imports not counted.",
        "",
        f"Default engine: **{default}**" + (f" (the neural model did not load: {res['default_engine_note']})"
                                            if res["default_engine_note"] else " (models/beatfix-hit-v1 loads)")
        + ".",
        "",
        "## The main case",
        "",
        f"Targets: wall ≤ {TARGET_WALL_S:.0f} s; aim ≤ {TARGET_FLOOR_RATIO:.0f}× the I/O floor; peak memory ≤ 2× the "
        f"decoded session = {limit:.0f} MB, baseline included.",
        "",
        "| engine | run | wall s | x realtime | I/O floor s | ratio to floor | peak RSS MB | limit MB | within | "
        "baseline MB | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in main["runs"].items():
        for i, r in enumerate(runs, 1):
            lines.append(f"| {name} | {i} | {r['wall_s']:.1f} | {size['seconds'] / r['wall_s']:.1f}× | "
                         f"{floor['seconds']:.2f} | {r['wall_s'] / floor['seconds']:.1f}× | {r['peak_mb']:.0f} | "
                         f"{limit:.0f} | {'yes' if r['peak_mb'] <= limit else '**no**'} | "
                         f"{main['baseline_mb'][name]:.0f} | {r['load']} |")
    lines += ["", f"I/O floor passes: {', '.join(f'{s:.2f}' for s in floor['all_s'])} s. Baseline: the interpreter "
              "with numpy, scipy, soundfile, soxr, typer, rich and the onset network loaded (and, for neural, the hit "
              "model, which runs on onnxruntime: torch is not imported): what any run holds before it reads "
              "a sample.", ""]
    for name, probe in main["stages"].items():
        lines += [f"### Where the time and memory go: {name}", "",
                  f"One instrumented run in-process ({probe['total_s']:.1f} s after the interpreter started; "
                  "each stage's peak RSS measured on its own).", "",
                  "| stage | s | peak RSS MB |", "|---|---|---|"]
        for st in probe["stages"]:
            lines.append(f"| {st['stage']} | {st['seconds']:.1f} | {st['peak_mb']:.0f} |")
        lines.append("")
    for kind, label, unit in (("minutes", "Duration", "min"), ("channels", "Channels", "channels")):
        rows = res.get(kind, [])
        if not rows:
            continue
        what = ("8 mono stems, 1 to 32 minutes" if kind == "minutes"
                else f"{CHANNELS_AT_MIN} minutes, 2 to 16 channels (16 = 14 files, the two rooms stereo)")
        lines += [f"## Scaling: {label.lower()} ({what})", "",
                  f"| {unit} | engine | files / channels | wall s | x realtime | I/O floor s | ratio to floor | "
                  "peak RSS MB | decoded MB | limit MB | within | load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: (r["engine"] != "classic", r["value"])):
            lines.append(_row(r, str(r["value"])))
        lines.append("")
        per = unit[:-1] if unit.endswith("s") else unit
        for name in sorted({r["engine"] for r in rows}):
            mine = sorted((r for r in rows if r["engine"] == name), key=lambda r: r["value"])
            if len(mine) < 3:
                continue
            fixed, slope, _ = _fit([(r["value"], r["wall_s"]) for r in mine])
            mfixed, mslope, mworst = _fit([(r["value"], r["peak_mb"]) for r in mine])
            costs = ", ".join(f"{r['wall_s'] / r['value']:.1f}" for r in mine)
            decoded = mine[-1]["size"]["decoded_mb"] / mine[-1]["value"]
            lines.append(f"- {name}: wall per {per}: {costs} s ({', '.join(str(r['value']) for r in mine)} {unit}); "
                         f"least squares wall ≈ {fixed:.1f} s + {slope:.2f} s per {per}. Peak memory ≈ {mfixed:.0f} MB "
                         f"+ {mslope:.1f} MB per {per} (every point within {mworst * 100:.0f} % of that line; the "
                         f"decoded audio is {decoded:.1f} MB per {per}).")
        lines.append("")
    if res["skipped"]:
        lines += ["Skipped for the time budget: " + "; ".join(res["skipped"]) + ".", ""]
    lines += [
        "## Reading these numbers",
        "",
        "- Linear growth shows as a steady x-realtime figure down a table; the fits give the fixed cost (start-up, "
        "imports, model) and the cost per minute or channel. On a shared 2-core machine single runs scatter by "
        "10-25 %: compare the load column.",
        f"- The memory limit (2× the decoded session) is the issue's target for the {BASE_MINUTES}-minute session. "
        f"Below about 2 minutes the start-up baseline alone (classic "
        f"{main['baseline_mb'].get('classic', float('nan')):.0f} MB"
        + (f", {default} {main['baseline_mb'][default]:.0f} MB" if default in main["baseline_mb"]
           and default != "classic" else "")
        + ") is as large as the decoded audio or larger, so no 2× limit can hold there; 'within' says little "
        "for short sessions.",
        "- Peak memory per stage: the stage table shows which stage sets each engine's peak. Reading, onset "
        "detection (resampling, spectrograms, network, filter bands), rendering and writing are streamed or done "
        "one stem at a time; what stays is the decoded session itself.",
        "- The neural engine runs its model over every channel once to judge the onsets and, when the slot "
        "assignment applies, once more (the 'hits' stage above); that second pass is why its times do not grow "
        "smoothly from one size to the next.",
        "",
    ]
    return "\n".join(lines)


def summary(res: dict) -> str:
    """The short section for RESULTS.md."""
    main, size = res["main"], res["main"]["size"]
    limit = 2 * size["decoded_mb"]
    out = ["## Speed and memory (issue 7)", "",
           f"From `{res['command']}` on {res['started']} ({res['machine']['cpu']}, {res['machine']['cores']} cores, "
           f"shared; load {res['load_start'][0]:.1f} at the start). Full tables, per-stage profile and scaling: "
           "[SPEED.md](SPEED.md).", "",
           f"{size['files']} mono stems × {size['seconds'] / 60:.0f} min, 48 kHz 24-bit; I/O floor "
           f"{main['io_floor']['seconds']:.2f} s; memory limit {limit:.0f} MB (2× the {size['decoded_mb']:.0f} MB "
           "decoded session).", "",
           "| engine | wall s | x realtime | ratio to I/O floor | peak RSS MB | baseline MB |", "|---|---|---|---|---|---|"]
    for name, runs in main["runs"].items():
        best = min(runs, key=lambda r: r["wall_s"])
        spread = f"{min(r['wall_s'] for r in runs):.1f}–{max(r['wall_s'] for r in runs):.1f}" if len(runs) > 1 \
            else f"{best['wall_s']:.1f}"
        out.append(f"| {name} | {spread} | {size['seconds'] / best['wall_s']:.1f}× | "
                   f"{best['wall_s'] / main['io_floor']['seconds']:.1f}× | "
                   f"{max(r['peak_mb'] for r in runs):.0f} | {main['baseline_mb'][name]:.0f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1-minute main case, small scaling runs: a smoke test")
    p.add_argument("--durations", type=lambda v: [int(x) for x in v.split(",")], default=None,
                   help="only these scaling durations, minutes (e.g. 2): to add channel runs to a saved speed.json")
    p.add_argument("--budget-min", type=float, default=14.0, help="stop adding scaling runs past this (minutes)")
    p.add_argument("--out", type=Path, default=HERE, help="folder for SPEED.md and speed.json")
    p.add_argument("--from-json", type=Path, help="write the reports again from a saved speed.json, run nothing")
    args = p.parse_args(argv)
    res = json.loads(args.from_json.read_text()) if args.from_json else run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "SPEED.md").write_text(markdown(res) + "\n")
    (args.out / "speed.json").write_text(json.dumps(res, indent=1) + "\n")
    updated = update_section(args.out / "RESULTS.md", "speed", summary(res))
    print(f"wrote {args.out / 'SPEED.md'} and speed.json" + (", and the speed section of RESULTS.md" if updated else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
