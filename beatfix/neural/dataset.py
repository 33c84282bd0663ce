"""Training examples from synthetic sessions (stem files + ``truth.json``, see :mod:`beatfix.synth.session`).

For every classic candidate on a close mic the labels are:

- ``own``: the candidate lies within :data:`MATCH_MS` of a true onset of one of
  the stem's own drums in that stem (its own drum: the drums it hears within
  12 dB of its loudest; bleed is 20-35 dB down);
- ``offset_ms``: that true onset minus the candidate's refined time (own only);
- ``slot``: the true slot minus the candidate's nearest slot on the true grid,
  as a class index of -1/0/+1 (own only; -100 = ignore).

Features and labels of one session are cached in one ``.npz`` (float16
features), keyed by the session's files and the feature settings, so a second
training run starts at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..grid import Grid
from ..types import CLOSE_ROLES, Onset, Session
from .features import FeatureConfig, event_features
from .judge import as_onsets, context_for, session_channels

MATCH_MS = 5.0
SOFT_VELOCITY = 0.4  # a stroke this soft (or a ghost, or a flam's grace note) counts as a soft hit
OWN_WITHIN_DB = 12.0
CACHE_VERSION = 4  # 4: candidates of the streamed onsets + bleed-path era, idle-tom sessions
IGNORE = -100
NO_SLOT = -(10**9)


@dataclass
class SessionExamples:
    name: str
    fine: np.ndarray  # (E, C, B, F) float16
    coarse: np.ndarray  # (E, C, B, K) float16
    chan: np.ndarray  # (C, 1) float32
    roles: np.ndarray  # (C,) int64
    target: np.ndarray  # (E,) int64
    context: np.ndarray  # (E, G) float32
    times: np.ndarray  # (E,) float64 candidate time, s
    own: np.ndarray  # (E,) float32 1 = own drum, 0 = bleed
    offset_ms: np.ndarray  # (E,) float32, nan where not own
    slot: np.ndarray  # (E,) int64 class index 0/1/2, IGNORE where not own or out of range
    soft: np.ndarray  # (E,) bool: matched truth stroke is soft
    truth_id: np.ndarray  # (E,) int64 index into the truth_* arrays, -1 for bleed
    classic_accept: np.ndarray  # (E,) int8 1/0, -1 when the classic judge was not available
    truth_ch: np.ndarray  # (T,) int64 channel of every true own onset on a close mic
    truth_soft: np.ndarray  # (T,) bool
    slot_true: np.ndarray | None = None  # (E,) int64 true slot of own candidates, NO_SLOT elsewhere
    grid_params: np.ndarray | None = None  # (4,) bpm, offset_s, steps_per_beat, swing_pct of the true grid
    duration_s: float = 0.0

    @property
    def n_events(self) -> int:
        return int(self.target.shape[0])

    @property
    def grid(self) -> Grid:
        if self.grid_params is None:
            raise ValueError(f"{self.name}: no grid recorded")
        bpm, offset_s, spb, swing = (float(v) for v in self.grid_params)
        return Grid(bpm=bpm, offset_s=offset_s, steps_per_beat=spb, swing_pct=swing)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".part.npz")
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)
                  if f.name != "name" and getattr(self, f.name) is not None}
        np.savez(tmp, name=np.array(self.name), **arrays)  # type: ignore[arg-type]  # numpy's stub: **arrays vs allow_pickle
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "SessionExamples":
        with np.load(path, allow_pickle=False) as z:
            values = {f.name: z[f.name] for f in fields(cls) if f.name in z.files}
        values["name"] = str(values["name"])
        values["duration_s"] = float(values.get("duration_s", 0.0))
        return cls(**values)


def with_grid(ex: SessionExamples, grid: Grid, drift_window_s: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Context (E, G) and slot classes (E,) of a session's candidates against ``grid``.

    Training moves the grid (a phase error, a slightly wrong tempo) so that the
    nearest slot is sometimes wrong and the model learns to read the drift.
    """
    context = context_for(ex.times, ex.target, grid, drift_window_s=drift_window_s)
    slot = np.full(ex.n_events, IGNORE, dtype=np.int64)
    if ex.slot_true is None:  # no true slots recorded: nothing to learn slots from
        return context, slot
    valid = ex.slot_true != NO_SLOT
    if valid.any():
        delta = ex.slot_true[valid] - np.asarray(grid.nearest_slot(ex.times[valid])).reshape(-1)
        slot[valid] = np.where(np.abs(delta) <= 1, delta + 1, IGNORE)
    return context, slot


def _truth_slots(truth: Mapping, ex: SessionExamples) -> np.ndarray:
    """True slot of each own candidate, from its truth_id (the order label_candidates uses)."""
    slots = []
    for ch in truth["channels"]:
        if ch["role"] in CLOSE_ROLES:
            slots.append(true_onsets(truth, ch["stem"])[1])
    table = np.concatenate(slots) if slots else np.zeros(0, dtype=np.int64)
    out = np.full(ex.n_events, NO_SLOT, dtype=np.int64)
    own = ex.truth_id >= 0
    out[own] = table[ex.truth_id[own]]
    return out


def fill_truth_fields(ex: SessionExamples, folder: Path) -> SessionExamples:
    """Add the true slots and grid to an example cached before they were stored."""
    truth = json.loads((Path(folder) / "truth.json").read_text(encoding="utf-8"))
    g = truth_grid(truth)
    ex.slot_true = _truth_slots(truth, ex)
    ex.grid_params = np.array([g.bpm, g.offset_s, g.steps_per_beat, g.swing_pct], dtype=np.float64)
    ex.duration_s = float(truth.get("duration_s", truth["n_samples"] / truth["sample_rate"]))
    return ex


def find_sessions(root: Path | str) -> list[Path]:
    """Session folders under ``root`` (each holds a ``truth.json``), sorted; ``ideal/`` renders are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    found = sorted(p.parent for p in root.rglob("truth.json") if "ideal" not in p.parent.relative_to(root).parts)
    return found


def truth_grid(truth: Mapping) -> Grid:
    return Grid(bpm=float(truth["bpm"]), offset_s=float(truth["grid_offset_s"]),
                steps_per_beat=float(truth["steps_per_beat"]), swing_pct=float(truth.get("swing_pct", 50.0)))


def own_drums(channel: Mapping) -> set[str]:
    gains = {d: max(info["gain_db"]) for d, info in channel["drums"].items()}
    if not gains:
        return set()
    top = max(gains.values())
    return {d for d, g in gains.items() if g >= top - OWN_WITHIN_DB}


def true_onsets(truth: Mapping, stem: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(onset times s, slots, soft) of the stem's own drums in that stem, sorted by time."""
    channel = next(ch for ch in truth["channels"] if ch["stem"] == stem)
    own = own_drums(channel)
    sr = float(truth["sample_rate"])
    rows = []
    for hit in truth["hits"]:
        if hit["drum"] not in own:
            continue
        delay = float(np.median(channel["drums"][hit["drum"]]["delay_samples"]))
        is_soft = bool(hit.get("ghost")) or float(hit.get("velocity", 1.0)) < SOFT_VELOCITY or (
            bool(hit.get("deliberate_flam")) and float(hit.get("velocity", 1.0)) < 0.6)
        rows.append(((hit["onset_sample"] + delay) / sr, int(hit["slot"]), is_soft))
    rows.sort()
    if not rows:
        return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    t, s, soft = zip(*rows)
    return np.array(t), np.array(s, dtype=np.int64), np.array(soft, dtype=bool)


def label_candidates(truth: Mapping, session: Session, onsets: Sequence[Onset], grid: Grid):
    """Labels for time-sorted ``onsets`` (see the module docstring) and the truth tables for recall."""
    names = [s.name for s in session.stems]
    n = len(onsets)
    own = np.zeros(n, dtype=np.float32)
    offset = np.full(n, np.nan, dtype=np.float32)
    slot = np.full(n, IGNORE, dtype=np.int64)
    soft = np.zeros(n, dtype=bool)
    truth_id = np.full(n, -1, dtype=np.int64)
    truth_ch, truth_soft = [], []
    base = 0
    for stem in session.close_stems:
        t_true, s_true, soft_true = true_onsets(truth, stem.name)
        c = names.index(stem.name)
        idx = [i for i, o in enumerate(onsets) if o.stem == stem.name]
        used: dict[int, float] = {}
        for i in idx:
            if t_true.size == 0:
                break
            k = int(np.searchsorted(t_true, onsets[i].time_s))
            near = [j for j in (k - 1, k) if 0 <= j < t_true.size]
            j = min(near, key=lambda j: abs(t_true[j] - onsets[i].time_s))
            err_ms = (t_true[j] - onsets[i].time_s) * 1000.0
            if abs(err_ms) > MATCH_MS:
                continue
            if j in used and used[j] <= abs(err_ms):
                continue  # a true onset is one hit: the closer candidate takes it
            if j in used:
                prev = int(np.flatnonzero(truth_id == base + j)[0])
                own[prev], offset[prev], slot[prev], soft[prev], truth_id[prev] = 0.0, np.nan, IGNORE, False, -1
            used[j] = abs(err_ms)
            own[i] = 1.0
            offset[i] = err_ms
            delta = int(s_true[j]) - int(grid.nearest_slot(onsets[i].time_s))
            slot[i] = delta + 1 if abs(delta) <= 1 else IGNORE
            soft[i] = soft_true[j]
            truth_id[i] = base + j
        truth_ch += [c] * t_true.size
        truth_soft += list(soft_true)
        base += t_true.size
    return own, offset, slot, soft, truth_id, np.array(truth_ch, dtype=np.int64), np.array(truth_soft, dtype=bool)


def classic_candidates(session: Session):
    """The classic analysis' candidates and mic delays: what the judges see at run time."""
    from ..delays import measure_delays
    from ..onsets import detect_candidates

    candidates = detect_candidates(session)
    try:
        delays = measure_delays(session, candidates)
    except Exception:  # delays only feed the classic judge's decisions; a failure must not stop training
        delays = ()
    return candidates, delays


def classic_decisions(candidates, session: Session, delays, onsets: Sequence[Onset]) -> np.ndarray:
    """1/0 per onset from the classic judge; -1 everywhere when it is not available."""
    try:
        from ..hits import classic_judge

        accepted, _ = classic_judge(as_onsets(candidates), session, delays)
    except Exception:  # the classic judge is only the baseline of the report: never stop training for it
        return np.full(len(onsets), -1, dtype=np.int8)
    keys = {(a.stem, round(a.time_s * session.sample_rate)) for a in accepted}
    return np.array([1 if (o.stem, round(o.time_s * session.sample_rate)) in keys else 0 for o in onsets], dtype=np.int8)


def build_examples(folder: Path, cfg: FeatureConfig) -> SessionExamples:
    from ..audio_io import load_session

    folder = Path(folder)
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    # stems in truth.json's order: the truth tables (truth_id) are numbered in that order
    paths = [folder / ch.get("file", ch["stem"] + ".wav") for ch in truth["channels"]]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise InputError(f"{folder}: truth.json names {missing[0]}, which is not there")
    roles = {ch.get("file", ch["stem"] + ".wav"): ch["role"] for ch in truth["channels"]}
    session, _ = load_session(paths, roles=roles)
    candidates, delays = classic_candidates(session)
    onsets = as_onsets(candidates)
    grid = truth_grid(truth)
    own, offset, slot, soft, truth_id, truth_ch, truth_soft = label_candidates(truth, session, onsets, grid)
    channels, role_names, names = session_channels(session)
    index = {n: i for i, n in enumerate(names)}
    times = np.array([o.time_s for o in onsets], dtype=np.float64)
    target = np.array([index[o.stem] for o in onsets], dtype=np.int64)
    context = context_for(times, target, grid, drift_window_s=cfg.drift_window_s)
    feats = event_features(channels, role_names, session.sample_rate, times, target, context, cfg)
    ex = SessionExamples(
        name=str(folder), fine=feats.fine.astype(np.float16), coarse=feats.coarse.astype(np.float16),
        chan=feats.chan, roles=feats.roles, target=target, context=context, times=times, own=own,
        offset_ms=offset, slot=slot, soft=soft, truth_id=truth_id,
        classic_accept=classic_decisions(candidates, session, delays, onsets), truth_ch=truth_ch,
        truth_soft=truth_soft,
    )
    return fill_truth_fields(ex, folder)


def _cache_key(folder: Path, cfg: FeatureConfig) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "cfg": cfg.to_dict()}, sort_keys=True).encode())
    for p in sorted(folder.iterdir()):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:20]


def load_or_build(folders: Sequence[Path], cfg: FeatureConfig, cache_dir: Path | None, *,
                  progress: Callable[[str, float], None] | None = None) -> list[SessionExamples]:
    """Examples of every session folder, from ``cache_dir`` when already built there."""
    out = []
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    for i, folder in enumerate(folders):
        if progress:
            progress("features", i / max(1, len(folders)))
        path = Path(cache_dir) / f"{Path(folder).name}-{_cache_key(Path(folder), cfg)}.npz" if cache_dir else None
        if path is not None and path.exists():
            try:
                ex = SessionExamples.load(path)
                if ex.slot_true is None or ex.grid_params is None:
                    fill_truth_fields(ex, Path(folder))
                    ex.save(path)
                ex.context, ex.slot = with_grid(ex, ex.grid, cfg.drift_window_s)
                out.append(ex)
                continue
            except (OSError, ValueError, KeyError):
                pass  # a broken cache entry is rebuilt
        ex = build_examples(Path(folder), cfg)
        if path is not None:
            ex.save(path)
        ex.context, ex.slot = with_grid(ex, ex.grid, cfg.drift_window_s)
        out.append(ex)
    if progress:
        progress("features", 1.0)
    return out
