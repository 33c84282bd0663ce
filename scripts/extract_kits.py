#!/usr/bin/env python
"""Extract drum kits for ``beatfix synth`` from two Debian packages.

    apt-get install -y fluid-soundfont-gm hydrogen-drumkits
    .venv/bin/python scripts/extract_kits.py                      # -> kits/ (git-ignored)
    .venv/bin/python scripts/extract_kits.py --include-copyleft   # also GPL / CC-BY-SA kits, local use only
    .venv/bin/python scripts/extract_kits.py --held-out benchmarks/kits/fluidgm

Sources:

* ``fluid-soundfont-gm`` (MIT): the GM drum presets (bank 128) of
  ``FluidR3_GM.sf2``, read with the small SoundFont 2 reader below. Keys 36
  kick, 38 snare, 42 closed hat, 46 open hat, 48/45/43 toms, 51 ride, 49
  crash (or the next key of :data:`GM_KEYS`); each velocity range is a layer.
* ``hydrogen-drumkits``: each folder with a ``drumkit.xml``. Its licence is
  read from ``drumkit.xml`` and classified; only permissive kits (CC0, CC-BY,
  MIT) are extracted unless ``--include-copyleft`` (GPL, CC-BY-SA: fine for
  local training, never to be committed).

Each kit becomes ``OUT/<kit>/<drum>_v<layer>_<alternate>.flac`` plus
``kit.json`` (source, author, licence), the layout
:func:`beatfix.synth.kits.load_kit` reads. ``--held-out`` writes the small
committed benchmark kit instead: one shot per drum per layer (at most 3
layers), 24-bit FLAC at 44.1 kHz, shots cut at 2.5 s.

SoundFont drum presets other than the held-out "Standard" become training
kits ``fluid_<preset>``, minus every drum whose samples the held-out kit
uses: most keep only their own kick and snare, and ``beatfix synth`` fills
the missing drums from its procedural kit.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beatfix.audio_io import prepare_output_dir, read_stem, write_files, write_text_atomic  # noqa: E402
from beatfix.errors import BeatfixError  # noqa: E402
from beatfix.synth.kits import DRUMS, drum_from_name, prepare_shot  # noqa: E402

SF2_PATH = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
HYDROGEN_DIR = Path("/usr/share/hydrogen/data/drumkits")
HYDROGEN_COPYRIGHT = Path("/usr/share/doc/hydrogen-drumkits/copyright")
OUT_RATE = 44100
HELD_OUT_PRESET = 0  # "Standard": the benchmark kit, so no training kit may share its samples
FLUID_SKIP = (40, 41, 42, 48)  # brushes and the orchestra kit: not stick-played drum kits
# Drum -> velocity layers (soft to hard) -> alternate shots, each (mono samples, sample rate).
Layers = dict[str, list[list[tuple[np.ndarray, int]]]]
# GM drum keys per drum, in order of preference.
GM_KEYS = {"kick": (36, 35), "snare": (38, 40), "hat": (42,), "hat_open": (46,), "tom_high": (48, 50),
           "tom_mid": (45, 47), "tom_low": (43, 41), "ride": (51, 59), "crash": (49, 57)}


# ----------------------------------------------------------------------------- SoundFont 2


@dataclass
class Sf2Sample:
    name: str
    start: int
    end: int
    sample_rate: int
    original_key: int
    correction_cents: int

    @classmethod
    def from_record(cls, r: tuple) -> Sf2Sample:
        correction = r[7] - 256 if r[7] > 127 else r[7]
        return cls(r[0].split(b"\0")[0].decode("latin-1"), r[1], r[2], r[5], r[6], correction)


class SoundFont:
    """Just enough of SoundFont 2.01 to pull out the one-shots of a drum preset."""

    # Generator numbers (SF2 spec 8.1.2).
    START_OFS, END_OFS, START_COARSE, END_COARSE = 0, 1, 4, 12
    FILTER_FC, ATTACK_ENV, HOLD_ENV, DECAY_ENV, SUSTAIN_ENV = 8, 34, 35, 36, 37
    COARSE_TUNE, FINE_TUNE = 51, 52
    INSTRUMENT, KEY_RANGE, VEL_RANGE, SAMPLE_ID, SCALE_TUNING, ROOT_KEY = 41, 43, 44, 53, 56, 58

    def __init__(self, path: Path):
        self.data = path.read_bytes()
        if self.data[:4] != b"RIFF" or self.data[8:12] != b"sfbk":
            raise ValueError(f"{path}: not a SoundFont 2 file")
        self.chunks: dict[str, tuple[int, int]] = {}
        self._walk(12, len(self.data))
        self.pcm = np.frombuffer(self.data, dtype="<i2", count=self.chunks["smpl"][1] // 2,
                                 offset=self.chunks["smpl"][0])
        self.phdr = self._records("phdr", "<20sHHHIII")
        self.pbag = self._records("pbag", "<HH")
        self.pgen = self._records("pgen", "<HH")
        self.inst = self._records("inst", "<20sH")
        self.ibag = self._records("ibag", "<HH")
        self.igen = self._records("igen", "<HH")
        self.samples = [Sf2Sample.from_record(r) for r in self._records("shdr", "<20sIIIIIBBHH")]

    def _walk(self, pos: int, end: int) -> None:
        while pos + 8 <= end:
            cid, size = struct.unpack("<4sI", self.data[pos:pos + 8])
            if cid == b"LIST":
                self._walk(pos + 12, pos + 8 + size)
            else:
                self.chunks[cid.decode("latin-1")] = (pos + 8, size)
            pos += 8 + size + (size & 1)

    def _records(self, chunk: str, fmt: str) -> list[tuple]:
        offset, size = self.chunks[chunk]
        return list(struct.iter_unpack(fmt, self.data[offset:offset + size]))

    @staticmethod
    def _zones(bags: list[tuple], gens: list[tuple], first: int, last: int) -> list[dict[int, int]]:
        """Generator dicts of bags ``first..last-1``: a bag's generators run up to the next bag's."""
        return [dict(gens[bags[b][0]:bags[b + 1][0]]) for b in range(first, last)]

    @staticmethod
    def _range(gens: dict[int, int], oper: int) -> tuple[int, int]:
        if oper not in gens:
            return (0, 127)
        return (gens[oper] & 0xFF, gens[oper] >> 8)

    @staticmethod
    def _signed(value: int) -> int:
        return value - 65536 if value >= 32768 else value

    def presets(self, bank: int) -> dict[int, str]:
        return {r[1]: r[0].split(b"\0")[0].decode("latin-1") for r in self.phdr[:-1] if r[2] == bank}

    def key_layers(self, bank: int, preset: int, key: int) -> list[tuple[tuple[int, int], np.ndarray, set[str]]]:
        """Velocity layers of one key: ``[((vel_lo, vel_hi), mono shot at OUT_RATE, sample names)]``."""
        index = next(i for i, r in enumerate(self.phdr[:-1]) if r[1] == preset and r[2] == bank)
        pzones = self._zones(self.pbag, self.pgen, self.phdr[index][3], self.phdr[index + 1][3])
        pglobal = pzones[0] if pzones and self.INSTRUMENT not in pzones[0] else {}
        layers: dict[tuple[int, int], list[tuple[np.ndarray, str]]] = {}
        for pz in pzones:
            if self.INSTRUMENT not in pz or not _inside(key, self._range(pz, self.KEY_RANGE)):
                continue
            pvel = self._range(pz, self.VEL_RANGE)
            inst = pz[self.INSTRUMENT]
            izones = self._zones(self.ibag, self.igen, self.inst[inst][1], self.inst[inst + 1][1])
            iglobal = izones[0] if izones and self.SAMPLE_ID not in izones[0] else {}
            for iz in izones:
                gens = {**iglobal, **iz}
                if self.SAMPLE_ID not in iz or not _inside(key, self._range(gens, self.KEY_RANGE)):
                    continue
                ivel = self._range(gens, self.VEL_RANGE)
                vel = (max(pvel[0], ivel[0]), min(pvel[1], ivel[1]))
                if vel[0] > vel[1]:
                    continue
                shot = self._play(gens, {**pglobal, **pz}, key)
                layers.setdefault(vel, []).append((shot, self.samples[gens[self.SAMPLE_ID]].name))
        out = []
        for vel, shots in sorted(layers.items()):
            # Zones sharing a velocity range are the two sides of a stereo sample: sum them to mono.
            length = max(s.size for s, _ in shots)
            mono = np.zeros(length)
            for s, _ in shots:
                mono[: s.size] += s
            out.append((vel, mono / len(shots), {name for _, name in shots}))
        return out

    def _gen(self, igens: dict[int, int], pgens: dict[int, int], oper: int, default: int) -> int:
        # Preset-level generators are offsets added to the instrument's (SF2 spec 9.4).
        return self._signed(igens.get(oper, default)) + self._signed(pgens.get(oper, 0))

    def _play(self, igens: dict[int, int], pgens: dict[int, int], key: int) -> np.ndarray:
        """One zone's sample as a synthesizer plays it: pitched, low-passed and enveloped, at OUT_RATE."""
        sample = self.samples[igens[self.SAMPLE_ID]]
        sg = self._signed
        start = sample.start + sg(igens.get(self.START_OFS, 0)) + 32768 * sg(igens.get(self.START_COARSE, 0))
        end = sample.end + sg(igens.get(self.END_OFS, 0)) + 32768 * sg(igens.get(self.END_COARSE, 0))
        pcm = self.pcm[start:end].astype(np.float64) / 32768.0
        root = igens.get(self.ROOT_KEY, sample.original_key)
        root = sample.original_key if root > 127 else root
        scale = sg(igens.get(self.SCALE_TUNING, 100)) / 100.0
        semitones = ((key - root) * scale + self._gen(igens, pgens, self.COARSE_TUNE, 0)
                     + (self._gen(igens, pgens, self.FINE_TUNE, 0) + sample.correction_cents) / 100.0)
        # Playing a sample pitch-shifted by r is reading it at rate * r.
        x = soxr.resample(pcm, sample.sample_rate * 2 ** (semitones / 12.0), OUT_RATE, quality="HQ")
        # FluidR3 makes its velocity layers from one recording: a darker filter and a
        # slower attack for softer strokes. Render them so the layers differ as they sound.
        cutoff_hz = 8.176 * 2 ** (self._gen(igens, pgens, self.FILTER_FC, 13500) / 1200.0)
        if cutoff_hz < 0.45 * OUT_RATE:
            x = signal.sosfilt(signal.butter(2, cutoff_hz, fs=OUT_RATE, output="sos"), x)
        t = np.arange(x.size) / OUT_RATE
        attack_s = 2 ** (self._gen(igens, pgens, self.ATTACK_ENV, -12000) / 1200.0)
        hold_s = 2 ** (self._gen(igens, pgens, self.HOLD_ENV, -12000) / 1200.0)
        decay_s = 2 ** (self._gen(igens, pgens, self.DECAY_ENV, -12000) / 1200.0)
        sustain_db = -max(0, self._gen(igens, pgens, self.SUSTAIN_ENV, 0)) / 10.0
        # SF2 decay falls linearly in dB, 100 dB per decay time, down to the sustain level.
        after = np.maximum(t - attack_s - hold_s, 0.0)
        env_db = np.maximum(-100.0 * after / decay_s, sustain_db) if sustain_db < 0 else np.zeros_like(t)
        env = np.minimum(t / attack_s, 1.0) * 10 ** (env_db / 20.0)
        return x * env


def _inside(value: int, lo_hi: tuple[int, int]) -> bool:
    return lo_hi[0] <= value <= lo_hi[1]


def fluid_kit(font: SoundFont, preset: int = 0, *, exclude: set[str] = frozenset()) -> tuple[Layers, set[str]]:
    """Drum -> layers (soft to hard) -> shots of one GM drum preset, and the sample names used.

    Drums whose samples are in ``exclude`` (the held-out kit's) are left out.
    """
    kit, used = {}, set()
    for drum, keys in GM_KEYS.items():
        for key in keys:
            layers = font.key_layers(bank=128, preset=preset, key=key)
            if layers:
                names = set().union(*(n for _, _, n in layers))
                if not names & exclude:
                    kit[drum] = [[(shot, OUT_RATE)] for _, shot, _ in layers]
                    used |= names
                break
    return kit, used


# ----------------------------------------------------------------------------- Hydrogen

PERMISSIVE = "permissive"
COPYLEFT = "copyleft"
UNKNOWN = "unknown"


def classify_licence(text: str) -> str:
    t = text.lower().replace("-", " ")
    if re.search(r"\bgpl\b|general public|share ?alike|\bsa\b|by sa", t):
        return COPYLEFT
    if re.search(r"\bcc0\b|creative commons 0|public domain|\bmit\b|cc by\b|attribution(?! share)", t):
        return PERMISSIVE
    return UNKNOWN


def debian_licences(copyright_file: Path) -> dict[str, str]:
    """Kit folder name -> licence short name, from the package's machine-readable copyright file."""
    out: dict[str, str] = {}
    if not copyright_file.exists():
        return out
    for para in copyright_file.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        files = re.search(r"^Files:(.*?)(?=^\S)", para + "\nEnd:", re.S | re.M)
        licence = re.search(r"^License:\s*(.+)$", para, re.M)
        if not files or not licence:
            continue
        for name in re.findall(r"drumkits/(\S+?)\.h2drumkit", files.group(1)):
            out[name.replace("?", " ")] = licence.group(1).strip()
    return out


def hydrogen_kit(folder: Path) -> tuple[dict, Layers]:
    """Kit info and drum -> layers -> shots of one Hydrogen kit folder (drumkit.xml, old or new format)."""
    root = ET.parse(folder / "drumkit.xml").getroot()
    ns = re.match(r"\{.*\}", root.tag)
    prefix = ns.group(0) if ns else ""

    def text(node, tag: str) -> str:
        found = node.find(prefix + tag)
        return (found.text or "").strip() if found is not None else ""

    info = {"name": text(root, "name") or folder.name, "author": text(root, "author"), "licence": text(root, "license")}
    kit: Layers = {}
    for instrument in root.iter(prefix + "instrument"):
        drum = drum_from_name(text(instrument, "name"))
        if drum is None or drum in kit:  # the first instrument of a kind is the kit's own piece
            continue
        layers = [(float(text(layer, "min") or 0.0), text(layer, "filename"))
                  for layer in instrument.iter(prefix + "layer")]
        if not layers and text(instrument, "filename"):
            layers = [(0.0, text(instrument, "filename"))]
        shots = []
        for _, name in sorted(layers):
            try:
                stem = read_stem(folder / name)
            except BeatfixError:
                continue  # a missing or broken file leaves its layer out
            shots.append([(stem.mono().astype(np.float64), stem.sample_rate)])
        if shots:
            kit[drum] = shots
    return info, kit


# ----------------------------------------------------------------------------- writing


def write_kit(out: Path, kit: Layers, info: dict, *, max_layers: int | None = None,
              max_shot_s: float | None = None, subtype: str = "PCM_24") -> list[str]:
    """Write ``<drum>_v<layer>_<alternate>.flac`` files and kit.json; returns the drums written."""
    prepare_output_dir(out, [], force=True)
    jobs, files = [], {}
    for drum in DRUMS:
        layers = kit.get(drum, [])
        if max_layers and len(layers) > max_layers:
            # Keep the softest, the hardest and evenly spaced ones between.
            layers = [layers[i] for i in np.unique(np.linspace(0, len(layers) - 1, max_layers).round().astype(int))]
        for v, shots in enumerate(layers, start=1):
            for a, (raw, sr) in enumerate(shots, start=1):
                shot = prepare_shot(raw, sr)
                if shot is None:
                    continue
                if max_shot_s and shot.size > max_shot_s * sr:
                    shot = shot[: int(max_shot_s * sr)].copy()
                    fade = shot.size // 3  # a long fade so a cut cymbal still sounds like it decays
                    shot[-fade:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
                name = f"{drum}_v{v}_{a}.flac"
                # Leave 1 dB below full scale: FLAC integers cannot hold exactly 1.0.
                jobs.append((out / name, (shot * 0.89)[None, :].astype(np.float32), sr, "FLAC", subtype))
                files.setdefault(drum, []).append(name)
    write_files(jobs)
    write_text_atomic(out / "kit.json", json.dumps({**info, "files": files}, indent=1) + "\n")
    return sorted(files)


def extract_fluid(font: SoundFont, out: Path, info: dict) -> None:
    _, held_out = fluid_kit(font, HELD_OUT_PRESET)
    seen: set[frozenset[str]] = set()
    for preset, preset_name in sorted(font.presets(128).items()):
        if preset == HELD_OUT_PRESET or preset in FLUID_SKIP:
            continue
        kit, used = fluid_kit(font, preset, exclude=held_out)
        name = "fluid_" + re.sub(r"[^a-z0-9]+", "_", preset_name.lower()).strip("_")
        if "kick" not in kit or "snare" not in kit or frozenset(used) in seen:
            print(f"{name}: skipped (no kick or snare of its own, or a duplicate)")
            continue
        seen.add(frozenset(used))
        drums = write_kit(out / name, kit, {**info, "name": name, "preset": preset_name})
        print(f"{name} [MIT]: {', '.join(drums)}")


def extract_hydrogen(folder: Path, out: Path, *, include_copyleft: bool) -> None:
    debian = debian_licences(HYDROGEN_COPYRIGHT)
    for kit_dir in sorted(p for p in folder.glob("*") if (p / "drumkit.xml").exists()):
        info, kit = hydrogen_kit(kit_dir)
        licence = debian.get(kit_dir.name) or info["licence"]
        kind = classify_licence(f"{licence} {info['licence']}")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", kit_dir.name).strip("_")
        status = f"{name} [{licence or 'no licence'}: {kind}]"
        if "kick" not in kit or "snare" not in kit:
            print(f"{status}: skipped, no kick or snare")
        elif kind != PERMISSIVE and not (kind == COPYLEFT and include_copyleft):
            print(f"{status}: skipped (licence)")
        else:
            info = {**info, "source": f"hydrogen-drumkits: {kit_dir}", "licence_debian": licence, "class": kind}
            print(f"{status}: {', '.join(write_kit(out / name, kit, info))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "kits")
    parser.add_argument("--sf2", type=Path, default=SF2_PATH)
    parser.add_argument("--hydrogen", type=Path, default=HYDROGEN_DIR)
    parser.add_argument("--include-copyleft", action="store_true",
                        help="also extract GPL and CC-BY-SA kits (local training only: never commit them)")
    parser.add_argument("--held-out", type=Path, default=None,
                        help="write only the small committed benchmark kit (from the SoundFont) to this folder")
    args = parser.parse_args(argv)
    info = {"source": f"fluid-soundfont-gm: {args.sf2.name}, bank 128", "author": "Frank Wen and contributors",
            "licence": "MIT", "class": PERMISSIVE}
    font = SoundFont(args.sf2) if args.sf2.exists() else None
    if args.held_out:
        if font is None:
            parser.error(f"{args.sf2}: not found (apt-get install fluid-soundfont-gm)")
        kit, _ = fluid_kit(font, HELD_OUT_PRESET)
        info = {**info, "name": "fluidgm", "preset": font.presets(128)[HELD_OUT_PRESET], "held_out": True}
        drums = write_kit(args.held_out, kit, info, max_layers=3, max_shot_s=2.5, subtype="PCM_24")
        print(f"{args.held_out}: {', '.join(drums)}")
        return 0
    if font is not None:
        extract_fluid(font, args.out, info)
    extract_hydrogen(args.hydrogen, args.out, include_copyleft=args.include_copyleft)
    return 0


if __name__ == "__main__":
    sys.exit(main())
