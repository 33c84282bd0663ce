"""Versioned model folders: ``config.json`` + ``weights.pt`` + ``MODEL_CARD.md`` + ``SHA256SUMS``.

The weights' sha256 is recorded in ``config.json`` and in ``SHA256SUMS`` and is
checked before ``torch.load`` touches the file, so a truncated download or a
tampered file is one clear error, not a pickle traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

MODEL_NAME = "beatfix-hit-v1"
FORMAT = 1  # bump when config.json or the state dict layout changes incompatibly
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"
SUMS_FILE = "SHA256SUMS"
CARD_FILE = "MODEL_CARD.md"


def models_root() -> Path:
    """Where shipped model folders live: ``beatfix._models`` when installed, else ``<repo>/models``."""
    try:
        from importlib.resources import files

        root = files("beatfix._models")
        path = Path(str(root))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError, ValueError):
        pass
    return Path(__file__).resolve().parents[2] / "models"


def default_model_dir() -> Path:
    return models_root() / MODEL_NAME


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_device(device: str = "auto") -> tuple[str, bool]:
    """``auto`` -> ``cuda`` when available, else ``cpu``. Returns ``(device, fell_back_to_cpu)``.

    ``fell_back_to_cpu`` is true only for ``auto`` without a GPU, so a caller can
    say once that the model runs on the CPU.
    """
    import torch

    name = (device or "auto").lower()
    if name == "auto":
        return ("cuda", False) if torch.cuda.is_available() else ("cpu", True)
    if name == "cpu":
        return "cpu", False
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelError("--device cuda: no CUDA GPU is available (use --device cpu or auto)")
        return name, False
    raise ModelError(f"--device {device!r}: use auto, cpu or cuda")


@dataclass
class LoadedModel:
    net: "object"  # HitNet, in eval mode, on ``device``
    features: "object"  # FeatureConfig
    config: dict
    path: Path
    device: str
    fell_back: bool  # auto asked for a GPU that is not there

    @property
    def version(self) -> str:
        return str(self.config.get("version", "?"))


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"{folder}: not a beatfix model folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model config ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or "architecture" not in config or "features" not in config:
        raise ModelError(f"{path}: model config lacks architecture or features")
    if int(config.get("format", -1)) != FORMAT:
        raise ModelError(f"{path}: model format {config.get('format')!r} is not supported (this beatfix reads format {FORMAT})")
    return config


def _expected_sha(folder: Path, config: dict) -> str:
    expected = str(config.get("weights_sha256", "")).lower()
    sums = folder / SUMS_FILE
    if sums.is_file():
        for line in sums.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == WEIGHTS_FILE:
                if expected and parts[0].lower() != expected:
                    raise ModelError(f"{folder}: {SUMS_FILE} and {CONFIG_FILE} disagree on the weights' sha256")
                expected = parts[0].lower()
    if not expected:
        raise ModelError(f"{folder}: no sha256 recorded for {WEIGHTS_FILE}")
    return expected


def model_folder(path: Path | str | None) -> Path:
    folder = default_model_dir() if path is None else Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.exists():
        raise ModelError(f"{folder}: no such model folder")
    return folder


def load_model(path: Path | str | None = None, device: str = "auto") -> LoadedModel:
    """Load a model folder (default: the shipped ``beatfix-hit-v1``) for inference.

    The sha256 is verified before loading; the state dict is loaded with
    ``weights_only=True`` on the CPU, then moved to ``device``.
    """
    import torch

    from .features import FeatureConfig
    from .net import HitNet, NetConfig

    folder = model_folder(path)
    config = _read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{folder}: {WEIGHTS_FILE} is missing")
    expected = _expected_sha(folder, config)
    actual = sha256_file(weights)
    if actual != expected:
        raise ModelError(f"{weights}: checksum mismatch (sha256 {actual[:12]}..., expected {expected[:12]}...): the file is corrupt or was changed")
    used, fell_back = resolve_device(device)
    try:
        net_cfg = NetConfig.from_dict(config["architecture"])
        feat_cfg = FeatureConfig.from_dict(config["features"])
        net = HitNet(net_cfg)
        state = torch.load(str(weights), weights_only=True, map_location="cpu")
        net.load_state_dict(state)
    except ModelError:
        raise
    except Exception as exc:  # a config/state mismatch is a broken model, not a bug of ours
        raise ModelError(f"{folder}: incompatible model ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
    net.eval()
    net.to(used)
    return LoadedModel(net=net, features=feat_cfg, config=config, path=folder, device=used, fell_back=fell_back)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; shipped model files must be readable by all
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_model(net, features, folder: Path | str, *, version: str = "1.0.0", card: str | None = None,
               extra: dict | None = None) -> str:
    """Write a model folder; returns the weights' sha256."""
    import io

    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, buf)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    _atomic_write(folder / WEIGHTS_FILE, data)
    config = {
        "name": folder.name,
        "version": version,
        "format": FORMAT,
        "architecture": net.cfg.to_dict(),
        "features": features.to_dict(),
        "weights_sha256": sha,
        **(extra or {}),
    }
    _atomic_write(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    _atomic_write(folder / SUMS_FILE, f"{sha}  {WEIGHTS_FILE}\n".encode())
    if card is not None:
        _atomic_write(folder / CARD_FILE, card.encode())
    return sha


def tiny_model(folder: Path | str, *, seed: int = 0) -> Path:
    """A small randomly initialised model folder, for fast end-to-end tests."""
    import torch

    from .features import FeatureConfig
    from .net import HitNet, NetConfig

    torch.manual_seed(seed)
    feat = FeatureConfig(fine_frames=32, coarse_frames=20)
    net = HitNet(NetConfig(fine_frames=feat.fine_frames, coarse_frames=feat.coarse_frames, width=16,
                           role_dim=4, heads=2, gru_hidden=8))
    save_model(net, feat, folder, version="0.0.0-tiny",
               card="# tiny test model\n\nRandomly initialised; for tests only.\n", extra={"tiny": True})
    return Path(folder)
