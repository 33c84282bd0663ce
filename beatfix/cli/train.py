"""``beatfix train``: train or fine-tune the neural hit model on sessions with ground truth."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from . import common

HELP = """Train the neural hit model (bleed or own drum, onset, grid slot) on sessions with truth.json.

Sessions are folders of stems plus a truth.json, as `beatfix synth` writes
them. Candidates come from the classic onset detector; the model learns which
are bleed, where each attack really starts and which grid slot it belongs to.
A model folder is written: config.json, weights.pt (torch), encoder.onnx and
decoder.onnx (what `report` and `align` run), SHA256SUMS, MODEL_CARD.md and
metrics.json (neural vs classic judge on the validation sessions). Training
needs torch: pip install 'beatfix[train]'.

\b
Examples:
  beatfix synth data/train --sessions 60 --seed 1
  beatfix train --sessions data/train --out my_model/
  beatfix train --sessions my_kit_sessions/ --out my_kit_model/ --init models/beatfix-hit-v1 --epochs 8

Features are cached under SESSIONS/.beatfix-cache (or --cache), so a second
run starts at once. On 2 CPU cores, caching 60 sessions of 20 s takes about 6
minutes and training about 20; fine-tuning on 20 sessions of your kit with
--init and --epochs 8 about 10. --max-minutes (45 by default) caps training.
"""

MSG_DEVICE = "no CUDA GPU found: training on the CPU"
MSG_NO_TORCH = "beatfix train needs torch and onnx ({name} is not installed): pip install 'beatfix[train]'"
MSG_DONE = "wrote {out} (sha256 {sha}), best epoch {best} of {ran}, {minutes:.1f} min"
MSG_TABLE_HEAD = "{:<28}{:>10}{:>10}"


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train", help=HELP, no_args_is_help=True)(train)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _print_metrics(title: str, metrics: dict) -> None:
    rows = (("own-hit precision", "precision"), ("own-hit recall (truth)", "recall_truth"),
            ("bleed false-trigger rate", "bleed_false_trigger_rate"), ("missed soft hits", "missed_soft"),
            ("missed soft-hit rate", "missed_soft_rate"), ("onset MAE, ms", "onset_mae_ms"),
            ("slot accuracy", "slot_accuracy"), ("slot accuracy, |phase|>0.3", "slot_accuracy_hard"))
    neural, classic = metrics["neural"], metrics.get("classic") or {}
    typer.echo(f"{title}: {metrics['sessions']} sessions, {metrics['candidates']} candidates "
               f"({metrics['bleed_candidates']} bleed), {metrics['true_soft_onsets']} soft hits")
    typer.echo(MSG_TABLE_HEAD.format("", "neural", "classic"))
    for label, key in rows:
        base = classic.get(key)
        if key.startswith("slot_accuracy"):
            base = metrics.get("classic_" + key)
        typer.echo(MSG_TABLE_HEAD.format(label, _fmt(neural.get(key)), _fmt(base)))
    grid_error = metrics.get("grid_error")
    if grid_error:
        typer.echo(MSG_TABLE_HEAD.format("slot accuracy, grid off", _fmt(grid_error["neural_slot_accuracy"]),
                                         _fmt(grid_error["classic_slot_accuracy"])))


def train(
    sessions: Path = typer.Option(..., "--sessions", help="Folder of session folders (stems + truth.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (config.json, weights.pt, ...)."),
    epochs: int = typer.Option(30, "--epochs", help="Most epochs; training stops early when validation stalls."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the initialisation and the batches."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    init: Optional[Path] = typer.Option(None, "--init", help="Fine-tune this model folder instead of starting afresh."),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="Also report on these held-out sessions."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Feature cache folder (default SESSIONS/.beatfix-cache)."),
    max_minutes: Optional[float] = typer.Option(45.0, "--max-minutes",
                                                help="Stop training after this long, keeping the best epoch."),
    version: str = typer.Option("1.0.0", "--model-version", help="Version recorded in config.json."),
    force: bool = typer.Option(False, "--force", help="Write into --out even if it holds other files."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
) -> None:
    from ..errors import BeatfixError, OutputError, ParameterError
    from ..neural.weights import LEGACY_FILES, MODEL_FILES

    if epochs < 1:
        raise ParameterError(f"--epochs {epochs}: use 1 or more")
    if device.lower() not in ("auto", "cpu", "cuda"):
        raise ParameterError(f"--device {device!r}: use auto, cpu or cuda")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    known = {*MODEL_FILES, *LEGACY_FILES}  # a model folder, this beatfix's or an older one's, is retrained into
    if out.is_dir() and not force and any(p.name not in known for p in out.iterdir()):
        raise OutputError(f"--out {out}: folder holds other files (use --force to write into it)")
    if not sessions.is_dir():
        raise ParameterError(f"--sessions {sessions}: no such folder")

    for module in ("torch", "onnx"):  # before any work, one line instead of an ImportError mid-training
        try:
            __import__(module)
        except ImportError:
            raise BeatfixError(MSG_NO_TORCH.format(name=module)) from None
    from ..neural.train import train_model
    from ..neural.weights import resolve_train_device

    used, fell_back = resolve_train_device(device)
    if fell_back:
        common.warn([MSG_DEVICE])
    command = "beatfix train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["train"] else None
    show = common.is_tty() if progress is None else progress
    with common.progress_bar("training", enabled=show) as bar:
        result = train_model(sessions, out, epochs=epochs, seed=seed, device=used, init=init, cache_dir=cache,
                             holdout=holdout, max_minutes=max_minutes, version=version, command=command,
                             progress=bar, log=(lambda msg: None) if show else (lambda msg: typer.echo(msg, err=True)))
    _print_metrics("validation", result.validation)
    if result.holdout:
        _print_metrics("held out", result.holdout)
    typer.echo(MSG_DONE.format(out=out, sha=result.sha256[:12], best=result.best_epoch, ran=result.epochs_run,
                               minutes=result.seconds / 60))
