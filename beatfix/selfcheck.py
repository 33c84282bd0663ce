"""Every align checks its own output audio before it is written, and reverts the hits that fail.

What the plan promises can still go wrong in the audio: a drum's part of an
overhead left behind while its close mic moved (a pre-echo, a phasey drum),
an attack heard twice at a seam, a hit dragged far from its slot with its
neighbour. So after rendering, around every edited hit (never whole files):

* **lag change**: per drum and per follower channel (overhead, room), the
  lag from the drum's close mic to the follower, by cross-correlation of the
  close mic's attack window with the follower, in the input and in the
  output. A change over :data:`LAG_CHANGE_MS` fails the hit; a follower that
  now hears the drum before its close mic (and did not) is a **pre-echo**;
* **double attack / seam click**: attacks (:func:`beatfix.attacks.find_attacks`)
  in each channel's window around the hit, input against output: more in
  the output means something is heard twice or a seam clicks;
* **far from its slot**: a close-mic onset that the edit leaves more than
  a third of a grid step from its slot, and further than it was.

A hit that fails is rendered again as one piece (collection mode: the hit's
single shift for every channel) or, if it already was one, left where it was
played (shift 0), and checked again (:func:`check_and_revert`). Rendering is
streamed stem by stem and only short excerpts around each hit are kept, so a
long session is never held twice in memory.

Pure: a session, an analysis and plans in; plans and a report out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from scipy import signal as sps
from .flamfix import DrumPlans, fit_plan
from .plan import EditPlan
from .types import Analysis, Session

LAG_CHANGE_MS = 0.5  # a close-to-follower lag that changes more than this fails the hit
PRE_ECHO_MS = 0.1  # a follower this much earlier than its close mic hears the drum before it
CLOSE_WINDOW_MS = (1.0, 11.0)  # the close mic's attack window: before, after its onset
LAG_SEARCH_MS = (-3.0, 45.0)  # a follower hears a drum this much before..after its close mic (a far room)
OUT_SEARCH_MS = 12.0  # the output's lag is sought this close to the input's
HEARD_NCC = 0.3
# A lag has moved only if the output's correlation at the input's lag is clearly weaker than its new peak:
# a room's (or a busy overhead's) correlation has several peaks of nearly one height, which trade places.
PEAK_KEPT = 0.8  # a drum is measured in a follower only where their normalised correlation reaches this
ATTACK_WINDOW_MS = (25.0, 45.0)  # attacks are counted this long before..after each hit
BAND_HZ = 4000.0  # attacks and clicks are counted in this high band, 1 ms frames
RISE_DB = 10.0  # an attack: the band rises this much within RISE_FRAMES
RISE_FRAMES = 3
SLACK_DB = 4.0  # the input's attacks are counted this much more leniently than the output's
LOUD_WITHIN_DB = 20.0  # ...to within this of the loudest frame of the window (a decay's flicker is not one)
FAR_SHARE = 1.0 / 3.0  # of a grid step: a hit left further than this from its slot fails
MAX_ROUNDS = 2  # one piece, then unmoved


@dataclass(frozen=True)
class Failure:
    edit: int  # index into the plan's edits
    reason: str  # "lag change", "pre-echo", "double attack", "far from slot"
    detail: str


@dataclass(frozen=True)
class SelfCheck:
    """What the self-check measured and what it did, per edit."""

    n_checked: int
    failures: tuple[Failure, ...]  # every failure found, in every round
    reverted: Mapping[int, str] = field(default_factory=dict)  # edit -> "one piece" | "unmoved"
    remaining: tuple[Failure, ...] = ()  # failures still there after the last round
    seconds: float = 0.0
    renders: int = 0  # full streamed renders the check needed

    def by_edit(self) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for f in self.failures:
            row = out.setdefault(f.edit, {"reasons": [], "reverted": self.reverted.get(f.edit)})
            row["reasons"].append(f"{f.reason}: {f.detail}")
        return out

    def as_dict(self) -> dict:
        reasons: dict[str, int] = {}
        for f in self.failures:
            reasons[f.reason] = reasons.get(f.reason, 0) + 1
        return {"checked_edits": self.n_checked, "failed_edits": len({f.edit for f in self.failures}),
                "failures": reasons, "reverted_one_piece": sum(v == "one piece" for v in self.reverted.values()),
                "reverted_unmoved": sum(v == "unmoved" for v in self.reverted.values()),
                "still_failing": len({f.edit for f in self.remaining}),
                "renders": self.renders}


def _reach(plan: EditPlan, k: int, drums: DrumPlans | None) -> tuple[int, int]:
    """The most any channel of edit ``k`` moves earlier (<= 0) and later (>= 0), in samples."""
    e = plan.edits[k]
    shifts = [e.shift_samples, 0] + ([drums.plans[d].edits[k].shift_samples for d in drums.moved] if drums else [])
    return min(shifts), max(shifts)


def _core(plan: EditPlan, k: int, drums: DrumPlans | None) -> tuple[int, int]:
    """Input span around edit ``k`` whose attacks are counted: its hits, widened by how far they move."""
    sr = plan.sample_rate
    e = plan.edits[k]
    lo, hi = _reach(plan, k, drums)
    return (e.attack_sample - int(ATTACK_WINDOW_MS[0] / 1000.0 * sr) + lo,
            (e.last_attack_sample or e.attack_sample) + int(ATTACK_WINDOW_MS[1] / 1000.0 * sr) + hi)


def _windows(plan: EditPlan, edits: Iterable[int], drums: DrumPlans | None) -> dict[int, tuple[int, int]]:
    """Per edit, the span whose excerpts the check reads: the core, and as far again as anything moves."""
    sr = plan.sample_rate
    lag = int((LAG_SEARCH_MS[1] + CLOSE_WINDOW_MS[1] + 1.0) / 1000.0 * sr)  # the lag curve's reach after an onset
    out = {}
    for k in edits:
        lo, hi = _reach(plan, k, drums)
        a, b = _core(plan, k, drums)
        last = plan.edits[k].last_attack_sample or plan.edits[k].attack_sample
        out[k] = (max(0, a - (hi - lo)), min(plan.n_samples, max(b, last + lag) + (hi - lo)))
    return out


def _excerpts(stems, windows: Mapping[int, tuple[int, int]], *, copy: bool = True) -> dict[str, dict[int, np.ndarray]]:
    """stem -> edit -> its audio over that edit's window (one stem in memory at a time).

    ``copy=False`` for stems that stay in memory anyway (the input session): views, no second copy.
    """
    return {s.name: {k: (np.array if copy else np.asarray)(s.audio[:, a:b], dtype=np.float32)
                     for k, (a, b) in windows.items()} for s in stems}


def _band_db(x: np.ndarray, sr: int) -> np.ndarray:
    """High-band (:data:`BAND_HZ`) level in dB per 1 ms frame, ``(n_channels, n_frames)``."""
    sos = sps.butter(4, min(BAND_HZ, 0.45 * sr), btype="highpass", fs=sr, output="sos")
    frame = max(1, int(round(sr / 1000.0)))
    hp = sps.sosfilt(sos, np.atleast_2d(x), axis=-1)
    n = hp.shape[1] // frame
    return 10.0 * np.log10((hp[:, : n * frame] ** 2).reshape(hp.shape[0], n, frame).mean(axis=2) + 1e-20)


def _hot_frames(ch: np.ndarray, peak: float, slack_db: float = 0.0) -> np.ndarray:
    """Frames of a :func:`_band_db` channel that rise :data:`RISE_DB` to within :data:`LOUD_WITHIN_DB` of ``peak``."""
    n = ch.size
    prev = np.full(n, np.inf)
    for k in range(1, min(RISE_FRAMES, n - 1) + 1):
        prev[k:] = np.minimum(prev[k:], ch[:-k])
    return np.flatnonzero((ch - prev >= RISE_DB - slack_db) & (ch >= peak - LOUD_WITHIN_DB - slack_db))


def _new_attacks(env_in: np.ndarray, env_out: np.ndarray, frame: int, lo: int, hi: int,
                 shifts: Sequence[int]) -> int:
    """Loud attacks (or clicks) of the output starting in samples [lo, hi) that no input attack explains.

    An output attack at ``x`` is explained by an input one near ``x - s`` for one of ``shifts``
    (the pieces that meet there). The input's are found with :data:`SLACK_DB` lower thresholds: a
    shift that is not a whole number of frames changes a rise by a dB or two. The planner's attack
    finder hears far quieter rises (a decay's flicker), hence the loudness floor.
    """
    total = 0
    for ci, co in zip(env_in, env_out):
        peak = max(float(ci.max()), float(co.max()))
        src = _hot_frames(ci, peak, SLACK_DB) * frame
        out = _hot_frames(co, peak) * frame
        out = out[(out >= lo) & (out < hi)]
        new = [x for x in out if not any(np.any(np.abs(src - (x - s)) <= 2 * frame) for s in shifts)]
        if new:
            total += 1 + int(np.count_nonzero(np.diff(new) > RISE_FRAMES * frame))
    return total


def _ncc(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``ref`` with ``x`` at every lag where it fits (``valid``)."""
    n = ref.size
    num = np.correlate(x, ref, mode="valid")
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    local = np.sqrt(np.maximum(energy[n:] - energy[:-n], 1e-30))
    return num / (np.sqrt(float(ref @ ref)) + 1e-30) / local


def _peak(curve: np.ndarray, lo: int, hi: int) -> tuple[float, float]:
    """Sub-sample index and height of the strongest |peak| of ``curve`` within [lo, hi]."""
    lo, hi = max(0, lo), min(curve.size - 1, hi)
    if hi < lo:
        return float("nan"), 0.0
    seg = np.abs(curve[lo: hi + 1])
    i = int(np.argmax(seg))
    frac = 0.0
    if 0 < i < seg.size - 1:
        y0, y1, y2 = seg[i - 1: i + 2]
        den = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / den if den else 0.0
    return lo + i + frac, float(seg[i])


def _lag(close: np.ndarray, follower: np.ndarray, at: int, sr: int,
         around: float | None = None) -> tuple[float, float, float]:
    """Lag (samples) from ``close`` at ``at`` (window start) to ``follower`` (same timeline), and its NCC.

    With ``around`` (the input's lag), the peak is sought near it, and the third value is the
    strongest |NCC| within :data:`LAG_CHANGE_MS` of it (else the peak's own).
    """
    n = int(sum(CLOSE_WINDOW_MS) / 1000.0 * sr)
    lo, hi = int(LAG_SEARCH_MS[0] / 1000.0 * sr), int(LAG_SEARCH_MS[1] / 1000.0 * sr)
    if at < 0 or at + n > close.size:
        return float("nan"), 0.0, 0.0
    start = max(0, at + lo)
    seg = follower[start: at + hi + n]
    if seg.size < n:
        return float("nan"), 0.0, 0.0
    curve = _ncc(close[at: at + n], seg)
    base = start - at  # lag of curve[0]
    if around is None:
        idx, height = _peak(curve, 0, curve.size - 1)
        return idx + base, height, height
    reach = int(OUT_SEARCH_MS / 1000.0 * sr)
    idx, height = _peak(curve, int(around) - base - reach, int(around) - base + reach)
    near = int(LAG_CHANGE_MS / 1000.0 * sr) + 1
    _, kept = _peak(curve, int(around) - base - near, int(around) - base + near)
    return idx + base, height, kept


def _drum_onsets(analysis: Analysis, plan: EditPlan, k: int, drums: DrumPlans | None,
                 close_names: Sequence[str]) -> dict[str, float]:
    """Per drum (its first close stem) with an onset in edit ``k``'s hits: the earliest, in seconds."""
    e = plan.edits[k]
    out: dict[str, float] = {}
    for i in (e.hit_index, *e.merged_hit_indices):
        for stem, t in analysis.hits[i].onsets.items():
            name = (drums.drum_of(stem) if drums is not None else stem) or stem
            if name == stem and stem in close_names:
                out[name] = min(t, out.get(name, t))
    return out


def check(session: Session, analysis: Analysis, plan: EditPlan, drums: DrumPlans | None,
          inputs: Mapping[str, Mapping[int, np.ndarray]], outputs: Mapping[str, Mapping[int, np.ndarray]],
          windows: Mapping[int, tuple[int, int]], refs: tuple[Mapping, Mapping] | None = None,
          targets_s: Sequence[float] | None = None) -> list[Failure]:
    """Every failure of the edits in ``windows``, from input and output excerpts (:func:`_excerpts`).

    ``refs``: (input, output) excerpts of each drum's own sound, its bleed of the others taken out
    (:func:`_references`), which lags are measured from; else its close mic as it is.
    ``targets_s``: where each hit is aimed when sections give it its own grid (else its analysis slot).
    """
    sr = session.sample_rate
    close_names = [s.name for s in session.close_stems]
    followers = [s for s in session.stems if not s.is_close]
    pre_close = int(CLOSE_WINDOW_MS[0] / 1000.0 * sr)
    failures: list[Failure] = []
    for k, (a, _b) in windows.items():
        e = plan.edits[k]
        found: list[Failure] = []
        # a hit left far from its slot, further than it was played
        for i in (e.hit_index, *e.merged_hit_indices):
            hit = analysis.hits[i]
            slot_s = float(analysis.grid.slot_time(hit.slot)) if targets_s is None else float(targets_s[i])
            step_s = float(np.asarray(analysis.grid.step_at(slot_s)))  # a tempo map's step where the hit is
            for stem, t in hit.onsets.items():
                own = drums.plan_for(stem, plan) if drums is not None else plan
                before = t - analysis.delay_s(stem) - slot_s
                after = before + own.edits[k].shift_samples / sr
                if abs(after) > FAR_SHARE * step_s and abs(after) > abs(before) + 1e-4:
                    found.append(Failure(k, "far from slot", f"{stem} {after * 1000.0:+.1f} ms from its slot"))
        # lag change and pre-echo, per drum and follower channel
        for drum, t in _drum_onsets(analysis, plan, k, drums, close_names).items():
            shift = (drums.plan_for(drum, plan) if drums is not None else plan).edits[k].shift_samples
            at_in = int(round(t * sr)) - pre_close - a
            at_out = at_in + shift
            ref_in, ref_out = refs[0] if refs else inputs, refs[1] if refs else outputs
            c_in, c_out = ref_in[drum][k][0], ref_out[drum][k][0]
            for f in followers:
                for ch in range(f.n_channels):
                    f_in, f_out = inputs[f.name][k][ch], outputs[f.name][k][ch]
                    lag_in, heard, _ = _lag(c_in, f_in, at_in, sr)
                    if not np.isfinite(lag_in) or heard < HEARD_NCC:
                        continue  # the drum is not heard clearly enough in this channel to measure it
                    lag_out, best, kept = _lag(c_out, f_out, at_out, sr, around=lag_in)
                    if not np.isfinite(lag_out) or kept >= PEAK_KEPT * best:
                        continue  # the input's peak is (nearly) as strong as any: a room's many, not a move
                    change_ms = (lag_out - lag_in) / sr * 1000.0
                    where = f.name if f.n_channels == 1 else f"{f.name}:{ch + 1}"
                    if lag_out / sr * 1000.0 < -PRE_ECHO_MS and lag_in / sr * 1000.0 >= -PRE_ECHO_MS:
                        found.append(Failure(k, "pre-echo", f"{drum} heard in {where} "
                                                           f"{-lag_out / sr * 1000.0:.2f} ms before its close mic"))
                    elif abs(change_ms) > LAG_CHANGE_MS:
                        found.append(Failure(k, "lag change", f"{drum} to {where} {change_ms:+.2f} ms"))
        # attacks heard twice, seams that click
        # an attack moved into the output's core was already in the input's, which is wider by the moves
        c0, c1 = (c - a for c in _core(plan, k, drums))
        near = [j for j in (k - 1, k, k + 1) if 0 <= j < len(plan.edits)]
        shifts = {plan.edits[j].shift_samples for j in near}
        if drums is not None:
            shifts |= {drums.plans[d].edits[j].shift_samples for d in drums.moved for j in near}
        shifts.add(0)
        for each in session.stems:
            env_in, env_out = _band_db(inputs[each.name][k], sr), _band_db(outputs[each.name][k], sr)
            n_new = _new_attacks(env_in, env_out, max(1, int(round(sr / 1000.0))), c0, c1, sorted(shifts))
            if n_new:
                found.append(Failure(k, "double attack", f"{each.name}: {n_new} attack(s) the input does not have"))
        failures.extend(found)
    return failures


def _references(plan: EditPlan, drums: DrumPlans | None, windows) -> tuple[Mapping, Mapping] | None:
    """Each drum's cleaned close mic (:attr:`DrumPlans.clean`) in and as its own plan moves it: excerpts.

    Under ``fix`` the drums of one hit move apart, and a close mic's bleed of the others, correlated
    with their sound in the follower, would move its lag peak by ms though its own part moved right.
    """
    if drums is None or not drums.moved or drums.clean is None:
        return None
    from .render import render

    ins, outs = {}, {}
    for d, mono in drums.clean.items():
        x = np.asarray(mono, dtype=np.float32)[None, :]
        ins[d] = {k: x[:, a:b].copy() for k, (a, b) in windows.items()}
        y = render(x, drums.plan_for(d, plan))
        outs[d] = {k: y[:, a:b].copy() for k, (a, b) in windows.items()}
    return ins, outs


def revert(plan: EditPlan, drums: DrumPlans | None, edits: Iterable[int]) -> tuple[EditPlan, DrumPlans | None, dict]:
    """The plans with each of ``edits`` one piece (its drums on the hit's shift) or, if it was, unmoved."""
    actions: dict[int, str] = {}
    zero: set[int] = set()
    for k in edits:
        apart = [] if drums is None else [d for d in drums.moved
                                          if drums.plans[d].edits[k].shift_samples != plan.edits[k].shift_samples]
        if apart:
            actions[k] = "one piece"
        elif plan.edits[k].shift_samples != 0:
            actions[k] = "unmoved"
            zero.add(k)
    new_plan = plan
    if zero:
        new_plan = fit_plan(plan, [0.0 if k in zero else float(e.shift_samples) for k, e in enumerate(plan.edits)])
    if drums is None:
        return new_plan, None, actions
    plans: dict[str, EditPlan] = {}
    moved: list[str] = []
    fixed: set[int] = set()
    for d, drum_plan in drums.plans.items():
        wanted = [float(n.shift_samples) if (k in actions or o.shift_samples == c.shift_samples)
                  else float(o.shift_samples)
                  for k, (o, c, n) in enumerate(zip(drum_plan.edits, plan.edits, new_plan.edits))]
        plans[d] = fit_plan(new_plan, wanted)
        changed = [k for k, (a, b) in enumerate(zip(plans[d].edits, new_plan.edits)) if a.shift_samples != b.shift_samples]
        if changed:
            moved.append(d)
            for k in changed:
                fixed.update((new_plan.edits[k].hit_index, *new_plan.edits[k].merged_hit_indices))
        else:
            plans[d] = new_plan
    return new_plan, replace(drums, plans=plans, moved=tuple(moved), fixed_hits=frozenset(fixed)), actions


def check_and_revert(session: Session, analysis: Analysis, plan: EditPlan, drums: DrumPlans | None, *,
                     progress: Optional[Callable[[str, float], None]] = None,
                     targets_s: Sequence[float] | None = None) -> tuple[EditPlan, DrumPlans | None, SelfCheck]:
    """Render, check every edit that moves something, revert those that fail, check those again.

    Returns the plans to write with and the report. ``progress("checking", f)``.
    """
    from .align import render_stems

    started = time.perf_counter()
    todo = [k for k, e in enumerate(plan.edits)
            if e.shift_samples != 0 or (drums is not None and any(
                drums.plans[d].edits[k].shift_samples != 0 for d in drums.moved))]
    failures: list[Failure] = []
    reverted: dict[int, str] = {}
    remaining: list[Failure] = []
    stuck: list[Failure] = []  # failures of edits already unmoved: nothing left to revert
    renders = 0
    windows = _windows(plan, todo, drums)
    inputs = _excerpts(session.stems, windows, copy=False)
    for round_ in range(MAX_ROUNDS + 1):
        if not windows:
            break
        outputs = _excerpts(render_stems(session, plan, drums=drums), windows)
        renders += 1
        if progress:
            progress("checking", (round_ + 1) / (MAX_ROUNDS + 1))
        found = check(session, analysis, plan, drums, inputs, outputs, windows, _references(plan, drums, windows),
                      targets_s)
        failures.extend(found)
        remaining = found
        failed = sorted({f.edit for f in found})
        if not failed or round_ == MAX_ROUNDS:
            break
        plan, drums, actions = revert(plan, drums, failed)
        stuck += [f for f in found if f.edit not in actions]
        remaining = []
        if not actions:
            break
        reverted.update(actions)
        # a reverted edit is checked again, with its neighbours (their seams with it changed)
        again = sorted({j for k in actions for j in (k - 1, k, k + 1) if 0 <= j < len(plan.edits)})
        windows = _windows(plan, again, drums)
        inputs = _excerpts(session.stems, windows, copy=False)
    # the last round's failures are in the plan returned: nothing was reverted after it
    report = SelfCheck(len(todo), tuple(failures), reverted, tuple(stuck + remaining), time.perf_counter() - started,
                       renders)
    return plan, drums, report
