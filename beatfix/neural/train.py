"""Training and evaluating the hit model on synthetic sessions.

:func:`train_model` is what ``beatfix train`` runs: features (cached), a
seeded split of the sessions into training and validation, Adam with early
stopping on the validation loss, and a model folder written with
:func:`beatfix.neural.weights.save_model`. :func:`evaluate` compares the model
with the classic judge on the same candidates of held-out sessions; it, the
metrics and the model card live in :mod:`beatfix.neural.metrics` and are
re-exported here.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from .dataset import IGNORE, SessionExamples, find_sessions, load_or_build, with_grid
from .features import FeatureConfig
from .metrics import (GRID_ERROR_SEED, HARD_PHASE, OFFSET_CLIP_MS, describe_data, evaluate, metrics_table, model_card,
                      perturb_grid, predict_examples)

CHUNK_EVENTS = 256  # events per training sequence
MOVE_GRID = 0.6  # share of training passes over a session with a moved grid
SOFT_WEIGHT = 3.0  # a missed ghost note costs more than a kept bleed: weight soft own hits up
SLOT_CLASS_WEIGHT = (4.0, 1.0, 4.0)  # moved slots are rare; they are the point of the slot head

__all__ = ["CHUNK_EVENTS", "GRID_ERROR_SEED", "HARD_PHASE", "MOVE_GRID", "OFFSET_CLIP_MS", "SLOT_CLASS_WEIGHT",
           "SOFT_WEIGHT", "TrainResult", "describe_data", "evaluate", "metrics_table", "model_card", "perturb_grid",
           "predict_examples", "train_model"]


@dataclass
class TrainResult:
    out_dir: Path
    sha256: str
    epochs_run: int
    best_epoch: int
    seconds: float
    n_train_sessions: int
    n_val_sessions: int
    n_train_events: int
    validation: dict  # evaluate() on the validation sessions
    holdout: dict | None = None  # evaluate() on --holdout sessions
    history: list = field(default_factory=list)


def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _tensors(ex: SessionExamples, lo: int, hi: int, device: str, *, keep: np.ndarray | None = None,
             context: np.ndarray | None = None, slot: np.ndarray | None = None):
    """Tensors of events [lo, hi) of one session; ``keep`` (bool per channel) drops channels."""
    import torch

    context = ex.context if context is None else context
    slot = ex.slot if slot is None else slot
    fine, coarse = ex.fine[lo:hi], ex.coarse[lo:hi]
    chan, roles, target = ex.chan, ex.roles, ex.target[lo:hi]
    sel = np.arange(hi - lo)
    if keep is not None:
        sel = np.flatnonzero(keep[target])
        remap = np.cumsum(keep) - 1
        fine, coarse = fine[sel][:, keep], coarse[sel][:, keep]
        chan, roles, target = chan[keep], roles[keep], remap[target[sel]]
    ev = lo + sel

    def t(a, dtype=torch.float32):
        return torch.as_tensor(np.ascontiguousarray(a)).to(device=device, dtype=dtype)

    return (t(fine), t(coarse), t(chan), t(roles, torch.long), t(target, torch.long), t(context[ev]),
            t(ex.own[ev]), t(np.nan_to_num(np.clip(ex.offset_ms[ev], -OFFSET_CLIP_MS, OFFSET_CLIP_MS))),
            t(slot[ev], torch.long), t(1.0 + (SOFT_WEIGHT - 1.0) * ex.soft[ev]))


def _loss(net, batch, *, drop_context: bool = False):
    import torch
    import torch.nn.functional as F

    fine, coarse, chan, roles, target, context, own, offset, slot, weight = batch
    if drop_context:
        context = torch.zeros_like(context)
    own_logit, off, slot_logits = net(fine, coarse, chan, roles, target, context)
    loss_own = F.binary_cross_entropy_with_logits(own_logit, own, weight=weight)
    mask = own > 0.5
    loss_off = F.smooth_l1_loss(off[mask], offset[mask], beta=0.25) if mask.any() else own_logit.sum() * 0
    if drop_context:
        slot = torch.full_like(slot, IGNORE)
    slot_weight = torch.tensor(SLOT_CLASS_WEIGHT, dtype=slot_logits.dtype, device=slot_logits.device)
    loss_slot = F.cross_entropy(slot_logits, slot, weight=slot_weight, ignore_index=IGNORE) if (slot != IGNORE).any() else own_logit.sum() * 0
    return loss_own + 0.5 * loss_off + 0.5 * loss_slot, (loss_own.item(), loss_off.item(), loss_slot.item())


def init_name(model) -> str:
    """What a fine-tuned model grew from, by name, version and checksum: a path means nothing on another machine."""
    return f"{model.config.get('name', model.path.name)} {model.version} (weights sha256 {model.config.get('weights_sha256', '?')})"


def _split(n: int, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    order = list(np.random.default_rng(seed).permutation(n))
    if n == 1:
        return order, order
    n_val = max(1, int(round(n * val_fraction)))
    return order[n_val:], order[:n_val]


def train_model(sessions: Path | str, out_dir: Path | str, *, epochs: int = 30, seed: int = 0,
                device: str = "auto", init: Path | str | None = None, cache_dir: Path | str | None = None,
                holdout: Path | str | None = None, val_fraction: float = 0.15, patience: int = 5,
                lr: float = 2e-3, max_minutes: float | None = None, version: str = "1.0.0",
                command: str | None = None, notes: str | None = None,
                progress: Callable[[str, float], None] | None = None,
                log: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or fine-tune from ``init``) on the session folders under ``sessions``; write ``out_dir``."""
    import torch

    from .net import HitNet, NetConfig
    from .weights import load_model, resolve_train_device, save_model

    log = log or (lambda msg: None)
    started = time.monotonic()
    used, _ = resolve_train_device(device)
    _seed_all(seed)
    folders = find_sessions(sessions)
    if not folders:
        raise InputError(f"{sessions}: no session folders with a truth.json (make some with `beatfix synth`)")
    parent = None
    if init is not None:
        base = load_model(init, "cpu", backend="torch")
        feat_cfg, net, parent = base.features, base.net, init_name(base)
    else:
        feat_cfg = FeatureConfig()
        net = HitNet(NetConfig(n_bands=feat_cfg.n_bands, fine_frames=feat_cfg.fine_frames,
                               coarse_frames=feat_cfg.coarse_frames))
    net.to(used)
    cache = Path(cache_dir) if cache_dir else Path(sessions) / ".beatfix-cache"
    exs = load_or_build(folders, feat_cfg, cache, progress=progress)
    held_cache = Path(cache_dir) if cache_dir else Path(holdout) / ".beatfix-cache" if holdout else None
    held = load_or_build(find_sessions(holdout), feat_cfg, held_cache, progress=progress) if holdout else None
    train_idx, val_idx = _split(len(exs), seed, val_fraction)
    train_exs, val_exs = [exs[i] for i in train_idx], [exs[i] for i in val_idx]
    n_train_events = sum(e.n_events for e in train_exs)
    log(f"{len(train_exs)} training sessions ({n_train_events} candidates), {len(val_exs)} validation")
    if n_train_events == 0:
        raise InputError(f"{sessions}: no onset candidates found in the training sessions")

    opt = torch.optim.Adam(net.parameters(), lr=lr if init is None else lr / 4)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.93)
    rng = np.random.default_rng(seed)
    best, best_epoch, best_state, bad, history = math.inf, 0, None, 0, []
    epoch = 0
    for epoch in range(1, epochs + 1):
        net.train()
        chunks = []
        for si, ex in enumerate(train_exs):
            # a random phase each epoch, so chunk borders move
            start = int(rng.integers(0, CHUNK_EVENTS)) if ex.n_events > CHUNK_EVENTS else 0
            edges = ([0] if start else []) + list(range(start, ex.n_events, CHUNK_EVENTS)) + [ex.n_events]
            chunks += [(si, lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]
        order = rng.permutation(len(chunks))
        grids = [with_grid(ex, perturb_grid(ex.grid, rng, ex.duration_s), feat_cfg.drift_window_s)
                 if rng.random() < MOVE_GRID else (ex.context, ex.slot) for ex in train_exs]
        total = 0.0
        for step, ci in enumerate(order):
            si, lo, hi = chunks[ci]
            ex = train_exs[si]
            keep = None
            n_ch = ex.roles.size
            if n_ch > 1 and rng.random() < 0.5:  # fewer mics: sessions come with 1-16 channels
                keep = rng.random(n_ch) < rng.uniform(0.4, 0.9)
                if not keep.any() or not keep[ex.target[lo:hi]].any():
                    keep = None
            batch = _tensors(ex, lo, hi, used, keep=keep, context=grids[si][0], slot=grids[si][1])
            if batch[4].numel() == 0:
                continue
            batch = list(batch)
            batch[2] = batch[2] + torch.randn_like(batch[2]) * 0.1  # the level reference, +-4 dB
            loss, _parts = _loss(net, batch, drop_context=rng.random() < 0.1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 2.0)
            opt.step()
            total += loss.item()
            if progress:
                progress(f"epoch {epoch}/{epochs}", (epoch - 1 + (step + 1) / len(order)) / epochs)
        sched.step()
        net.eval()
        with torch.no_grad():
            val = sum(_loss(net, _tensors(e, 0, e.n_events, used))[0].item() * e.n_events for e in val_exs if e.n_events)
            val /= max(1, sum(e.n_events for e in val_exs))
        history.append({"epoch": epoch, "train_loss": total / max(1, len(order)), "val_loss": val,
                        "seconds": round(time.monotonic() - started, 1)})
        log(f"epoch {epoch}: train {history[-1]['train_loss']:.4f}  validation {val:.4f}")
        if val < best - 1e-4:
            best, best_epoch, bad = val, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                log(f"early stop: no better validation loss since epoch {best_epoch}")
                break
        if max_minutes is not None and time.monotonic() - started > max_minutes * 60:
            log(f"time limit of {max_minutes:g} min reached")
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    validation = evaluate(net, val_exs, used)
    held_metrics = evaluate(net, held, used) if held else None
    # The onset correction is applied at run time only if it beat the classic refinement on validation.
    classic_mae = (validation.get("classic") or {}).get("onset_mae_ms")
    apply_offset = bool(classic_mae is not None and validation["neural"]["onset_mae_ms"] < classic_mae)
    net.cpu()
    seconds = time.monotonic() - started
    from .net import count_parameters

    summary = {
        "parameters": count_parameters(net), "architecture": net.cfg.to_dict(), "device": used,
        "data": describe_data(folders, Path(sessions)), "notes": notes,
        "version": version, "seed": seed, "epochs_run": epoch, "best_epoch": best_epoch,
        "train_seconds": round(seconds, 1), "train_sessions": len(train_exs), "val_sessions": len(val_exs),
        "train_candidates": n_train_events, "init": parent, "command": command,
        "validation": validation, "holdout": held_metrics, "history": history, "apply_offset": apply_offset,
    }
    sha = save_model(net, feat_cfg, out_dir, version=version, card=None,
                     extra={"apply_offset": apply_offset, "training": {k: summary[k] for k in ("seed", "epochs_run", "best_epoch", "train_seconds",
                                                                   "train_sessions", "train_candidates", "init")}})
    saved = json.loads((Path(out_dir) / "config.json").read_text(encoding="utf-8"))
    onnx_shas = {name: saved.get(key, "") for name, key in (("encoder.onnx", "encoder_sha256"),
                                                             ("decoder.onnx", "decoder_sha256"))}
    (Path(out_dir) / "MODEL_CARD.md").write_text(model_card(summary, sha, onnx_shas), encoding="utf-8")
    (Path(out_dir) / "metrics.json").write_text(json.dumps(summary, indent=1, default=float) + "\n", encoding="utf-8")
    return TrainResult(Path(out_dir), sha, epoch, best_epoch, seconds, len(train_exs), len(val_exs), n_train_events,
                       validation, held_metrics, history)
