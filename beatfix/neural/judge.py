"""The neural hit judge: a drop-in for ``classic_judge``, plus neural slot assignment.

``neural_judge(candidates, session, delays)`` answers like the classic judge:
``(accepted, rejected)``, the candidates given (their type kept) with
``confidence`` set to the model's probability that the onset is the stem's own
drum. The model also predicts an onset correction; accepted onsets are moved
by it only when the model folder says so (``apply_offset`` in ``config.json``,
set at training time when the correction beat the classic refinement).

Slots: the analysis fits its grid after judging, so :meth:`NeuralJudge.assign_slots`
is a drop-in for :func:`beatfix.tempo.assign_slots` that runs the model again
with the grid, and :func:`assign_slots_neural` does the same for any onsets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from ..grid import Grid
from ..types import Onset, Session
from .features import N_CONTEXT, event_features, grid_context
from .net import SLOT_CLASSES

OWN_THRESHOLD = 0.5
MAX_OFFSET_MS = 5.0  # a correction larger than this is not a refinement
ENCODE_CHUNK = 512  # events encoded at once; bounds memory on long sessions


@dataclass(frozen=True)
class Predictions:
    """Model outputs for ``onsets`` (sorted by time, then stem name)."""

    onsets: tuple[Onset, ...]
    own_prob: np.ndarray  # (E,) probability the onset is its stem's own drum
    offset_ms: np.ndarray  # (E,) onset correction, ms, to add to ``time_s``
    slot_probs: np.ndarray  # (E, 3) probabilities of slot -1, 0, +1 relative to the nearest slot
    grid_used: bool

    @property
    def slot_delta(self) -> np.ndarray:
        return np.asarray(SLOT_CLASSES)[np.argmax(self.slot_probs, axis=1)]


def as_onsets(candidates) -> list:
    """Candidates sorted by (time, stem), as given (any object with ``stem`` and ``time_s``).

    Accepts what the classic analysis hands a judge: a flat sequence of
    :class:`~beatfix.onsets.Candidate` or :class:`Onset`, or a mapping stem -> candidates.
    """
    if isinstance(candidates, Mapping):
        items = [c for group in candidates.values() for c in group]
    else:
        items = list(candidates)
    return sorted(items, key=lambda o: (o.time_s, o.stem))


def _with(c, *, time_s: float, confidence: float):
    """``c`` with a new time and confidence, keeping its type when it has a ``confidence`` field."""
    if is_dataclass(c) and any(f.name == "confidence" for f in fields(c)):
        return replace(c, time_s=time_s, confidence=confidence)
    return Onset(stem=c.stem, time_s=time_s, level_db=float(getattr(c, "level_db", 0.0)), confidence=confidence)


def session_channels(session: Session) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Mono audio, roles and names of every stem (a stereo stem is one channel)."""
    return [s.mono() for s in session.stems], [s.role for s in session.stems], [s.name for s in session.stems]


def context_for(times_s: np.ndarray, target: np.ndarray, grid: Grid | None, *, drift_window_s: float = 2.0) -> np.ndarray:
    """Grid context (E, N_CONTEXT); without a grid only the 'no grid' marker is set (column 13 = 0)."""
    if grid is None or times_s.size == 0:
        return np.zeros((times_s.size, N_CONTEXT), dtype=np.float32)
    return grid_context(times_s, target, step_s=grid.step_s, slot_of=grid.nearest_slot, slot_time_of=grid.slot_time,
                        swing_pct=grid.swing_pct, steps_per_beat=grid.steps_per_beat, drift_window_s=drift_window_s)


def predict(model, session: Session, candidates: Sequence[Onset], *, grid: Grid | None = None) -> Predictions:
    """Run the model (a :class:`~beatfix.neural.weights.LoadedModel`) on every candidate at once."""
    import torch

    onsets = as_onsets(candidates)
    n = len(onsets)
    if n == 0:
        empty = np.zeros(0, dtype=np.float32)
        return Predictions((), empty, empty, np.zeros((0, 3), dtype=np.float32), grid is not None)
    channels, roles, names = session_channels(session)
    index = {name: i for i, name in enumerate(names)}
    missing = [o.stem for o in onsets if o.stem not in index]
    if missing:
        raise KeyError(f"onset on unknown stem {missing[0]!r}")
    times = np.array([o.time_s for o in onsets], dtype=np.float64)
    target = np.array([index[o.stem] for o in onsets], dtype=np.int64)
    context = context_for(times, target, grid, drift_window_s=model.features.drift_window_s)
    feats = event_features(channels, roles, session.sample_rate, times, target, context, model.features)
    net, device = model.net, model.device
    with torch.inference_mode():
        chan = torch.from_numpy(feats.chan).to(device)
        roles_t = torch.from_numpy(feats.roles).to(device)
        embs = []
        for lo in range(0, n, ENCODE_CHUNK):
            hi = min(n, lo + ENCODE_CHUNK)
            embs.append(net.encode(torch.from_numpy(feats.fine[lo:hi]).to(device),
                                   torch.from_numpy(feats.coarse[lo:hi]).to(device), chan, roles_t,
                                   torch.from_numpy(feats.target[lo:hi]).to(device)))
        emb = torch.cat(embs).unsqueeze(0)
        own, off, slot = net.decode(emb, torch.from_numpy(feats.context).to(device).unsqueeze(0))
        own_prob = torch.sigmoid(own[0]).float().cpu().numpy()
        offset = off[0].float().cpu().numpy()
        slot_probs = torch.softmax(slot[0], dim=-1).float().cpu().numpy()
    return Predictions(tuple(onsets), own_prob, offset, slot_probs, grid is not None)


def judge_from_predictions(pred: Predictions, *, threshold: float = OWN_THRESHOLD,
                           refine: bool = False) -> tuple[list[Onset], list[Onset]]:
    accepted, rejected = [], []
    for onset, p, off in zip(pred.onsets, pred.own_prob, pred.offset_ms):
        if p >= threshold:
            shift_s = float(np.clip(off, -MAX_OFFSET_MS, MAX_OFFSET_MS)) / 1000.0 if refine else 0.0
            accepted.append(_with(onset, time_s=onset.time_s + shift_s, confidence=float(p)))
        else:
            rejected.append(_with(onset, time_s=onset.time_s, confidence=float(p)))
    return accepted, rejected


class NeuralJudge:
    """Callable with ``classic_judge``'s signature; keeps the last predictions for slot assignment."""

    def __init__(self, model, *, threshold: float = OWN_THRESHOLD, refine: bool | None = None):
        self.model = model
        self.threshold = threshold
        # the model's onset correction is used only where training showed it beats the classic refinement
        self.refine = bool(model.config.get("apply_offset", False)) if refine is None else refine
        self.last: Predictions | None = None
        self.engine = "neural"

    def __call__(self, candidates: Sequence[Onset], session: Session, delays=None, *, grid: Grid | None = None):
        self.last = predict(self.model, session, candidates, grid=grid)
        accepted, rejected = judge_from_predictions(self.last, threshold=self.threshold, refine=self.refine)
        self._session, self._accepted = session, sorted(accepted, key=lambda o: (o.time_s, o.stem))
        return accepted, rejected

    def assign_slots(self, times_s, grid: Grid) -> np.ndarray:
        """Slots of the onsets this judge accepted last, once the grid is known.

        Drop-in for :func:`beatfix.tempo.assign_slots` in the analysis: ``times_s``
        are the accepted onsets (sorted by time, then stem; delay-compensated
        times are fine, the model reads its own). Falls back to the nearest slot
        if ``times_s`` is not that list.
        """
        times = np.asarray(times_s, dtype=float)
        accepted = getattr(self, "_accepted", None)
        if accepted is None or len(accepted) != times.size or times.size == 0:
            return np.asarray(grid.nearest_slot(times)).reshape(-1).astype(int)
        slots = assign_slots_neural(accepted, self._session, grid, model=self.model)
        return np.array([slots[(o.stem, o.time_s)] for o in accepted], dtype=int)


_DEFAULT: dict = {}


def neural_judge(candidates: Sequence[Onset], session: Session, delays=None, *, grid: Grid | None = None,
                 model=None) -> tuple[list[Onset], list[Onset]]:
    """Same signature and return as ``classic_judge``; loads the shipped model once (CPU or CUDA)."""
    if model is None:
        if "model" not in _DEFAULT:
            from .weights import load_model

            _DEFAULT["model"] = load_model(None, "auto")
        model = _DEFAULT["model"]
    return judge_from_predictions(predict(model, session, candidates, grid=grid),
                                  refine=bool(model.config.get("apply_offset", False)))


def make_neural_judge(model_path=None, device: str = "auto") -> tuple[Callable, str, list[str]]:
    """Load a model and return ``(judge, device used, one-time notes for the user)``."""
    from .weights import load_model

    model = load_model(model_path, device)
    notes = []
    if model.fell_back:
        notes.append("no CUDA GPU found: the neural model runs on the CPU")
    return NeuralJudge(model), model.device, notes


def assign_slots_neural(onsets: Sequence[Onset], session: Session, grid: Grid, *, model=None,
                        min_confidence: float = 0.5) -> dict[tuple[str, float], int]:
    """Grid slot of each onset, keyed by ``(stem, time_s)``.

    The model sees the candidate's phase, the local drift of its neighbours and
    its audio; it moves an onset to the neighbouring slot only when it is more
    than ``min_confidence`` sure, otherwise the nearest slot stands.
    """
    if model is None:
        from .weights import load_model

        if "model" not in _DEFAULT:
            _DEFAULT["model"] = load_model(None, "auto")
        model = _DEFAULT["model"]
    pred = predict(model, session, onsets, grid=grid)
    times = np.array([o.time_s for o in pred.onsets], dtype=float)
    nearest = np.asarray(grid.nearest_slot(times)).reshape(-1) if times.size else np.zeros(0, dtype=int)
    best = np.argmax(pred.slot_probs, axis=1) if times.size else np.zeros(0, dtype=int)
    delta = np.where(pred.slot_probs[np.arange(times.size), best] > min_confidence,
                     np.asarray(SLOT_CLASSES)[best], 0) if times.size else np.zeros(0, dtype=int)
    return {(o.stem, o.time_s): int(s) for o, s in zip(pred.onsets, nearest + delta)}
