"""Rendering an :class:`~beatfix.plan.EditPlan`: shift pieces, crossfade or stretch each seam.

Every channel gets the same cuts, fades and stretches, so the phase between
mics is kept exactly. Piece ``k`` plays ``audio[:, x - shift_k]`` at output
sample ``x``; the material before the first cut is a piece with shift 0.
Source samples outside the input are silence, and the output has exactly the
input's length.

At the seam where piece ``k`` starts (``P = cut_k + shift_k`` in the output),
with ``d = shift_k - shift_{k-1}``, the kinds are:

* ``join`` (``d == 0``): the pieces are contiguous in the source; nothing to do.
* ``overlap`` (``d < 0``): piece ``k-1`` is trimmed; a crossfade over output
  ``[P - xfade, P)`` mixes its decay into piece ``k``'s own pre-attack
  material (which is the same decay, later). Piece ``k`` is at full level
  from ``P`` on, so its pad and attack are never faded.
* ``fill`` (``d > 0``, decay room ``>= d + xfade``): piece ``k-1`` plays to
  its own source end (``cut_k``), never past it, so the next attack never
  sounds twice; piece ``k`` is extended backwards by ``d + xfade`` through the
  previous hit's decay (source ``[cut_k - d - xfade, cut_k)``), with the
  crossfade over piece ``k-1``'s last ``xfade`` samples.
* ``stretch`` (``d > 0``, less room): the previous decay after its protected
  zone, source ``[R, cut_k)`` with ``R = last attack + protect``, is resampled
  by windowed sinc to fill output ``[R + shift_{k-1}, P)``. It ends exactly
  where piece ``k`` starts in the source, so no crossfade is needed.

Where the last piece, moved earlier, runs out of input before the output
ends, it is faded out over a crossfade's length rather than cut off.

"Decay room" is :func:`beatfix.plan.decay_room_samples`; the planner keeps
every seam inside it, and :func:`plan_seams` refuses a plan that does not.
When the planner heard the audio, the room also starts after any attack the
analysis missed (``Edit.room_from_sample``), so no seam plays, drops or
stretches one.

Crossfades keep the level steady whatever they join: two sides with
correlation ``r`` get gains ``a, b`` (from a linear ramp) scaled so that
``a^2 + b^2 + 2 r a b = 1``: equal power for unrelated material (``r = 0``),
equal gain for the same material a few samples apart (``r = 1``), where an
equal-power fade would be 3 dB too loud in its middle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from .errors import ParameterError
from .plan import Edit, EditPlan, decay_room_samples

# 32 taps of Kaiser-windowed sinc: flat to ~20 kHz at 48 kHz, and cheap because
# only the few stretched decays are resampled.
_SINC_HALF_TAPS = 16
_KAISER_BETA = 8.0
_STRETCH_BLOCK = 4096  # output samples resampled at a time
_PHASES = 1024  # fractional positions tabulated; linear between them is exact to ~1e-6
# Progress is reported about this many times per render.
_PROGRESS_STEPS = 50
# Without a measured correlation, pieces this close in time are faded as the same material.
ALIKE_BELOW_MS = 1.0


@dataclass(frozen=True)
class Seam:
    """What happens where piece ``edit_index`` starts; output span ``[out_start, out_stop)``.

    Piece ``k-1`` plays unchanged up to ``out_start``, piece ``k`` from
    ``out_stop``; between them is a crossfade (``overlap``, ``fill``), a
    stretch of source ``[stretch_src_start, stretch_src_stop)`` or nothing
    (``join``).
    """

    edit_index: int
    kind: Literal["join", "overlap", "fill", "stretch"]
    out_start: int
    out_stop: int
    prev_shift_samples: int
    shift_samples: int
    stretch_src_start: int = 0
    stretch_src_stop: int = 0
    xfade_correlation: float = 0.0  # how alike the crossfade's two sides are, 0 to 1


def _correlation(edit: Edit, move: int, sample_rate: int) -> float:
    """The edit's measured correlation; unmeasured, a move under ALIKE_BELOW_MS counts as the same material.

    Never measured here on the audio being rendered: stems rendered one at a
    time must get the same fades as when rendered together.
    """
    if edit.xfade_correlation is not None:
        return min(1.0, max(0.0, float(edit.xfade_correlation)))
    return 1.0 if abs(move) < ALIKE_BELOW_MS * sample_rate / 1000.0 else 0.0


def _seam(index: int, prev: Edit | None, edit: Edit, plan: EditPlan) -> Seam:
    prev_shift = prev.shift_samples if prev is not None else 0
    shift, cut, xfade = edit.shift_samples, edit.cut_sample, plan.xfade_samples
    move = shift - prev_shift
    start = cut + shift
    room = decay_room_samples(prev, cut, plan.protect_samples, room_from_sample=edit.room_from_sample)
    if move == 0:
        return Seam(index, "join", start, start, prev_shift, shift)
    if move < 0:
        if room is not None and xfade - move > room:
            raise ParameterError(
                f"edit {index}: moving {-move} samples earlier leaves no room for a "
                f"{xfade}-sample crossfade after the previous hit's protected zone (or a later attack)"
            )
        return Seam(index, "overlap", start - xfade, start, prev_shift, shift,
                    xfade_correlation=_correlation(edit, move, plan.sample_rate))
    if room is None or move + xfade <= room:
        prev_end = cut + prev_shift  # piece k-1's source end, in the output
        return Seam(index, "fill", prev_end - xfade, prev_end, prev_shift, shift,
                    xfade_correlation=_correlation(edit, move, plan.sample_rate))
    if room < 1:
        raise ParameterError(
            f"edit {index}: moving {move} samples later needs a stretch, but the previous "
            "piece has no decay after its protected zone (or a later attack)"
        )
    stretch_from = cut - room
    return Seam(index, "stretch", stretch_from + prev_shift, start, prev_shift, shift,
                stretch_from, cut)


def plan_seams(plan: EditPlan) -> tuple[Seam, ...]:
    """The seam at the start of every piece, in order; raises ParameterError if unrenderable."""
    seams: list[Seam] = []
    prev: Edit | None = None
    for index, edit in enumerate(plan.edits):
        if prev is not None and edit.cut_sample <= prev.cut_sample:
            raise ParameterError(f"edit {index}: cuts must be strictly increasing")
        seam = _seam(index, prev, edit, plan)
        # Piece k-1's unchanged part must not run backwards (hand-built plans).
        if seams and seam.out_start < seams[-1].out_stop:
            raise ParameterError(f"edit {index}: seam overlaps the previous seam")
        seams.append(seam)
        prev = edit
    return tuple(seams)


def _read(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Source ``[start, stop)`` with silence outside the input, ``(n_channels, stop - start)``."""
    out = np.zeros((audio.shape[0], max(0, stop - start)), dtype=audio.dtype)
    lo, hi = max(start, 0), min(stop, audio.shape[1])
    if hi > lo:
        out[:, lo - start:hi - start] = audio[:, lo:hi]
    return out


def _copy(out: np.ndarray, audio: np.ndarray, start: float, stop: float, shift: int) -> None:
    """Play ``audio`` shifted by ``shift`` into output ``[start, stop)``, silence where no source."""
    n = audio.shape[1]
    start, stop = int(max(start, 0)), int(min(stop, n))
    if stop <= start:
        return
    lo, hi = max(start, shift), min(stop, n + shift)  # output samples with a source sample
    if hi <= lo:
        out[:, start:stop] = 0
        return
    out[:, start:lo] = 0
    out[:, lo:hi] = audio[:, lo - shift:hi - shift]
    out[:, hi:stop] = 0


def _sinc_table() -> np.ndarray:
    """Kaiser-windowed sinc taps at ``_PHASES + 1`` fractional positions, ``(phases + 1, taps)``.

    Row ``i`` holds the weights for a read position ``i / _PHASES`` past a
    source sample, normalised to unity gain; the last row (fraction 1) closes
    the table for interpolation between rows.
    """
    taps = np.arange(-_SINC_HALF_TAPS + 1, _SINC_HALF_TAPS + 1)
    dist = (np.arange(_PHASES + 1) / _PHASES)[:, None] - taps[None, :]
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (dist / _SINC_HALF_TAPS) ** 2, 0.0, 1.0)))
    weights = np.sinc(dist) * window
    return weights / weights.sum(axis=1, keepdims=True)


# Built once: a constant, like a window function, not state.
_SINC_TABLE = _sinc_table()


def stretch(audio: np.ndarray, src_start: int, src_stop: int, n_out: int) -> np.ndarray:
    """Source ``[src_start, src_stop)`` resampled to ``n_out`` samples, ``(n_channels, n_out)``.

    Output sample ``j`` reads source position ``src_start + j * step`` with
    ``step = (src_stop - src_start) / n_out``, so it starts on a source sample
    and ends one step before ``src_stop``, joining the source seamlessly on
    both sides. Kaiser-windowed sinc (table interpolated between phases) with
    the same positions and weights on every channel: no phase difference
    between channels.
    """
    n_out = int(n_out)
    if n_out <= 0:
        return np.zeros((audio.shape[0], 0), dtype=audio.dtype)
    pos = src_start + np.arange(n_out) * ((src_stop - src_start) / n_out)
    base = np.floor(pos).astype(np.int64)
    phase = (pos - base) * _PHASES
    row = np.minimum(phase.astype(np.int64), _PHASES - 1)
    blend = (phase - row)[:, None]
    weights = (1.0 - blend) * _SINC_TABLE[row] + blend * _SINC_TABLE[row + 1]  # (n_out, taps)
    weights = weights.astype(audio.dtype)
    out = np.empty((audio.shape[0], n_out), dtype=audio.dtype)
    # In blocks, so the (n_channels, block, taps) gather stays small for long stretches.
    for j0 in range(0, n_out, _STRETCH_BLOCK):
        block = base[j0:j0 + _STRETCH_BLOCK]
        first = int(block[0]) - _SINC_HALF_TAPS + 1
        source = _read(audio, first, int(block[-1]) + _SINC_HALF_TAPS + 1)
        # Tap t of output j reads source base[j] - H + 1 + t.
        windows = np.lib.stride_tricks.sliding_window_view(source, 2 * _SINC_HALF_TAPS, axis=1)
        out[:, j0:j0 + block.size] = np.einsum(
            "cjt,jt->cj", windows[:, block - block[0], :], weights[j0:j0 + block.size])
    return out


def crossfade_gains(n: int, correlation: float, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Fade-out and fade-in gains of ``n`` samples for two sides of this correlation (0 to 1).

    A linear ramp ``a = 1 - t``, ``b = t`` divided by the level the two
    sides sum to, ``sqrt(a^2 + b^2 + 2 r a b)``: the sum keeps the sides'
    level all through the fade, equal power at ``r = 0``, equal gain at 1.
    """
    r = min(1.0, max(0.0, float(correlation)))
    t = (np.arange(n) + 0.5) / max(n, 1)
    a, b = 1.0 - t, t
    level = np.sqrt(a * a + b * b + 2.0 * r * a * b)
    return (a / level).astype(dtype), (b / level).astype(dtype)


def _middle(out: np.ndarray, audio: np.ndarray, seam: Seam, xfade_samples: int) -> None:
    """Write the seam's crossfade or stretch into the output, clipped to its length."""
    n = audio.shape[1]
    start, stop = seam.out_start, seam.out_stop
    lo, hi = max(start, 0), min(stop, n)
    if hi <= lo:
        return
    if seam.kind == "stretch":
        filled = stretch(audio, seam.stretch_src_start, seam.stretch_src_stop, stop - start)
        out[:, lo:hi] = filled[:, lo - start:hi - start]
        return
    prev = _read(audio, lo - seam.prev_shift_samples, hi - seam.prev_shift_samples)
    nxt = _read(audio, lo - seam.shift_samples, hi - seam.shift_samples)
    fade_out, fade_in = crossfade_gains(xfade_samples, seam.xfade_correlation, audio.dtype)
    out[:, lo:hi] = prev * fade_out[lo - start:hi - start] + nxt * fade_in[lo - start:hi - start]


def render(
    audio: np.ndarray,
    plan: EditPlan,
    *,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Apply ``plan`` to ``audio`` ``(n_channels, n_samples)``; same shape and dtype.

    ``progress`` (optional) is called with fractions from 0 to 1.
    """
    if not isinstance(audio, np.ndarray) or audio.ndim != 2:
        raise ParameterError("audio must be an array of shape (n_channels, n_samples)")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ParameterError(f"audio must be floating point, got {audio.dtype}")
    if audio.shape[1] != plan.n_samples:
        raise ParameterError(
            f"audio has {audio.shape[1]} samples but the plan was made for {plan.n_samples}"
        )
    seams = plan_seams(plan)
    # The seams partition the output, so every sample is written once: no zero-fill pass.
    out = np.empty_like(audio)
    every = max(1, len(seams) // _PROGRESS_STEPS)
    copy_from, shift = -np.inf, 0  # the lead-in: everything before the first cut
    for i, seam in enumerate(seams):
        _copy(out, audio, copy_from, seam.out_start, shift)
        _middle(out, audio, seam, plan.xfade_samples)
        copy_from, shift = seam.out_stop, seam.shift_samples
        if progress is not None and i % every == 0:
            progress(i / len(seams))
    _copy(out, audio, copy_from, audio.shape[1], shift)
    _fade_out_end(out, copy_from, shift, plan.xfade_samples)
    if progress is not None:
        progress(1.0)
    return out


def _fade_out_end(out: np.ndarray, piece_start: float, shift: int, n_fade: int) -> None:
    """Fade the last piece out where it runs out of input, if it moved earlier.

    It then ends ``-shift`` samples before the output does; cut off there
    mid-decay, it would click. The input's own end is where the file ends.
    """
    stop = out.shape[1] + shift
    if shift >= 0 or stop <= 0:
        return
    start = int(max(stop - n_fade, piece_start, 0))
    if stop > start:
        out[:, start:stop] *= crossfade_gains(stop - start, 1.0, out.dtype)[0]
