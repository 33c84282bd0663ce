"""The neural hit judge: a drop-in for ``classic_judge``, plus neural slot assignment.

``neural_judge(candidates, session, delays)`` answers like the classic judge:
``(accepted, rejected)``, the candidates given (their type kept) with
``confidence`` set to the model's probability that the onset is the stem's own
drum. The model also predicts an onset correction; accepted onsets are moved
by it only when the model folder says so (``apply_offset`` in ``config.json``,
set at training time when the correction beat the classic refinement).

Slots: the analysis fits its grid after judging, so :meth:`NeuralJudge.assign_slots`
is a drop-in for :func:`beatfix.tempo.assign_slots` that decodes the judge's
encoding again with the grid (:func:`encode` once, :func:`decode` twice: the
features are the costly part), and :func:`assign_slots_neural` does the same
for any onsets.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..heap import return_freed_memory
from ..grid import Grid
from ..types import Onset, Session
from .features import N_CONTEXT, grid_context, iter_event_features
from .arch import SLOT_CLASSES
from .runtime import sigmoid, softmax

OWN_THRESHOLD = 0.5
MAX_OFFSET_MS = 5.0  # a correction larger than this is not a refinement
ENCODE_CHUNK = 128  # events encoded at once: bounds memory; larger batches are hardly faster on a CPU


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
    if is_dataclass(c) and not isinstance(c, type) and any(f.name == "confidence" for f in fields(c)):
        return replace(c, time_s=time_s, confidence=confidence)
    return Onset(stem=c.stem, time_s=time_s, level_db=float(getattr(c, "level_db", 0.0)), confidence=confidence)


def session_channels(session: Session) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Mono audio, roles and names of every stem (a stereo stem is one channel)."""
    return [s.mono() for s in session.stems], [s.role for s in session.stems], [s.name for s in session.stems]


class _Mono:
    """A stereo stem's mono mix, made slice by slice (what :meth:`Stem.mono` gives, without a full copy)."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio

    def __len__(self) -> int:
        return int(self.audio.shape[1])

    def __getitem__(self, span: slice) -> np.ndarray:
        return self.audio[:, span].mean(axis=0)


def context_for(times_s: np.ndarray, target: np.ndarray, grid: Grid | None, *, drift_window_s: float = 2.0) -> np.ndarray:
    """Grid context (E, N_CONTEXT); without a grid only the 'no grid' marker is set (column 13 = 0)."""
    if grid is None or times_s.size == 0:
        return np.zeros((times_s.size, N_CONTEXT), dtype=np.float32)
    # a grid that follows a tempo map has a step of its own at every time
    step_s = grid.step_at(times_s) if hasattr(grid, "step_at") else grid.step_s
    return grid_context(times_s, target, step_s=step_s, slot_of=grid.nearest_slot, slot_time_of=grid.slot_time,
                        swing_pct=grid.swing_pct, steps_per_beat=grid.steps_per_beat, drift_window_s=drift_window_s)


@dataclass(frozen=True)
class Encoded:
    """The grid-free half of a prediction: the encoder's embedding of every onset.

    An onset's embedding reads only its own audio, so one encoding serves every
    decode: without a grid for the judge, with the fitted grid for the slots.
    """

    onsets: tuple[Onset, ...]  # sorted by time, then stem
    times_s: np.ndarray  # (E,) float64
    target: np.ndarray  # (E,) int64, channel of each onset
    emb: np.ndarray  # (E, D) float32


def encode(model, session: Session, candidates: Sequence[Onset]) -> Encoded:
    """Features and encoder, batch by batch (:func:`~beatfix.neural.features.iter_event_features`)."""
    onsets = as_onsets(candidates)
    names = [s.name for s in session.stems]
    index = {name: i for i, name in enumerate(names)}
    missing = [o.stem for o in onsets if o.stem not in index]
    if missing:
        raise KeyError(f"onset on unknown stem {missing[0]!r}")
    times = np.array([o.time_s for o in onsets], dtype=np.float64)
    target = np.array([index[o.stem] for o in onsets], dtype=np.int64)
    emb = np.zeros((len(onsets), 0), dtype=np.float32)
    if not onsets:
        return Encoded((), times, target, emb)
    channels = [s.audio[0] if s.n_channels == 1 else _Mono(s.audio) for s in session.stems]
    roles = [s.role for s in session.stems]
    no_context = np.zeros((len(onsets), N_CONTEXT), dtype=np.float32)  # the encoder does not read it
    for idx, feats in iter_event_features(channels, roles, session.sample_rate, times, target, no_context,
                                          model.features, batch_events=ENCODE_CHUNK):
        out = model.encode(feats.fine, feats.coarse, feats.chan, feats.roles, feats.target)
        if emb.shape[1] != out.shape[1]:
            emb = np.zeros((len(onsets), out.shape[1]), dtype=np.float32)
        emb[idx] = out
    return_freed_memory()
    return Encoded(tuple(onsets), times, target, emb)


def decode(model, encoded: Encoded, grid: Grid | None = None) -> Predictions:
    """The model's answers for the encoded onsets, all in one sequence, under ``grid`` (or none)."""
    if not encoded.onsets:
        empty = np.zeros(0, dtype=np.float32)
        return Predictions((), empty, empty, np.zeros((0, 3), dtype=np.float32), grid is not None)
    context = context_for(encoded.times_s, encoded.target, grid, drift_window_s=model.features.drift_window_s)
    own, off, slot = model.decode(encoded.emb[None], context[None])
    own_prob, offset, slot_probs = sigmoid(own[0]), off[0], softmax(slot[0]).astype(np.float32, copy=False)
    return_freed_memory()
    return Predictions(encoded.onsets, own_prob, offset, slot_probs, grid is not None)


def predict(model, session: Session, candidates: Sequence[Onset], *, grid: Grid | None = None) -> Predictions:
    """Run the model (a :class:`~beatfix.neural.weights.LoadedModel`) on every candidate at once."""
    return decode(model, encode(model, session, candidates), grid)


def _judged(onset, p: float, off: float, *, threshold: float, refine: bool) -> tuple[bool, Any]:
    if p >= threshold:
        shift_s = float(np.clip(off, -MAX_OFFSET_MS, MAX_OFFSET_MS)) / 1000.0 if refine else 0.0
        return True, _with(onset, time_s=onset.time_s + shift_s, confidence=float(p))
    return False, _with(onset, time_s=onset.time_s, confidence=float(p))


def judge_from_predictions(pred: Predictions, *, threshold: float = OWN_THRESHOLD,
                           refine: bool = False) -> tuple[list[Onset], list[Onset]]:
    accepted: list[Onset] = []
    rejected: list[Onset] = []
    for onset, p, off in zip(pred.onsets, pred.own_prob, pred.offset_ms):
        ok, judged = _judged(onset, p, off, threshold=threshold, refine=refine)
        (accepted if ok else rejected).append(judged)
    return accepted, rejected


def _slot_deltas(slot_probs: np.ndarray, min_confidence: float) -> np.ndarray:
    """Slot change per onset: the model's class where it is more than ``min_confidence`` sure, else 0."""
    if slot_probs.shape[0] == 0:
        return np.zeros(0, dtype=int)
    best = np.argmax(slot_probs, axis=1)
    sure = slot_probs[np.arange(best.size), best] > min_confidence
    return np.where(sure, np.asarray(SLOT_CLASSES)[best], 0).astype(int)


class NeuralJudge:
    """Callable with ``classic_judge``'s signature; keeps its encoding for slot assignment."""

    def __init__(self, model, *, threshold: float = OWN_THRESHOLD, refine: bool | None = None,
                 min_slot_confidence: float = 0.5):
        self.model = model
        self.threshold = threshold
        # the model's onset correction is used only where training showed it beats the classic refinement
        self.refine = bool(model.config.get("apply_offset", False)) if refine is None else refine
        self.min_slot_confidence = min_slot_confidence
        self.last: Predictions | None = None
        self.engine = "neural"
        self._encoded: Encoded | None = None
        self._event_of: dict[tuple[str, int], int] = {}  # (stem, sample) of an accepted onset -> its event
        self._by_time: list[tuple[float, str, tuple[str, int]]] = []  # (delay-compensated time, stem, key)

    def _key(self, onset) -> tuple[str, int]:
        return onset.stem, int(round(onset.time_s * self._sample_rate))

    def __call__(self, candidates: Sequence[Onset], session: Session, delays=None, *, grid: Grid | None = None):
        self._sample_rate = session.sample_rate
        self._encoded = encode(self.model, session, candidates)
        self.last = decode(self.model, self._encoded, grid)
        delay_s = {d.stem: d.delay_ms / 1000.0 for d in (delays or ())}
        accepted, rejected, self._event_of, self._by_time = [], [], {}, []
        for i, (onset, p, off) in enumerate(zip(self.last.onsets, self.last.own_prob, self.last.offset_ms)):
            ok, judged = _judged(onset, p, off, threshold=self.threshold, refine=self.refine)
            if not ok:
                rejected.append(judged)
                continue
            accepted.append(judged)
            key = self._key(judged)
            self._event_of[key] = i
            # the same arithmetic as the analysis uses for the times it asks slots for
            self._by_time.append((judged.time_s - delay_s.get(judged.stem, 0.0), judged.stem, key))
        self._by_time.sort()
        return accepted, rejected

    def _keys_for_times(self, times: np.ndarray) -> list:
        """The accepted onset behind each delay-compensated time, in order (``None`` where none is)."""
        if not self._by_time:
            return [None] * times.size
        known = np.array([t for t, _, _ in self._by_time])
        tol = 0.5 / self._sample_rate
        lo = np.searchsorted(known, times - tol, side="left")
        hi = np.searchsorted(known, times + tol, side="right")
        used = np.zeros(known.size, dtype=bool)
        keys = []
        for t, a, b in zip(times, lo, hi):
            free = [j for j in range(a, b) if not used[j]]
            j = min(free, key=lambda j: abs(known[j] - t)) if free else None  # the closest; on a tie, stem order
            if j is not None:
                used[j] = True
            keys.append(None if j is None else self._by_time[j][2])
        return keys

    def assign_slots(self, times_s, grid: Grid, *, onsets: Sequence[Onset] | None = None) -> np.ndarray:
        """Slots of onsets this judge accepted, once the grid is known.

        Drop-in for :func:`beatfix.tempo.assign_slots` in the analysis: ``times_s``
        are accepted onsets, delay-compensated as the analysis does, sorted by
        (time, stem); any subset of what the judge accepted (the bleed-path
        check may have moved some to rejected). ``onsets`` (the same onsets),
        when given, name them exactly. The model decodes every candidate the
        judge saw again, now with the grid (the sequence it is trained on:
        own onsets and bleed alike), from the judge's encoding: no features are
        computed again. A time the judge did not accept gets the nearest slot.
        """
        times = np.asarray(times_s, dtype=float).reshape(-1)
        slots = np.asarray(grid.nearest_slot(times)).reshape(-1).astype(int) if times.size else np.zeros(0, dtype=int)
        if self._encoded is None or times.size == 0:
            return slots
        keys = [self._key(o) for o in onsets] if onsets is not None else self._keys_for_times(times)
        events = np.array([self._event_of.get(k, -1) if k is not None else -1 for k in keys], dtype=np.int64)
        known = np.flatnonzero(events >= 0)
        if known.size == 0:
            return slots
        pred = decode(self.model, self._encoded, grid)
        mine = events[known]
        nearest = np.asarray(grid.nearest_slot(self._encoded.times_s[mine])).reshape(-1).astype(int)
        slots[known] = nearest + _slot_deltas(pred.slot_probs[mine], self.min_slot_confidence)
        return slots


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


def make_neural_judge(model_path=None, device: str = "auto", *,
                      channel_minutes: float | None = None) -> tuple[Callable, str, str]:
    """Load a model and return ``(judge, device used, why that device)``.

    ``channel_minutes`` (stems x minutes of the session) lets ``device="auto"``
    choose by the job (:func:`~beatfix.neural.weights.choose_device`); the reason
    is one informational line for ``auto``, empty for an explicit device.
    """
    from .weights import load_model

    model = load_model(model_path, device, channel_minutes=channel_minutes)
    return NeuralJudge(model), model.device, model.reason


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
    nearest = np.asarray(grid.nearest_slot(times)).reshape(-1).astype(int) if times.size else np.zeros(0, dtype=int)
    delta = _slot_deltas(pred.slot_probs, min_confidence)
    return {(o.stem, o.time_s): int(s) for o, s in zip(pred.onsets, nearest + delta)}
