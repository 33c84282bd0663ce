"""One benchmark session: render it, run every engine on it, measure every output from its audio.

Engines, all on the same stems:

* ``none``: the input unchanged (what the drummer played);
* ``classic`` / ``neural``: ``analyse_session`` with the true BPM, bar 1's
  time (``--grid-offset``, as a click-synced DAW session gives it) and the
  grid and swing a user would give, then ``align_session`` at strength 100;
* ``oracle``: an Analysis built from the truth, through the same planner and
  renderer: the limit of one-shift-per-hit editing;
* ``ideal``: the synthesizer's on-grid render: the absolute limit.

Everything measured here comes from :mod:`beatfix.evaluation`, which looks
at audio only; the engines' own reports are never read. Results are plain
JSON-able dicts so that the runner can pool, tabulate and save them.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from beatfix import evaluation as ev
from beatfix.align import align_session
from beatfix.analyse import analyse_session
from beatfix.synth import render_pair

from sessions import BenchSession, bench_kit

ANALYSED = ("classic", "neural")
EDITED = ("none", "classic", "neural", "oracle", "ideal")


def _stems(result) -> dict[str, np.ndarray]:
    return {s.name: s.audio for s in result.stems}


def _phase_error_ms(grid, truth) -> float:
    """Engine grid minus true grid at the same tempo, wrapped to +-half a step, ms."""
    step = 60.0 / truth["bpm"] / truth["steps_per_beat"]
    d = (grid.offset_s - truth["grid_offset_s"]) % step
    return (d - step if d > step / 2 else d) * 1000.0


def _spectra(stems, names) -> list[np.ndarray]:
    return [ch for n in names for ch in ev.log_spectrogram(stems[n])]


def run_engines(bench: BenchSession, performed, engines: dict) -> tuple[dict, dict]:
    """Outputs of every engine, and what each run cost or why it failed."""
    truth, session = performed.truth, performed.as_session()
    outputs: dict[str, dict] = {"none": dict(performed.stems)}
    info: dict[str, dict] = {"none": {"status": "ok"}}
    opts = dict(grid=bench.grid, swing_pct=float(truth["swing_pct"]))
    t0 = time.perf_counter()
    outputs["oracle"] = _stems(align_session(session, ev.oracle_analysis(truth)))
    info["oracle"] = {"status": "ok", "edit_s": time.perf_counter() - t0}
    for name in ANALYSED:
        choice = engines.get(name)
        if isinstance(choice, str) or choice is None:
            info[name] = {"status": "not available", "error": choice or "not run"}
            continue
        try:
            t0 = time.perf_counter()
            # --bpm and --grid-offset as from a click-synced DAW session: the drummer's own average
            # lean against the click cannot be seen in the audio (see "offset removed" for the fitted phase).
            analysis = analyse_session(session, bpm=float(truth["bpm"]), grid_offset_s=float(truth["grid_offset_s"]),
                                       judge=choice.judge, **opts)
            t1 = time.perf_counter()
            result = align_session(session, analysis, strength_pct=100.0)
            t2 = time.perf_counter()
        except Exception as exc:  # one engine failing on one session must not hide the others' numbers
            info[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            continue
        outputs[name] = _stems(result)
        info[name] = {"status": "ok", "analysis_s": t1 - t0, "edit_s": t2 - t1, "wall_s": t2 - t0,
                      "n_hits": len(analysis.hits), "n_edits": len(result.plan.edits),
                      "grid_phase_error_ms": _phase_error_ms(analysis.grid, truth)}
    return outputs, info


def measure_output(name: str, output, performed, ideal_spectra, input_distance, locator, lags_in) -> dict:
    """Every measurement of one output, from its audio."""
    truth, sr = performed.truth, performed.sample_rate
    landings = locator.locate(output)
    close = [l for l in landings if l.close and not l.grace and not l.weak]
    found = [l for l in close if not l.lost]
    lags_out = ev.overhead_lags(output, truth, ev.landed_positions(landings, sr))
    reference = ev.render_landed(performed, ev.landed_onsets_s(landings, truth))
    art = ev.seam_artifacts(output, reference, sr, landings=landings, source=performed.stems,
                            source_s=ev.source_time_map(landings, truth))
    close_names, follow_names = _groups(truth)
    spectral = {}
    for group, names in (("close", close_names), ("follow", follow_names)):
        d = ev.spectral_distance_db(_spectra(output, names), ideal_spectra[group])
        spectral[group] = d / input_distance[group] if input_distance[group] > 0 else math.nan
    hits = truth["hits"]
    source_s = ev.source_time_map(landings, truth)

    def near(t: float) -> str:
        """The strokes played around where output time ``t`` came from: what to listen for."""
        around = sorted({h["index"] for s in source_s(t) for h in hits if abs(h["performed_time_s"] - s) < 0.04})
        return ", ".join(f"{hits[i]['drum']}{' grace' if hits[i]['grace'] else ''}"
                         f"{'' if i in close_ids else ' (no close mic)' if hits[i]['drum'] in uncovered else ''}"
                         f" played {hits[i]['performed_time_s']:.3f} s" for i in around) or "no stroke nearby"

    close_ids = {l.hit for l in landings if l.close}
    uncovered = {l.drum for l in landings if not l.close}
    events = [{"kind": kind, "time_s": round(t, 3), "near": near(t)}
              for kind, times in (("double attack", art.double_attacks_s), ("click", art.clicks_s),
                                  ("bump", art.bumps_s)) for t in times]
    return {
        "events": events,
        "residuals_ms": [l.residual_ms for l in found],
        # the close-mic attack against the grid line itself, without the mic's own acoustic delay
        "grid_residuals_ms": [l.residual_ms + 1000.0 * l.delay_s for l in found],
        "residual_drums": [l.drum for l in found],
        "residual_times_s": [hits[l.hit]["grid_time_s"] for l in found],
        "n_hits": len(close),
        "lost": [{"hit": l.hit, "drum": l.drum, "time_s": round(hits[l.hit]["performed_time_s"], 4),
                  "match": round(l.match, 3)} for l in close if l.lost],
        "lost_uncovered": [{"hit": l.hit, "drum": l.drum, "time_s": round(hits[l.hit]["performed_time_s"], 4)}
                           for l in landings if not l.close and l.lost and not l.weak],
        "n_uncovered": sum(not l.close and not l.weak for l in landings),
        "lag_changes_ms": ev.lag_changes_ms(lags_in, lags_out, sr).tolist(),
        "clicks_s": list(art.clicks_s),
        "double_attacks_s": list(art.double_attacks_s),
        "bumps_s": list(art.bumps_s),
        "duration_s": art.duration_s,
        "spectral_rel": spectral,
    }


def _groups(truth) -> tuple[list[str], list[str]]:
    close = [ch["stem"] for ch in truth["channels"] if ch["role"] not in ev.FOLLOWER_ROLES]
    follow = [ch["stem"] for ch in truth["channels"] if ch["role"] in ev.FOLLOWER_ROLES]
    return close, follow


def analysis_quality(bench: BenchSession, performed, engines: dict) -> dict:
    """``report``-style analysis (tempo estimated, grid and swing given) of each engine, against the truth."""
    truth, session = performed.truth, performed.as_session()
    out = {}
    for name in ANALYSED:
        choice = engines.get(name)
        if isinstance(choice, str) or choice is None:
            continue
        try:
            t0 = time.perf_counter()
            analysis = analyse_session(session, bpm=None, grid=bench.grid, swing_pct=float(truth["swing_pct"]),
                                       judge=choice.judge)
            wall = time.perf_counter() - t0
        except Exception as exc:
            out[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            continue
        counts = ev.analysis_quality(analysis, truth)
        counts.update(status="ok", wall_s=wall)
        out[name] = counts
    return out


def run_session(bench: BenchSession, engines: dict, *, quality: bool = True) -> dict:
    spec = bench.spec
    kit, filled = bench_kit(spec.sample_rate)
    performed, ideal = render_pair(replace(spec, kit=kit.name), kit)
    truth, sr = performed.truth, performed.sample_rate
    outputs, info = run_engines(bench, performed, engines)
    outputs["ideal"] = dict(ideal.stems)
    info["ideal"] = {"status": "ok"}

    locator = ev.Locator(performed.stems, truth, performed.hit_shots)
    lags_in = ev.overhead_lags(performed.stems, truth, ev.input_positions(truth))
    close_names, follow_names = _groups(truth)
    ideal_spectra = {"close": _spectra(ideal.stems, close_names), "follow": _spectra(ideal.stems, follow_names)}
    input_distance = {g: ev.spectral_distance_db(_spectra(performed.stems, names), ideal_spectra[g])
                      for g, names in (("close", close_names), ("follow", follow_names))}
    measured = {}
    for name in EDITED:
        if name in outputs:
            measured[name] = {**info[name], **measure_output(name, outputs[name], performed, ideal_spectra,
                                                             input_distance, locator, lags_in)}
        else:
            measured[name] = info[name]
    return {
        "seed": spec.seed, "style": spec.style, "bpm": spec.bpm, "sample_rate": sr, "spread_ms": spec.spread_ms,
        "layout": bench.layout, "grid": bench.grid, "swing_pct": round(float(truth["swing_pct"]), 2),
        "duration_s": truth["duration_s"], "stems": list(performed.stems), "n_channels": truth["n_channels"],
        "n_strokes": len(truth["hits"]), "unmeasurable": len(locator.unmeasurable), "kit": kit.name,
        "kit_filled": list(filled), "input_spectral_db": input_distance,
        "engines": measured,
        "quality": analysis_quality(bench, performed, engines) if quality else {},
    }
