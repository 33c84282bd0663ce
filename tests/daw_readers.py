"""Reading back what beatfix.daw writes: a small REAPER .rpp parser, an AAF walker (pyaaf2), and
the clips each edit of edits.json must become, derived from the edit list alone."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from beatfix.plan import ms_to_samples


@dataclass(frozen=True)
class Item:
    """A clip as read back, every time in samples."""

    track: str
    name: str
    position: int
    length: int
    source_offset: int
    fade_in: int = 0
    fade_out: int = 0
    rate: float = 1.0
    file: str = ""

    @property
    def end(self) -> int:
        return self.position + self.length


def _samples(seconds: str, sr: int) -> int:
    value = float(seconds) * sr
    whole = round(value)
    assert abs(value - whole) < 1e-6, f"{seconds} s is not a whole sample at {sr} Hz"
    return int(whole)


def parse_rpp(text: str) -> dict:
    """``{"tracks": {name: [Item, ...]}, "notes": [...], "sample_rate": int}`` from project text."""
    lines = text.splitlines()
    assert lines[0].startswith("<REAPER_PROJECT") and lines[-1].strip() == ">"
    sr = None
    stack: list[tuple[str, dict]] = []
    tracks: dict[str, list[Item]] = {}
    notes: list[str] = []
    for raw in lines:
        line = raw.strip()
        if line.startswith("<"):
            stack.append((line[1:].split()[0], {"_args": line[1:].split()[1:]}))
            continue
        if line == ">":
            tag, fields = stack.pop()
            if tag == "ITEM":
                track = stack[-1][1]["NAME"][0]
                f = fields
                tracks.setdefault(track, []).append(Item(
                    track, f["NAME"][0], _samples(f["POSITION"][0], sr), _samples(f["LENGTH"][0], sr),
                    _samples(f["SOFFS"][0], sr), _samples(f["FADEIN"][1], sr), _samples(f["FADEOUT"][1], sr),
                    float(f["PLAYRATE"][0]), f["FILE"][0]))
            elif tag == "TRACK":
                tracks.setdefault(fields["NAME"][0], [])
            elif tag == "SOURCE":
                stack[-1][1]["FILE"] = fields["FILE"]
            continue
        tag, fields = stack[-1]
        if tag == "NOTES":
            assert line.startswith("|")
            notes.append(line[1:])
            continue
        key, *args = shlex.split(line.replace("`", '"'))
        fields[key] = args
        if key == "SAMPLERATE":
            sr = int(args[0])
    assert not stack
    return {"tracks": tracks, "notes": notes, "sample_rate": sr}


def read_aaf(path) -> dict:
    """``{slot name: {"items": [Item], "transitions": [(position, length)], "fillers": [...], "url": str}}``."""
    import aaf2

    out = {}
    with aaf2.open(str(path), "r") as f:
        comps = list(f.content.compositionmobs())
        assert len(comps) == 1 and list(f.content.toplevel()) == comps
        for slot in comps[0].slots:
            rate = slot.edit_rate
            items, transitions, fillers, urls = [], [], [], set()
            for _, position, c in slot.segment.positions():
                kind = type(c).__name__
                if kind == "SourceClip":
                    master = c.mob
                    assert type(master).__name__ == "MasterMob"
                    source = master.slot_at(c.slot_id).segment.components[0].mob
                    urls.add(source.descriptor["Locator"][0]["URLString"].value)
                    items.append(Item(slot.name, master.name, position, c.length, c.start))
                elif kind == "Transition":
                    transitions.append((position, c.length))
                elif kind == "Filler":
                    fillers.append((position, c.length))
            out[slot.name] = {"items": items, "transitions": transitions, "fillers": fillers, "urls": urls,
                              "edit_rate": float(rate), "length": slot.segment.length,
                              "descriptor_length": source.descriptor["Length"].value if items else None}
    return out


def expected_clips(doc: dict, n_source: int | None = None) -> list[dict]:
    """Every clip the edit list implies, from its fields alone (not from beatfix.render's seams).

    Piece ``k`` plays ``source = output - shift_k``. At the seam where piece ``k`` starts
    (``d = shift_k - shift_{k-1}``): ``d == 0`` abut at ``cut_k + shift_k``; ``d < 0`` piece ``k``
    starts a crossfade earlier and piece ``k-1`` ends at ``cut_k + shift_k``; ``d > 0`` with decay
    room ``>= d + xfade`` piece ``k`` starts ``d + xfade`` earlier (filling the gap from the
    previous decay) and piece ``k-1`` ends at its own source end ``cut_k``; with less room a
    stretch clip plays source ``[R, cut_k)`` over output ``[R + shift_{k-1}, cut_k + shift_k)``.
    """
    sr, n = doc["sample_rate"], doc["n_samples"]
    n_source = n if n_source is None else n_source
    xfade = ms_to_samples(doc["xfade_ms"], sr)
    protect = ms_to_samples(doc["protect_ms"], sr)
    edits = doc["edits"]
    shifts = [0] + [e["shift_samples"] for e in edits]  # piece -1 (lead-in) has shift 0
    starts, ends, fins, fouts, stretches = {}, {}, {}, {}, []
    starts[-1], fins[-1] = 0, 0
    for k, e in enumerate(edits):
        prev_shift, shift, cut = shifts[k], shifts[k + 1], e["cut_sample"]
        d = shift - prev_shift
        room = None
        if k > 0:
            prev = edits[k - 1]
            zone = (prev["last_attack_sample"] if prev["last_attack_sample"] is not None
                    else prev["attack_sample"]) + protect
            room = cut - max([zone] + ([e["room_from_sample"]] if e["room_from_sample"] is not None else []))
        elif e["room_from_sample"] is not None:
            room = cut - e["room_from_sample"]
        if d == 0:
            ends[k - 1], fouts[k - 1], starts[k], fins[k] = cut + shift, 0, cut + shift, 0
        elif d < 0:
            ends[k - 1], fouts[k - 1], starts[k], fins[k] = cut + shift, xfade, cut + shift - xfade, xfade
        elif room is None or d + xfade <= room:
            ends[k - 1], fouts[k - 1], starts[k], fins[k] = cut + prev_shift, xfade, cut + prev_shift - xfade, xfade
        else:
            r = cut - room
            ends[k - 1], fouts[k - 1], starts[k], fins[k] = r + prev_shift, 0, cut + shift, 0
            stretches.append(dict(piece=k, kind="stretch", position=r + prev_shift, length=cut + shift - r - prev_shift,
                                  source_offset=r, source_length=cut - r, fade_in=0, fade_out=0))
    last = len(edits) - 1
    ends[last], fouts[last] = n, 0
    if shifts[-1] < 0:
        ends[last] = n + shifts[-1]
        fouts[last] = min(xfade, ends[last] - starts[last] - fins[last])
    clips = []
    for j in range(-1, len(edits)):
        shift = shifts[j + 1]
        lo, hi = max(starts[j], 0, shift), min(ends[j], n, n_source + shift)
        if hi <= lo:
            continue
        head, tail = lo - starts[j], ends[j] - hi
        fin = min(max(0, fins[j] - head), hi - lo)
        clips.append(dict(piece=j, kind="piece", position=lo, length=hi - lo, source_offset=lo - shift,
                          source_length=hi - lo, fade_in=fin, fade_out=min(max(0, fouts[j] - tail), hi - lo - fin)))
    return sorted(clips + stretches, key=lambda c: (c["position"], c["kind"] == "piece"))
