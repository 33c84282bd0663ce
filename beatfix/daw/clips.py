"""An :class:`~beatfix.plan.EditPlan` as clips of the original files, for a DAW session.

Each piece of the plan becomes one clip per track: the original file, played
from ``source_offset_samples`` at ``position_samples`` for ``length_samples``,
with fades where the renderer crossfades. The clips are read off the
renderer's own seams (:func:`beatfix.render.plan_seams`), so a DAW that sums
overlapping clips plays back what ``align`` writes, apart from the fades'
curves (a DAW's fade shapes are not beatfix's level-keeping gains):

* ``join``: the two clips abut, no fade.
* ``overlap`` (a piece moved earlier): the earlier clip ends at the later
  piece's cut in the output and fades out over the crossfade; the later clip
  starts a crossfade before its cut and fades in.
* ``fill`` (a piece moved later, gap filled from decay): the renderer never
  plays a piece past its cut (the next attack would sound twice); the gap is
  filled by the *later* piece starting earlier, its source offset moved back
  into the previous hit's decay. So the later clip is extended backwards over
  the gap plus the crossfade, and the earlier clip keeps its end and fades out.
* ``stretch`` (a gap larger than the decay available): a third clip plays the
  previous decay after its protected zone, resampled to fill the gap
  (``source_length_samples`` over ``length_samples``: a play rate below 1,
  pitch not preserved, as the renderer resamples).

Where the last piece moved earlier runs out of input, its clip fades out
over a crossfade, as the render does. Clips are trimmed to the output length
and to the file's own length (a shorter stem is silence beyond its end in the
render too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from ..errors import ParameterError
from ..plan import EditPlan
from ..render import plan_seams


@dataclass(frozen=True)
class Clip:
    """One region of a track: ``source[source_offset : source_offset + source_length]`` at ``position``.

    ``piece`` is the plan's piece: -1 for the material before the first cut,
    else the index of its edit in ``EditPlan.edits`` (a stretch clip belongs
    to the seam of the edit it leads into). ``shift_samples`` maps output to
    source for plain clips: ``source = output - shift``.
    """

    piece: int
    kind: Literal["piece", "stretch"]
    position_samples: int
    length_samples: int
    source_offset_samples: int
    source_length_samples: int  # == length_samples except for a stretch
    shift_samples: int
    fade_in_samples: int = 0
    fade_out_samples: int = 0
    fade_in_correlation: float = 1.0  # how alike the two sides of the fade are (render.crossfade_gains)
    fade_out_correlation: float = 1.0

    @property
    def end_samples(self) -> int:
        return self.position_samples + self.length_samples


@dataclass(frozen=True)
class Track:
    """One stem: the original file and its clips, in time order."""

    name: str
    path: Path  # absolute path of the original input file
    n_channels: int
    n_samples: int  # the file's own length
    format: str  # soundfile major format: WAV, AIFF, FLAC, ...
    subtype: str  # soundfile subtype: PCM_16, PCM_24, FLOAT, ...
    clips: tuple[Clip, ...]


def _trim(clip: Clip, n_out: int, n_source: int) -> Clip | None:
    """``clip`` cut to output ``[0, n_out)`` and, for plain clips, to source ``[0, n_source)``."""
    lo, hi = max(clip.position_samples, 0), min(clip.end_samples, n_out)
    if clip.kind == "piece":
        lo = max(lo, clip.shift_samples)  # source sample 0
        hi = min(hi, n_source + clip.shift_samples)
    if hi <= lo:
        return None
    if (lo, hi) == (clip.position_samples, clip.end_samples):
        return clip
    head, tail = lo - clip.position_samples, clip.end_samples - hi
    length = hi - lo
    fade_in = min(max(0, clip.fade_in_samples - head), length)
    fade_out = min(max(0, clip.fade_out_samples - tail), length - fade_in)
    if clip.kind == "stretch":
        # Only the output side is ever trimmed (a stretch lies inside the decay); keep its rate.
        rate = clip.source_length_samples / clip.length_samples
        return Clip(clip.piece, "stretch", lo, length, clip.source_offset_samples + round(head * rate),
                    round(length * rate), clip.shift_samples, fade_in, fade_out,
                    clip.fade_in_correlation, clip.fade_out_correlation)
    return Clip(clip.piece, "piece", lo, length, lo - clip.shift_samples, length, clip.shift_samples,
                fade_in, fade_out, clip.fade_in_correlation, clip.fade_out_correlation)


def plan_clips(plan: EditPlan, *, n_source_samples: int | None = None) -> tuple[Clip, ...]:
    """The clips that play ``plan`` from a file of ``n_source_samples`` (default: the plan's length).

    Raises ParameterError where the plan cannot be rendered (as the renderer does).
    """
    n_out = plan.n_samples
    n_source = n_out if n_source_samples is None else int(n_source_samples)
    if n_source < 0:
        raise ParameterError(f"a file length must be >= 0 samples, got {n_source}")
    seams = plan_seams(plan)
    xfade = plan.xfade_samples
    raw: list[Clip] = []
    # Piece j runs from seam j-1 to seam j; piece -1 (the lead-in) from the start, with shift 0.
    for j in range(-1, len(seams)):
        shift = 0 if j < 0 else plan.edits[j].shift_samples
        start, fade_in, corr_in = 0, 0, 1.0
        if j >= 0:
            opening = seams[j]
            if opening.kind in ("overlap", "fill"):
                start, corr_in = opening.out_start, opening.xfade_correlation
                fade_in = opening.out_stop - opening.out_start
            else:
                start = opening.out_stop
        fade_out, corr_out = 0, 1.0
        if j + 1 < len(seams):
            closing = seams[j + 1]
            if closing.kind in ("overlap", "fill"):
                end, corr_out = closing.out_stop, closing.xfade_correlation
                fade_out = closing.out_stop - closing.out_start
            else:
                end = closing.out_start
        else:
            end = n_out
            if shift < 0:  # the render fades the last piece out where its input runs out
                end = n_out + shift
                fade_out = min(xfade, max(0, end - start - fade_in))
        if end > start:
            raw.append(Clip(j, "piece", start, end - start, start - shift, end - start, shift,
                            fade_in, fade_out, corr_in, corr_out))
        if j + 1 < len(seams) and seams[j + 1].kind == "stretch":
            s = seams[j + 1]
            raw.append(Clip(j + 1, "stretch", s.out_start, s.out_stop - s.out_start, s.stretch_src_start,
                            s.stretch_src_stop - s.stretch_src_start, s.shift_samples))
    return tuple(c for c in (_trim(c, n_out, n_source) for c in raw) if c is not None)


def session_tracks(plan: EditPlan, stems: Sequence[dict], *, plans: dict[str, EditPlan] | None = None
                   ) -> tuple[Track, ...]:
    """One :class:`Track` per stem, in order.

    ``stems``: dicts with ``name``, ``path`` (absolute), ``n_channels``,
    ``n_samples`` (the file's own length), ``format`` and ``subtype``.
    ``plans`` gives a stem its own plan (a drum's, under ``--flams fix``);
    others get ``plan``.
    """
    tracks = []
    for s in stems:
        own = (plans or {}).get(s["name"], plan)
        tracks.append(Track(str(s["name"]), Path(s["path"]), int(s["n_channels"]), int(s["n_samples"]),
                            str(s.get("format", "WAV")), str(s.get("subtype", "PCM_24")),
                            plan_clips(own, n_source_samples=int(s["n_samples"]))))
    return tuple(tracks)
