"""Versioned model folders: ``config.json`` + ``weights.pt`` + ``weights.npz`` + ``MODEL_CARD.md`` + ``SHA256SUMS``.

``weights.pt`` is the torch state dict (training, CUDA); ``weights.npz`` holds
the same tensors as plain arrays for the numpy forward pass
(:mod:`~beatfix.neural.runtime`), which is how the model runs on a CPU: no
torch import, about 180 MB less memory. A folder without ``weights.npz`` (made
by an older beatfix) runs through torch on the CPU as well.

Every file's sha256 is recorded in ``config.json`` and in ``SHA256SUMS`` and is
checked before anything parses the file, so a truncated download or a
tampered file is one clear error, not a pickle traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError

MODEL_NAME = "beatfix-hit-v1"
FORMAT = 1  # bump when config.json or the state dict layout changes incompatibly
WEIGHTS_FILE = "weights.pt"
ARRAYS_FILE = "weights.npz"
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


# Torch threads for inference on the CPU (the torch path). The model is small: a second thread
# gains little, and on a busy machine its spin-waits cost several times the work.
CPU_THREADS = 1


def _cuda_possible() -> bool:
    """False where no CUDA GPU can be, told without importing torch (no NVIDIA driver on Linux; macOS)."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")
    return True  # elsewhere torch is asked


def _cuda_available() -> bool:
    if not _cuda_possible():
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto") -> tuple[str, bool]:
    """``auto`` -> ``cuda`` when available, else ``cpu``. Returns ``(device, fell_back_to_cpu)``.

    ``fell_back_to_cpu`` is true only for ``auto`` without a GPU, so a caller can
    say once that the model runs on the CPU. Torch is imported only where a GPU may be.
    """
    name = (device or "auto").lower()
    if name == "auto":
        return ("cuda", False) if _cuda_available() else ("cpu", True)
    if name == "cpu":
        return "cpu", False
    if name == "cuda" or name.startswith("cuda:"):
        if not _cuda_available():
            raise ModelError("--device cuda: no CUDA GPU is available (use --device cpu or auto)")
        return name, False
    raise ModelError(f"--device {device!r}: use auto, cpu or cuda")


@contextmanager
def _torch_threads(device: str):
    """At most :data:`CPU_THREADS` torch threads while the model runs on the CPU; restored after."""
    import torch

    before = torch.get_num_threads()
    if device == "cpu" and before > CPU_THREADS:
        torch.set_num_threads(CPU_THREADS)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@dataclass
class LoadedModel:
    """A model ready for inference: ``encode`` and ``decode`` take and give numpy arrays."""

    net: "object"  # HitNet in eval mode on ``device`` (backend "torch"), or a NumpyHitNet ("numpy")
    features: "object"  # FeatureConfig
    config: dict
    path: Path
    device: str
    fell_back: bool  # auto asked for a GPU that is not there
    backend: str = "torch"

    @property
    def version(self) -> str:
        return str(self.config.get("version", "?"))

    def encode(self, fine, coarse, chan, roles, target) -> np.ndarray:
        """Event embeddings ``(E, D)`` float32 (see :meth:`~beatfix.neural.net.HitNet.encode`)."""
        if self.backend == "numpy":
            return self.net.encode(fine, coarse, chan, roles, target)
        import torch

        with torch.inference_mode(), _torch_threads(self.device):
            args = (torch.from_numpy(np.asarray(a)).to(self.device) for a in (fine, coarse, chan, roles, target))
            return self.net.encode(*args).float().cpu().numpy()

    def decode(self, emb: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``own_logit (S, E)``, ``offset_ms (S, E)``, ``slot_logits (S, E, 3)`` as float32 arrays."""
        if self.backend == "numpy":
            return self.net.decode(emb, context)
        import torch

        with torch.inference_mode(), _torch_threads(self.device):
            out = self.net.decode(torch.from_numpy(emb).to(self.device), torch.from_numpy(context).to(self.device))
            return tuple(o.float().cpu().numpy() for o in out)


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


_SHA_KEYS = {WEIGHTS_FILE: "weights_sha256", ARRAYS_FILE: "arrays_sha256"}


def _expected_sha(folder: Path, config: dict, name: str = WEIGHTS_FILE) -> str:
    expected = str(config.get(_SHA_KEYS[name], "")).lower()
    sums = folder / SUMS_FILE
    if sums.is_file():
        for line in sums.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == name:
                if expected and parts[0].lower() != expected:
                    raise ModelError(f"{folder}: {SUMS_FILE} and {CONFIG_FILE} disagree on the sha256 of {name}")
                expected = parts[0].lower()
    if not expected:
        raise ModelError(f"{folder}: no sha256 recorded for {name}")
    return expected


def _verified(folder: Path, config: dict, name: str) -> Path:
    path = folder / name
    expected = _expected_sha(folder, config, name)
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(f"{path}: checksum mismatch (sha256 {actual[:12]}..., expected {expected[:12]}...): the file is corrupt or was changed")
    return path


def model_folder(path: Path | str | None) -> Path:
    folder = default_model_dir() if path is None else Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.exists():
        raise ModelError(f"{folder}: no such model folder")
    return folder


def load_model(path: Path | str | None = None, device: str = "auto", *, backend: str = "auto") -> LoadedModel:
    """Load a model folder (default: the shipped ``beatfix-hit-v1``) for inference.

    ``backend``: ``auto`` runs on the CPU through numpy when the folder has
    ``weights.npz`` (torch is not imported), through torch otherwise and on a
    GPU; ``torch`` always gives the torch module (training starts from it).
    Checksums are verified before a file is parsed; torch state dicts load
    with ``weights_only=True`` on the CPU and then move to ``device``.
    """
    from .features import FeatureConfig

    if backend not in ("auto", "torch"):
        raise ValueError(f"backend {backend!r}: use auto or torch")
    folder = model_folder(path)
    config = _read_config(folder)
    if not (folder / WEIGHTS_FILE).is_file():
        raise ModelError(f"{folder}: {WEIGHTS_FILE} is missing")
    used, fell_back = resolve_device(device)
    has_arrays = (folder / ARRAYS_FILE).is_file()
    use_arrays = backend == "auto" and used == "cpu" and has_arrays
    # every weights file is checked, the one not used as well: a folder is intact or refused
    weights = _verified(folder, config, WEIGHTS_FILE)
    arrays = _verified(folder, config, ARRAYS_FILE) if has_arrays else None
    try:
        feat_cfg = FeatureConfig.from_dict(config["features"])
        if use_arrays:
            from .arch import NetConfig
            from .runtime import NumpyHitNet

            with np.load(str(arrays), allow_pickle=False) as data:
                net = NumpyHitNet(NetConfig.from_dict(config["architecture"]), {k: data[k] for k in data.files})
            return LoadedModel(net=net, features=feat_cfg, config=config, path=folder, device="cpu",
                               fell_back=fell_back, backend="numpy")
        import torch

        from .net import HitNet, NetConfig

        net = HitNet(NetConfig.from_dict(config["architecture"]))
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


def _write_sums(folder: Path, weights_sha: str, arrays_sha: str) -> None:
    _atomic_write(folder / SUMS_FILE, f"{weights_sha}  {WEIGHTS_FILE}\n{arrays_sha}  {ARRAYS_FILE}\n".encode())


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
    arrays = _arrays_bytes(state)
    arrays_sha = hashlib.sha256(arrays).hexdigest()
    _atomic_write(folder / ARRAYS_FILE, arrays)
    config = {
        "name": folder.name,
        "version": version,
        "format": FORMAT,
        "architecture": net.cfg.to_dict(),
        "features": features.to_dict(),
        "weights_sha256": sha,
        "arrays_sha256": arrays_sha,
        **(extra or {}),
    }
    _atomic_write(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    _write_sums(folder, sha, arrays_sha)
    if card is not None:
        _atomic_write(folder / CARD_FILE, card.encode())
    return sha


def _arrays_bytes(state) -> bytes:
    """A torch state dict as ``weights.npz`` content (float32 arrays, no pickles)."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **{k: v.detach().cpu().float().numpy() for k, v in state.items()})
    return buf.getvalue()


def add_arrays(folder: Path | str) -> str:
    """Give a model folder made without ``weights.npz`` (an older beatfix) its numpy weights.

    The torch weights are verified and converted; ``config.json`` and
    ``SHA256SUMS`` gain the new file's sha256, which is returned.
    """
    import torch

    folder = model_folder(folder)
    config = _read_config(folder)
    state = torch.load(str(_verified(folder, config, WEIGHTS_FILE)), weights_only=True, map_location="cpu")
    data = _arrays_bytes(state)
    sha = hashlib.sha256(data).hexdigest()
    _atomic_write(folder / ARRAYS_FILE, data)
    ordered = {}
    for key, value in config.items():  # the arrays' sha goes next to the weights'
        if key != "arrays_sha256":
            ordered[key] = value
        if key == "weights_sha256":
            ordered["arrays_sha256"] = sha
    ordered.setdefault("arrays_sha256", sha)
    _atomic_write(folder / CONFIG_FILE, (json.dumps(ordered, indent=2) + "\n").encode())
    _write_sums(folder, config["weights_sha256"], sha)
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


def model_identity(path: Path | str | None = None) -> dict:
    """``{name, version, sha256, files_sha256}`` of a model folder, from its config and SHA256SUMS.

    For provenance (edits.json): the checksums recorded with the model, which
    :func:`load_model` verified against the files before using them.
    """
    folder = model_folder(path)
    config = _read_config(folder)
    files = {name: _expected_sha(folder, config, name) for name in _SHA_KEYS if (folder / name).is_file()}
    return {"name": str(config.get("name", folder.name)), "version": str(config.get("version", "?")),
            "sha256": files.get(WEIGHTS_FILE), "files_sha256": files}
