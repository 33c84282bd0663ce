"""Choosing the hit engine: the neural model (default) or the classic trigger judge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import ParameterError
from .types import Session

ENGINES = ("auto", "neural", "classic")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EngineChoice:
    name: str  # "neural" or "classic"
    judge: Optional[Callable]  # passed to analyse_session(judge=...); None = classic
    device: str = "cpu"
    notes: tuple[str, ...] = field(default_factory=tuple)  # one-time warnings for the user
    device_reason: str = ""  # ``--device auto``: what it chose and why, one informational line


def channel_minutes_of(session: Session) -> float:
    """The job's size for ``--device auto``: stems x minutes (the model encodes every candidate on every stem)."""
    return len(session.stems) * session.duration_s / 60.0


def choose_engine(engine: str = "auto", device: str = "auto", *, model_path=None,
                  channel_minutes: float | None = None) -> EngineChoice:
    """Resolve ``--engine`` and ``--device``. Loading the model may raise ModelError.

    ``channel_minutes`` (:func:`channel_minutes_of` the session) sizes the job for ``--device auto``.
    """
    engine = engine.lower()
    device = device.lower()
    if engine not in ENGINES:
        raise ParameterError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    if device not in DEVICES:
        raise ParameterError(f"--device {device!r}: use one of {', '.join(DEVICES)}")
    if engine == "classic":
        return EngineChoice("classic", None, "cpu")
    from .neural.judge import make_neural_judge  # onnxruntime is imported only here (torch only for a GPU)

    judge, used_device, reason = make_neural_judge(model_path=model_path, device=device,
                                                   channel_minutes=channel_minutes)
    return EngineChoice("neural", judge, used_device, device_reason=reason)
