"""Versioned model folders: ``config.json`` + ``weights.pt`` + ``encoder.onnx`` + ``decoder.onnx`` + ``MODEL_CARD.md`` + ``SHA256SUMS``.

``weights.pt`` is the torch state dict (training, fine-tuning); ``encoder.onnx``
and ``decoder.onnx`` are its export (:mod:`~beatfix.neural.export`), which is
what runs: onnxruntime on the CPU, or on a GPU through its CUDA provider (or,
without ``onnxruntime-gpu``, torch's CUDA). Running the model never imports
torch on the CPU. Every save writes all of them, so a retrained model ships
its ONNX too.

Every file's sha256 is recorded in ``config.json`` and in ``SHA256SUMS`` and is
checked before anything parses the file, so a truncated download or a
tampered file is one clear error, not a pickle or protobuf traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ModelError
from .export import DECODER_FILE, ENCODER_FILE

MODEL_NAME = "beatfix-hit-v1"
FORMAT = 1  # bump when config.json or the state dict layout changes incompatibly
WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"
SUMS_FILE = "SHA256SUMS"
CARD_FILE = "MODEL_CARD.md"
METRICS_FILE = "metrics.json"
# numpy arrays of the state dict, what beatfix 0.1's hand-written CPU forward pass read; a save removes it
LEGACY_FILES = ("weights.npz",)
# every file a saved (and trained) model folder holds
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, ENCODER_FILE, DECODER_FILE, SUMS_FILE, CARD_FILE, METRICS_FILE)
# Above this much audio (channels x minutes), `--device auto` runs the model on a GPU when one can.
# Below it the CPU is faster overall: on an H200, CUDA start-up (torch import, context, first kernels)
# cost about 3 s per command and 1.2-1.9 GB of memory. The model's own CPU time reaches 3 s at 36-140
# channel-minutes (measured: 0.083 s per channel-minute on a dense 9-stem session, 0.022 on the sparse
# 7-stem example); the limit sits at the top of that range because a wrong GPU choice also costs the
# memory. Not measured on a GPU (README, "The neural hit model").
AUTO_GPU_MIN_CHANNEL_MINUTES = 150.0


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


# Torch threads while the torch module runs on the CPU (training's evaluation, tests). The model is
# small: a second thread gains little, and on a busy machine its spin-waits cost several times the work.
CPU_THREADS = 1


def _cuda_possible() -> bool:
    """False where no CUDA GPU can be, told without importing anything (no NVIDIA driver on Linux; macOS)."""
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")
    return True  # elsewhere the runtimes are asked


def torch_cuda_available() -> bool:
    """torch is installed (the ``train`` or ``cuda`` extra) and sees a CUDA GPU."""
    if not _cuda_possible():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def onnx_cuda_available() -> bool:
    """onnxruntime has its CUDA provider (``onnxruntime-gpu``) and a driver is there."""
    from .runtime import cuda_provider_available

    return _cuda_possible() and cuda_provider_available()


def resolve_train_device(device: str = "auto") -> tuple[str, bool]:
    """Training's torch device: ``auto`` -> ``cuda`` when torch sees one, else ``cpu``.

    Returns ``(device, fell_back_to_cpu)``; ``fell_back_to_cpu`` is true only for
    ``auto`` without a GPU, so a caller can say once that training runs on the CPU.
    """
    name = (device or "auto").lower()
    if name == "auto":
        return ("cuda", False) if torch_cuda_available() else ("cpu", True)
    if name == "cpu":
        return "cpu", False
    if name == "cuda" or name.startswith("cuda:"):
        if not torch_cuda_available():
            raise ModelError(f"--device {name}: no CUDA GPU is available to torch (use --device cpu or auto)")
        return name, False
    raise ModelError(f"--device {device!r}: use auto, cpu or cuda")


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cpu", "cuda" or "cuda:N"
    backend: str  # "onnx" (onnxruntime) or "torch" (a GPU without onnxruntime-gpu)
    reason: str = ""  # for ``auto``: one informational line saying what was chosen and why


def choose_device(device: str = "auto", *, channel_minutes: float | None = None,
                  onnx_cuda: Callable[[], bool] | None = None,
                  torch_cuda: Callable[[], bool] | None = None) -> DeviceChoice:
    """Where inference runs. ``auto`` picks by the job: the CPU unless the session holds more than
    :data:`AUTO_GPU_MIN_CHANNEL_MINUTES` of audio (stems x minutes) and a CUDA GPU can run the model.

    A GPU is reached through onnxruntime's CUDA provider, else through torch. The
    runtimes are asked only when the job is large enough to want a GPU, so a small
    job never imports torch. Raises :class:`ModelError` for ``cuda`` without a GPU.
    ``onnx_cuda`` and ``torch_cuda`` answer whether each runtime has a GPU (tests pass fakes).
    """
    onnx_cuda = onnx_cuda or onnx_cuda_available
    torch_cuda = torch_cuda or torch_cuda_available
    name = (device or "auto").lower()
    if name == "cpu":
        return DeviceChoice("cpu", "onnx")
    if name == "cuda" or name.startswith("cuda:"):
        if onnx_cuda():
            return DeviceChoice(name, "onnx")
        if torch_cuda():
            return DeviceChoice(name, "torch")
        raise ModelError(f"--device {name}: no CUDA GPU is available (use --device cpu or auto)")
    if name != "auto":
        raise ModelError(f"--device {device!r}: use auto, cpu or cuda")
    limit = AUTO_GPU_MIN_CHANNEL_MINUTES
    if channel_minutes is None:
        return DeviceChoice("cpu", "onnx", "device auto: CPU (the size of the job is not known)")
    size = f"{channel_minutes:.1f} channel-minutes of audio"
    if channel_minutes <= limit:
        return DeviceChoice("cpu", "onnx", f"device auto: CPU ({size}; a GPU pays for its start-up above {limit:g})")
    if onnx_cuda():
        return DeviceChoice("cuda", "onnx", f"device auto: GPU, onnxruntime CUDA ({size}, over {limit:g})")
    if torch_cuda():
        return DeviceChoice("cuda", "torch", f"device auto: GPU, torch CUDA ({size}, over {limit:g})")
    return DeviceChoice("cpu", "onnx", f"device auto: CPU ({size} would go to a GPU, but no CUDA GPU was found)")


class _TorchThreads:
    """At most :data:`CPU_THREADS` torch threads while the torch module runs on the CPU; restored after."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self) -> None:
        import torch

        self.before = torch.get_num_threads()
        if self.device == "cpu" and self.before > CPU_THREADS:
            torch.set_num_threads(CPU_THREADS)

    def __exit__(self, *exc: object) -> None:
        import torch

        if torch.get_num_threads() != self.before:
            torch.set_num_threads(self.before)


@dataclass
class LoadedModel:
    """A model ready for inference: ``encode`` and ``decode`` take and give numpy arrays."""

    net: Any  # OnnxHitNet (backend "onnx"), or HitNet in eval mode on ``device`` (backend "torch")
    features: Any  # FeatureConfig
    config: dict
    path: Path
    device: str
    backend: str = "onnx"
    reason: str = ""  # why ``device`` was chosen (``--device auto``), one line for the user

    @property
    def version(self) -> str:
        return str(self.config.get("version", "?"))

    def encode(self, fine, coarse, chan, roles, target) -> np.ndarray:
        """Event embeddings ``(E, D)`` float32 (see :meth:`~beatfix.neural.net.HitNet.encode`)."""
        if self.backend == "onnx":
            return self.net.encode(fine, coarse, chan, roles, target)
        import torch

        with torch.inference_mode(), _TorchThreads(self.device):
            args = (torch.from_numpy(np.asarray(a)).to(self.device) for a in (fine, coarse, chan, roles, target))
            return self.net.encode(*args).float().cpu().numpy()

    def decode(self, emb: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``own_logit (S, E)``, ``offset_ms (S, E)``, ``slot_logits (S, E, 3)`` as float32 arrays."""
        if self.backend == "onnx":
            return self.net.decode(emb, context)
        import torch

        with torch.inference_mode(), _TorchThreads(self.device):
            own, off, slot = self.net.decode(torch.from_numpy(emb).to(self.device),
                                             torch.from_numpy(context).to(self.device))
            return own.float().cpu().numpy(), off.float().cpu().numpy(), slot.float().cpu().numpy()


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


_SHA_KEYS = {WEIGHTS_FILE: "weights_sha256", ENCODER_FILE: "encoder_sha256", DECODER_FILE: "decoder_sha256"}


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


def _verified_bytes(folder: Path, config: dict, name: str) -> bytes:
    """The file's content, once its sha256 matched: what was checked is what gets parsed."""
    path = folder / name
    if not path.is_file():
        hint = " (made by an older beatfix: install beatfix[train] and run beatfix.neural.weights.add_onnx on it)" \
            if name in (ENCODER_FILE, DECODER_FILE) else ""
        raise ModelError(f"{folder}: {name} is missing{hint}")
    expected = _expected_sha(folder, config, name)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelError(f"{path}: checksum mismatch (sha256 {actual[:12]}..., expected {expected[:12]}...): the file is corrupt or was changed")
    return data


def model_folder(path: Path | str | None) -> Path:
    folder = default_model_dir() if path is None else Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.exists():
        raise ModelError(f"{folder}: no such model folder")
    return folder


def _check_graph_shapes(net, config: dict) -> None:
    """The encoder's band and frame axes against ``config.json``: a mismatch is refused here, not mid-analysis."""
    arch = config["architecture"]
    want = {"fine": [arch["n_bands"], arch["fine_frames"]], "coarse": [arch["n_bands"], arch["coarse_frames"]]}
    for inp in net._encoder.get_inputs():
        if inp.name in want and list(inp.shape[2:]) != want[inp.name]:
            raise ValueError(f"encoder input {inp.name} has shape {inp.shape}, config says (E, C, {want[inp.name]})")


def load_model(path: Path | str | None = None, device: str = "auto", *, backend: str = "auto",
               channel_minutes: float | None = None) -> LoadedModel:
    """Load a model folder (default: the shipped ``beatfix-hit-v1``) for inference.

    ``backend``: ``auto`` runs the ONNX graphs with onnxruntime on the device
    :func:`choose_device` picks (``channel_minutes``, the session's stems x
    minutes, sizes the job for ``device="auto"``); ``torch`` gives the torch
    module (training starts from it). Every weights file is checksummed before
    it is parsed, the ones not used as well: a folder is intact or refused.
    """
    from .features import FeatureConfig

    if backend not in ("auto", "torch"):
        raise ValueError(f"backend {backend!r}: use auto or torch")
    folder = model_folder(path)
    config = _read_config(folder)
    # the torch module needs only weights.pt (fine-tuning a folder from before the ONNX export works);
    # whatever is there is verified all the same
    names = [WEIGHTS_FILE] + [n for n in (ENCODER_FILE, DECODER_FILE) if backend == "auto" or (folder / n).exists()]
    files = {name: _verified_bytes(folder, config, name) for name in names}
    if backend == "torch":
        used, _ = resolve_train_device(device)
        choice = DeviceChoice(used, "torch")
    else:
        choice = choose_device(device, channel_minutes=channel_minutes)
    try:
        feat_cfg = FeatureConfig.from_dict(config["features"])
        if choice.backend == "onnx":
            from .runtime import OnnxHitNet

            net: Any = OnnxHitNet(files[ENCODER_FILE], files[DECODER_FILE], device=choice.device, source=folder)
            if choice.device != "cpu" and not net.on_gpu:
                # onnxruntime falls back to its CPU provider when CUDA does not start (driver, cuDNN): say so
                if (device or "auto").lower() != "auto":
                    raise ModelError(f"--device {device}: onnxruntime's CUDA provider did not start "
                                     "(check the CUDA and cuDNN libraries onnxruntime-gpu needs, or use --device cpu)")
                choice = DeviceChoice("cpu", "onnx", choice.reason.replace("GPU, onnxruntime CUDA", "CPU", 1)
                                      + ": onnxruntime's CUDA provider did not start")
            _check_graph_shapes(net, config)
            return LoadedModel(net=net, features=feat_cfg, config=config, path=folder, device=choice.device,
                               backend="onnx", reason=choice.reason)
        net = _torch_net(config, files[WEIGHTS_FILE])
    except ModelError:
        raise
    except ImportError as exc:
        raise ModelError(f"{folder}: the torch model needs torch ({exc.name} is not installed): "
                         "pip install 'beatfix[train]'") from None
    except Exception as exc:  # a config/graph/state mismatch is a broken model, not a bug of ours
        raise ModelError(f"{folder}: incompatible model ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
    net.to(choice.device)
    return LoadedModel(net=net, features=feat_cfg, config=config, path=folder, device=choice.device,
                       backend="torch", reason=choice.reason)


def _torch_net(config: dict, weights: bytes):
    """The torch module from verified ``weights.pt`` bytes, in eval mode on the CPU."""
    import io

    import torch

    from .net import HitNet, NetConfig

    net = HitNet(NetConfig.from_dict(config["architecture"]))
    net.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu"))
    return net.eval()


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


def _write_sums(folder: Path, shas: dict[str, str]) -> None:
    _atomic_write(folder / SUMS_FILE, "".join(f"{sha}  {name}\n" for name, sha in shas.items()).encode())


def _exported(net) -> dict[str, bytes]:
    from .export import export_onnx

    try:
        return export_onnx(net)
    except ImportError as exc:
        raise ModelError(f"exporting the model to ONNX needs {exc.name}: pip install 'beatfix[train]'") from None


def _write_files(folder: Path, files: dict[str, bytes]) -> dict[str, str]:
    """Write the weights files; returns their sha256 by name. Stale files of an older layout go."""
    shas = {}
    for name, data in files.items():
        shas[name] = hashlib.sha256(data).hexdigest()
        _atomic_write(folder / name, data)
    for name in LEGACY_FILES:
        (folder / name).unlink(missing_ok=True)
    return shas


def save_model(net, features, folder: Path | str, *, version: str = "1.0.0", card: str | None = None,
               extra: dict | None = None) -> str:
    """Write a model folder (torch weights and their ONNX export); returns the torch weights' sha256."""
    import io

    import torch

    folder = Path(folder)
    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save(state, buf)
    files = {WEIGHTS_FILE: buf.getvalue(), **_exported(net)}  # exported first: a failure leaves nothing behind
    folder.mkdir(parents=True, exist_ok=True)
    shas = _write_files(folder, files)
    config = {
        "name": folder.name,
        "version": version,
        "format": FORMAT,
        "architecture": net.cfg.to_dict(),
        "features": features.to_dict(),
        **{_SHA_KEYS[name]: sha for name, sha in shas.items()},
        **(extra or {}),
    }
    _atomic_write(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    _write_sums(folder, shas)
    if card is not None:
        _atomic_write(folder / CARD_FILE, card.encode())
    return shas[WEIGHTS_FILE]


def add_onnx(folder: Path | str) -> dict[str, str]:
    """Give a model folder made by an older beatfix (``weights.pt``, perhaps ``weights.npz``) its ONNX graphs.

    The torch weights are verified and exported; ``config.json`` and ``SHA256SUMS``
    gain the graphs' sha256 (returned by file name), and ``weights.npz`` goes.
    """
    folder = model_folder(folder)
    config = _read_config(folder)
    net = _torch_net(config, _verified_bytes(folder, config, WEIGHTS_FILE))
    shas = _write_files(folder, _exported(net))
    ordered: dict = {}
    for key, value in config.items():  # the graphs' sha next to the weights'
        if key in ("arrays_sha256", "encoder_sha256", "decoder_sha256"):
            continue
        ordered[key] = value
        if key == "weights_sha256":
            ordered.update({_SHA_KEYS[name]: sha for name, sha in shas.items()})
    _atomic_write(folder / CONFIG_FILE, (json.dumps(ordered, indent=2) + "\n").encode())
    _write_sums(folder, {WEIGHTS_FILE: config["weights_sha256"], **shas})
    return shas


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
