"""Judging a trained hit model: metrics against the classic judge, and the model card.

:func:`evaluate` compares the model with the classic judge on the same
candidates of held-out sessions, also under a grid that is off
(:func:`perturb_grid`); :func:`metrics_table`, :func:`describe_data` and
:func:`model_card` write up a trained model folder. Used by
:mod:`beatfix.neural.train`, which re-exports these names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..grid import Grid
from .dataset import IGNORE, SessionExamples, with_grid

OFFSET_CLIP_MS = 5.0
HARD_PHASE = 0.3  # |phase| beyond this (steps): the slot is in doubt
GRID_ERROR_SEED = 2024  # the grid errors evaluate() scores slots under


def perturb_grid(grid: Grid, rng: np.random.Generator, duration_s: float, *, max_phase: float = 0.3,
                 max_drift: float = 0.5) -> Grid:
    """The grid an analysis might fit: off by a phase and by a tempo that drifts across the session.

    The error is ``phase + drift * (t - middle) / duration`` steps, at most
    ``max_phase + max_drift / 2``; the true slots keep their numbers.
    """
    step = grid.step_s
    phase = rng.uniform(-max_phase, max_phase)
    g = rng.uniform(-max_drift, max_drift) * step / max(duration_s, 1.0)  # steps of error per second, as s/s
    middle = grid.offset_s + duration_s / 2
    offset = grid.offset_s + phase * step + g * (grid.offset_s - middle)
    return Grid(bpm=grid.bpm / (1.0 + g), offset_s=offset, steps_per_beat=grid.steps_per_beat, swing_pct=grid.swing_pct)


def predict_examples(net, ex: SessionExamples, device: str = "cpu", chunk: int = 512, context: np.ndarray | None = None):
    """(own_prob, offset_ms, slot_probs) of every event of one cached session."""
    import torch

    context = ex.context if context is None else context
    net.eval()
    with torch.inference_mode():
        chan = torch.as_tensor(ex.chan, device=device)
        roles = torch.as_tensor(ex.roles, device=device)
        embs = [net.encode(torch.as_tensor(ex.fine[lo:lo + chunk], device=device).float(),
                           torch.as_tensor(ex.coarse[lo:lo + chunk], device=device).float(), chan, roles,
                           torch.as_tensor(ex.target[lo:lo + chunk], device=device))
                for lo in range(0, ex.n_events, chunk)]
        if not embs:
            return np.zeros(0), np.zeros(0), np.zeros((0, 3))
        own, off, slot = net.decode(torch.cat(embs).unsqueeze(0), torch.as_tensor(context, device=device).unsqueeze(0))
        return (torch.sigmoid(own[0]).cpu().numpy(), off[0].cpu().numpy(), torch.softmax(slot[0], -1).cpu().numpy())


def _classic_slots_ok(exs, grids, slot_true: np.ndarray) -> np.ndarray:
    """Per event: does the classic analysis' slot rule (nearest slot after removing the neighbours'
    drift, :func:`beatfix.tempo.assign_slots`) give the true slot? Run on the own candidates of each
    session, its best case: no bleed among the neighbours."""
    try:
        from ..tempo import assign_slots
    except ImportError:
        return slot_true == 1
    ok = []
    for ex, (grid, _, slot) in zip(exs, grids):
        good = np.zeros(ex.n_events, dtype=bool)
        own = np.flatnonzero(ex.own > 0.5)
        if own.size:
            slots = np.asarray(assign_slots(ex.times[own], grid)).reshape(-1)
            nearest = np.asarray(grid.nearest_slot(ex.times[own])).reshape(-1)
            good[own] = (slots - nearest + 1) == slot[own]
        ok.append(good)
    return np.concatenate(ok) if ok else np.zeros(0, dtype=bool)


def _judge_metrics(accept: np.ndarray, offset_err_ms: np.ndarray, slot_ok: np.ndarray, exs: Sequence[SessionExamples],
                   slot_true: np.ndarray, phase: np.ndarray) -> dict:
    own = np.concatenate([e.own for e in exs]) > 0.5
    hard = np.abs(phase) > HARD_PHASE
    has_slot = slot_true != IGNORE
    # recall against every true onset, soft ones apart: a true onset is found when an accepted own candidate holds it
    found_soft = found_all = n_soft = n_all = 0
    pos = 0
    for e in exs:
        acc = accept[pos:pos + e.n_events] & (e.own > 0.5)
        ids = set(e.truth_id[acc].tolist())
        n_all += e.truth_ch.size
        n_soft += int(e.truth_soft.sum())
        found_all += len(ids)
        found_soft += sum(1 for i in ids if e.truth_soft[i])
        pos += e.n_events
    tp = int((accept & own).sum())
    n_bleed = int((~own).sum())
    out = {
        "precision": tp / max(1, int(accept.sum())),
        "recall_candidates": tp / max(1, int(own.sum())),
        "recall_truth": found_all / max(1, n_all),
        "bleed_false_trigger_rate": int((accept & ~own).sum()) / max(1, n_bleed),
        "false_triggers": int((accept & ~own).sum()),
        "missed_soft_rate": 1.0 - found_soft / max(1, n_soft),
        "missed_soft": n_soft - found_soft,
        "onset_mae_ms": float(np.mean(np.abs(offset_err_ms[own]))) if own.any() else float("nan"),
        "onset_median_ms": float(np.median(np.abs(offset_err_ms[own]))) if own.any() else float("nan"),
        "slot_accuracy": float(slot_ok[has_slot].mean()) if has_slot.any() else float("nan"),
        "slot_accuracy_hard": float(slot_ok[has_slot & hard].mean()) if (has_slot & hard).any() else float("nan"),
    }
    return out


def evaluate(net, exs: Sequence[SessionExamples], device: str = "cpu", threshold: float = 0.5,
             grid_error_seed: int | None = GRID_ERROR_SEED) -> dict:
    """Neural vs classic judge on the same candidates of ``exs``.

    Slots are scored against the true grid, and again against a grid that is
    off (:func:`perturb_grid`, seeded by ``grid_error_seed``) as a fitted grid may be.
    """
    out = _evaluate(net, exs, device, threshold, [(e.grid, e.context, e.slot) for e in exs])
    if grid_error_seed is not None:
        rng = np.random.default_rng(grid_error_seed)
        moved = []
        for e in exs:
            grid = perturb_grid(e.grid, rng, e.duration_s)
            moved.append((grid, *with_grid(e, grid)))
        off_grid = _evaluate(net, exs, device, threshold, moved)
        out["grid_error"] = {"neural_slot_accuracy": off_grid["neural"]["slot_accuracy"],
                             "neural_slot_accuracy_hard": off_grid["neural"]["slot_accuracy_hard"],
                             "nearest_slot_accuracy": off_grid["nearest_slot_accuracy"],
                             "nearest_slot_accuracy_hard": off_grid["nearest_slot_accuracy_hard"],
                             "classic_slot_accuracy": off_grid["classic_slot_accuracy"],
                             "classic_slot_accuracy_hard": off_grid["classic_slot_accuracy_hard"],
                             "own_with_slot": off_grid["own_with_slot"],
                             "moved_slots": off_grid["moved_slots"]}
    return out


def _evaluate(net, exs, device, threshold, grids) -> dict:
    probs, offs, slots = [], [], []
    for ex, (_, context, _) in zip(exs, grids):
        p, o, s = predict_examples(net, ex, device, context=context)
        probs.append(p)
        offs.append(o)
        slots.append(s)
    prob, off, slot_p = np.concatenate(probs), np.concatenate(offs), np.concatenate(slots)
    true_off = np.nan_to_num(np.concatenate([e.offset_ms for e in exs]))
    slot_true = np.concatenate([slot for _, _, slot in grids])
    hard_ctx = np.concatenate([context[:, 0] for _, context, _ in grids])
    classic = np.concatenate([e.classic_accept for e in exs])
    neural = _judge_metrics(prob >= threshold, true_off - np.clip(off, -OFFSET_CLIP_MS, OFFSET_CLIP_MS),
                            np.argmax(slot_p, 1) == slot_true, exs, slot_true, hard_ctx)
    out = {
        "sessions": len(exs),
        "candidates": int(prob.size),
        "own_candidates": int(sum(int((e.own > 0.5).sum()) for e in exs)),
        "bleed_candidates": int(sum(int((e.own < 0.5).sum()) for e in exs)),
        "true_onsets": int(sum(e.truth_ch.size for e in exs)),
        "true_soft_onsets": int(sum(int(e.truth_soft.sum()) for e in exs)),
        "neural": neural,
        "nearest_slot_accuracy": None,
        "classic": None,
    }
    # nearest-slot baseline: class 1 (= 0 steps) is the nearest slot
    nearest = _judge_metrics(np.ones_like(prob, bool), true_off, slot_true == 1, exs, slot_true, hard_ctx)
    out["nearest_slot_accuracy"] = nearest["slot_accuracy"]
    out["nearest_slot_accuracy_hard"] = nearest["slot_accuracy_hard"]
    out["own_with_slot"] = int((slot_true != IGNORE).sum())
    out["moved_slots"] = int(((slot_true != IGNORE) & (slot_true != 1)).sum())
    classic_slot_ok = _classic_slots_ok(exs, grids, slot_true)
    drift_aware = _judge_metrics(np.ones_like(prob, bool), true_off, classic_slot_ok, exs, slot_true, hard_ctx)
    out["classic_slot_accuracy"] = drift_aware["slot_accuracy"]
    out["classic_slot_accuracy_hard"] = drift_aware["slot_accuracy_hard"]
    if (classic >= 0).all() and classic.size:
        out["classic"] = _judge_metrics(classic == 1, true_off, classic_slot_ok, exs, slot_true, hard_ctx)
    return out


def describe_data(folders: Sequence[Path], root: Path) -> list[dict]:
    """Provenance of the training sessions, grouped by parent folder: kits, seeds, rates, channels."""
    groups: dict[str, dict] = {}
    for folder in folders:
        try:
            truth = json.loads((Path(folder) / "truth.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rel = Path(folder).parent.relative_to(root) if Path(folder).parent != root else Path(".")
        g = groups.setdefault(str(rel), {"folder": str(rel), "sessions": 0, "kits": set(), "seeds": [],
                                         "sample_rates": set(), "channels": [], "spread_ms": [], "duration_s": 0.0})
        g["sessions"] += 1
        g["kits"].add(str(truth.get("kit", "?")))
        g["seeds"].append(int(truth.get("seed", -1)))
        g["sample_rates"].add(int(truth.get("sample_rate", 0)))
        g["channels"].append(len(truth.get("channels", [])))
        g["spread_ms"].append(float(truth.get("spread_ms", 0.0)))
        g["duration_s"] += float(truth.get("duration_s", 0.0))
    out = []
    for g in groups.values():
        out.append({"folder": g["folder"], "sessions": g["sessions"], "kits": sorted(g["kits"]),
                    "session_seeds": f"{min(g['seeds'])}..{max(g['seeds'])}", "sample_rates": sorted(g["sample_rates"]),
                    "stems": f"{min(g['channels'])}-{max(g['channels'])}",
                    "spread_ms": f"{min(g['spread_ms']):.0f}-{max(g['spread_ms']):.0f}",
                    "minutes": round(g["duration_s"] / 60, 1)})
    return sorted(out, key=lambda g: g["folder"])


_ROWS = (("own-hit precision", "precision"), ("own-hit recall (of true onsets)", "recall_truth"),
         ("bleed false-trigger rate (of bleed candidates)", "bleed_false_trigger_rate"),
         ("bleed false triggers", "false_triggers"), ("missed soft hits", "missed_soft"),
         ("missed soft-hit rate", "missed_soft_rate"), ("onset MAE, ms", "onset_mae_ms"),
         ("onset median error, ms", "onset_median_ms"), ("slot accuracy", "slot_accuracy"),
         ("slot accuracy where abs(phase) > 0.3 step", "slot_accuracy_hard"))


def metrics_table(m: dict) -> str:
    """A markdown table: neural vs classic judge (vs nearest slot for slots)."""
    def f(v):
        return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))

    classic = m.get("classic") or {}
    lines = [f"{m['sessions']} sessions, {m['candidates']} candidates ({m['own_candidates']} own, "
             f"{m['bleed_candidates']} bleed), {m['true_onsets']} true onsets of which {m['true_soft_onsets']} soft.",
             "", "| metric | neural | classic |", "| --- | --- | --- |"]
    for label, key in _ROWS:
        base = m.get("classic_" + key) if key.startswith("slot_accuracy") else classic.get(key)
        lines.append(f"| {label} | {f(m['neural'].get(key))} | {f(base)} |")
    ge = m.get("grid_error")
    if ge:
        lines.append(f"| slot accuracy, grid off by a phase and a drifting tempo ({ge['moved_slots']} of "
                     f"{ge['own_with_slot']} hits off their nearest slot) | {f(ge['neural_slot_accuracy'])} | "
                     f"{f(ge['classic_slot_accuracy'])} |")
        lines.append(f"| same, where abs(phase) > 0.3 step | {f(ge['neural_slot_accuracy_hard'])} | "
                     f"{f(ge['classic_slot_accuracy_hard'])} |")
        lines.append(f"| same, plain nearest slot | - | {f(ge['nearest_slot_accuracy'])} |")
    lines.append("")
    lines.append("Classic: `beatfix.hits.classic_judge` on the same candidates; classic slots: "
                 "`beatfix.tempo.assign_slots` (nearest slot after removing the neighbours' drift) on the true own "
                 "onsets; classic onset times: the refined candidates. Soft: ghost notes, velocity < 0.4, soft flam "
                 "grace notes. Rates count candidates; recall and missed soft hits count true onsets.")
    return "\n".join(lines)


def model_card(summary: dict, sha: str, onnx_shas: dict[str, str] | None = None) -> str:
    """MODEL_CARD.md of a trained model folder."""
    arch = summary.get("architecture", {})
    lines = [f"# beatfix hit model {summary['version']}", "",
             "Judges every onset candidate of a close mic: own drum or bleed (probability), the onset",
             "correction in ms, and the grid slot (-1/0/+1 against the nearest slot).", "",
             "## Files", "",
             f"- `weights.pt`: state dict, sha256 `{sha}` (also in `config.json` and `SHA256SUMS`)",
             *(f"- `{name}`: the ONNX export of the model's {name.split('.')[0]} (what beatfix runs, with "
               f"onnxruntime), sha256 `{digest or '?'}` (also in `config.json` and `SHA256SUMS`)"
               for name, digest in (onnx_shas or {}).items()),
             "- `config.json`: architecture, feature settings, format and version", "",
             "## Architecture", "",
             f"{summary.get('parameters', '?')} parameters. Per channel (stem, mono): a 1D CNN over 5 band log-energies",
             "(<150 Hz, 150-1000, 1000-5000, >5000 Hz, broadband) at 0.25 ms for +-8 ms and one at 4 ms for +-100 ms,",
             "plus a role embedding, the channel's level reference and a 'this is the candidate's channel' flag;",
             "self-attention across channels (no positions: any count, any order); grid context (phase, local",
             "drift, neighbours) and a bidirectional GRU over the session's candidates in time order; three heads.",
             f"Settings: `{json.dumps(arch)}`.", "",
             "## Training", ""]
    if summary.get("command"):
        lines += ["```", summary["command"], "```", ""]
    lines += [f"Seed {summary['seed']}; {summary['train_sessions']} training sessions ({summary['train_candidates']} candidates), "
              f"{summary['val_sessions']} validation sessions; {summary['epochs_run']} epochs run, best {summary['best_epoch']}; "
              f"{summary['train_seconds'] / 60:.1f} min on {summary.get('device', 'cpu')}"
              + (f", fine-tuned from `{summary['init']}`" if summary.get("init") else "") + ".", "",
              "Onset correction applied by the judge at run time: "
              + ("yes (it beat the classic refinement on the validation sessions)." if summary.get("apply_offset")
                 else "no (it did not beat the classic refinement on the validation sessions; "
                      "the judge keeps the candidates' refined times)."), ""]
    if summary.get("data"):
        lines += ["| folder | sessions | kits | per-session seeds (drawn by beatfix synth from its --seed) | rates | stems "
                  "| spread ms | minutes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for g in summary["data"]:
            lines.append(f"| {g['folder']} | {g['sessions']} | {', '.join(g['kits'])} | {g['session_seeds']} | "
                         f"{', '.join(map(str, g['sample_rates']))} | {g['stems']} | {g['spread_ms']} | {g['minutes']} |")
        lines.append("")
    lines += ["## Validation sessions (early stopping)", "", metrics_table(summary["validation"]), ""]
    if summary.get("holdout"):
        lines += ["## Held-out sessions", "", metrics_table(summary["holdout"]), ""]
    if summary.get("notes"):
        lines += ["## Notes", "", summary["notes"], ""]
    return "\n".join(lines)
