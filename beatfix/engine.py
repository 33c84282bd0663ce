"""Choosing the hit engine: the neural model (default) or the classic trigger judge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import ParameterError

ENGINES = ("auto", "neural", "classic")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EngineChoice:
    name: str  # "neural" or "classic"
    judge: Optional[Callable]  # passed to analyse_session(judge=...); None = classic
    device: str = "cpu"
    notes: tuple[str, ...] = field(default_factory=tuple)  # one-time messages for the user


def choose_engine(engine: str = "auto", device: str = "auto", *, model_path=None) -> EngineChoice:
    """Resolve ``--engine`` and ``--device``. Loading the model may raise ModelError."""
    engine = engine.lower()
    device = device.lower()
    if engine not in ENGINES:
        raise ParameterError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    if device not in DEVICES:
        raise ParameterError(f"--device {device!r}: use one of {', '.join(DEVICES)}")
    if engine == "classic":
        return EngineChoice("classic", None, "cpu")
    from .neural.judge import make_neural_judge  # torch is imported only here

    judge, used_device, notes = make_neural_judge(model_path=model_path, device=device)
    return EngineChoice("neural", judge, used_device, tuple(notes))
