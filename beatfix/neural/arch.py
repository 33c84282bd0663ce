"""The hit model's architecture settings, without torch: shared by the torch module
(:mod:`.net`, training) and the code around its ONNX export (:mod:`.export`, :mod:`.runtime`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SLOT_CLASSES = (-1, 0, 1)

# (channels of the three conv layers) of the fine and the coarse frame encoders
FINE_CHANNELS = (24, 32, 32)
COARSE_CHANNELS = (16, 24, 24)
# (kernel, stride, padding) of the three conv layers of a frame encoder
CONV_LAYERS = ((5, 1, 2), (5, 2, 2), (3, 2, 1))


@dataclass(frozen=True)
class NetConfig:
    n_bands: int = 5
    fine_frames: int = 64
    coarse_frames: int = 50
    n_roles: int = 10
    n_context: int = 15
    width: int = 48
    role_dim: int = 8
    heads: int = 4
    gru_hidden: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        return cls(**d)


def conv_out(n: int, kernel: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - kernel) // stride + 1


def frames_out(n_frames: int) -> int:
    """Frames left after a frame encoder's conv layers."""
    for kernel, stride, pad in CONV_LAYERS:
        n_frames = conv_out(n_frames, kernel, stride, pad)
    return n_frames
