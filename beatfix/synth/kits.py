"""Drum kits: velocity layers of mono one-shots at the session sample rate.

A :class:`Kit` maps each drum of :data:`DRUMS` to layers (soft to hard), each a
tuple of alternate one-shots, shape ``(n_samples,)`` float32. Every shot is
trimmed so that sample 0 *is* the attack: the first sample whose magnitude
exceeds :data:`ATTACK_THRESHOLD_DB` below the shot's peak. A hit placed at
sample ``n`` therefore has its true onset at ``n``, which is what makes the
generator's ground truth exact. Shots are peak-normalised; loudness comes from
the velocity at render time, timbre from the layer.

Kit folders (:func:`load_kit`) hold one file per shot, named by drum
(``kick*.wav``, ``snare_*.flac``, ``hh*``, ``tom1*``, ``ft*``, ``ride*``,
``crash*``, ``hat_open*`` ...). A ``_v<N>`` token gives the velocity layer
(1 = softest); without one, a drum's files are sorted by RMS into layers.
``scripts/extract_kits.py`` writes kits in this layout as
``<drum>_v<layer>_<alternate>.flac``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import soxr

from ..audio_io import AUDIO_SUFFIXES, read_stem
from ..errors import InputError, ParameterError
from . import voices

DRUMS = ("kick", "snare", "hat", "hat_open", "tom_high", "tom_mid", "tom_low", "ride", "crash")
TOMS = ("tom_high", "tom_mid", "tom_low")
ATTACK_THRESHOLD_DB = -50.0
TAIL_THRESHOLD_DB = -70.0
MAX_SHOT_S = 4.0  # longer cymbal tails cost render time and are inaudible in a mix
_FADE_S = 0.005


@dataclass(frozen=True, eq=False)
class Kit:
    """Drum -> layers (soft to hard) -> alternate one-shots, shape ``(n_samples,)`` float32."""

    name: str
    sample_rate: int
    shots: Mapping[str, tuple[tuple[np.ndarray, ...], ...]]

    def __post_init__(self) -> None:
        for drum, layers in self.shots.items():
            if drum not in DRUMS:
                raise ParameterError(f"kit {self.name!r}: unknown drum {drum!r}; use one of {', '.join(DRUMS)}")
            if not layers or any(not layer for layer in layers):
                raise ParameterError(f"kit {self.name!r}: {drum} has an empty velocity layer")
            if any(shot.ndim != 1 or shot.size == 0 for layer in layers for shot in layer):
                raise ParameterError(f"kit {self.name!r}: {drum} shots must be non-empty mono arrays")

    @property
    def drums(self) -> tuple[str, ...]:
        return tuple(d for d in DRUMS if d in self.shots)

    def n_layers(self, drum: str) -> int:
        return len(self.shots[drum])

    def layer_for(self, drum: str, velocity: float) -> int:
        """Velocity layer of a stroke: equal velocity bands, softest first."""
        n = self.n_layers(drum)
        return min(int(velocity * n), n - 1)

    def shot(self, drum: str, layer: int, alternate: int) -> np.ndarray:
        return self.shots[drum][layer][alternate]


def prepare_shot(x: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """Trim a mono one-shot so sample 0 is its attack, and peak-normalise it.

    Returns ``None`` for a silent shot. The tail is cut where it stays below
    :data:`TAIL_THRESHOLD_DB` and faded over 5 ms so it ends without a click.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        return None
    peak = float(np.max(np.abs(x)))
    if peak <= 0.0:
        return None
    x = x / peak
    loud = np.flatnonzero(np.abs(x) > 10 ** (ATTACK_THRESHOLD_DB / 20))
    audible = np.flatnonzero(np.abs(x) > 10 ** (TAIL_THRESHOLD_DB / 20))
    end = min(audible[-1] + 1, loud[0] + int(MAX_SHOT_S * sample_rate))
    x = x[loud[0]:end].copy()
    fade = min(int(_FADE_S * sample_rate), x.size // 4)
    if fade > 0:
        x[-fade:] *= np.linspace(1.0, 0.0, fade)
    out = (x / np.max(np.abs(x))).astype(np.float32)
    out.flags.writeable = False  # kits are shared between sessions (and cached)
    return out


# ----------------------------------------------------------------------------- procedural


def procedural_kit(sample_rate: int, seed: int = 0, *, n_layers: int = 3, n_alternates: int = 3) -> Kit:
    """A synthesized kit: ``n_layers`` velocity layers of ``n_alternates`` shots per drum.

    Deterministic for ``(sample_rate, seed)`` and cached, since sessions of one
    dataset share their kit.
    """
    if sample_rate < 8000:
        raise ParameterError(f"sample rate {sample_rate} Hz is too low for a drum kit")
    return _procedural_kit(int(sample_rate), int(seed), int(n_layers), int(n_alternates))


@functools.lru_cache(maxsize=4)
def _procedural_kit(sample_rate: int, seed: int, n_layers: int, n_alternates: int) -> Kit:
    hardness = np.linspace(0.15, 1.0, n_layers) if n_layers > 1 else np.array([0.7])
    shots = {}
    for drum_index, drum in enumerate(DRUMS):
        layers = []
        for layer, hard in enumerate(hardness):
            alternates = []
            for alt in range(n_alternates):
                rng = np.random.default_rng([seed, drum_index, layer, alt])
                # A few % of hardness jitter makes alternates differ like real repeated strokes.
                h = float(np.clip(hard + rng.uniform(-0.05, 0.05), 0.0, 1.0))
                alternates.append(prepare_shot(voices.synthesize(drum, rng, sample_rate, h), sample_rate))
            layers.append(tuple(alternates))
        shots[drum] = tuple(layers)
    return Kit(name=f"procedural-{seed}", sample_rate=sample_rate, shots=shots)


def complete_kit(kit: Kit, fallback: Kit) -> Kit:
    """``kit`` with the drums it lacks taken from ``fallback`` (same sample rate).

    Many sample kits have only a kick and a snare; a groove still wants hats,
    toms and cymbals. The name records the mix, e.g. ``fluid_power+procedural-0``.
    """
    if fallback.sample_rate != kit.sample_rate:
        raise ParameterError(f"kits {kit.name!r} and {fallback.name!r} have different sample rates")
    missing = {d: fallback.shots[d] for d in fallback.drums if d not in kit.shots}
    if not missing:
        return kit
    return Kit(name=f"{kit.name}+{fallback.name}", sample_rate=kit.sample_rate, shots={**kit.shots, **missing})


# ----------------------------------------------------------------------------- sample folders

# Checked in order; names are lower-cased with separators turned into spaces.
_DRUM_PATTERNS: tuple[tuple[str, str], ...] = (
    ("hat_open", r"open.*\b(hat|hh|hihat)|\b(hat|hh|hihat)\w*\b.*\b(open|op)\b|\bohh\b|\bhho\b|\bhh ?o\b"),
    ("hat", r"\bhat|hihat|\bhh\b|\bhh\d|\bchh\b|closed ?hh"),
    ("ride", r"\bride|\brd\b"),
    ("crash", r"crash|splash|china|cymbal|\bcym\b"),
    ("tom_low", r"floor|\bft\d*\b|\btom ?(low|lo|3|4|5|floor)\b|\b(low|lo) ?tom|\bfloor ?tom"),
    ("tom_mid", r"\btom ?(mid|middle|2)\b|\b(mid|middle) ?tom"),
    ("tom_high", r"\btom|\brack|\brt\d*\b|hitom|\bhigh ?tom|\bhi ?tom"),
    ("kick", r"kick|\bbd\d*\b|\bkik\b|\bkck\b|bass ?drum|bassdrum"),
    ("snare", r"snare|\bsd\d*\b|\bsnr\b|\bsn\b"),
)
# Articulations that are not plain strokes of a kit piece.
_EXCLUDE = re.compile(r"\b(rim\w*|stick|sidestick|x ?stick|bell|cup|clap|cowbell|choke|swish|flink|roll|"
                      r"brush\w*|mute|pedal|foot|shaker|tamb\w*|semi\w*|agogo|conga|bongo|clave|whistle)\b")
_LAYER = re.compile(r"(?:^|[ _.-])v(?:el)?(\d+)(?=$|[ _.-])")


def _normalise_name(name: str) -> str:
    return " ".join(t for t in re.split(r"[^a-z0-9]+", name.lower()) if t)


def drum_from_name(name: str) -> str | None:
    """Drum of a one-shot file or instrument name, or ``None`` for anything else.

    Rim shots, side sticks, bells, chokes, pedal hats and hand percussion are
    ``None``: they are not the plain strokes the generator plays.
    """
    text = _normalise_name(name)
    if not text or _EXCLUDE.search(text):
        return None
    for drum, pattern in _DRUM_PATTERNS:
        if re.search(pattern, text):
            return drum
    return None


def _layer_number(name: str) -> int | None:
    match = _LAYER.search(name.lower())
    return int(match.group(1)) if match else None


def load_kit(folder: Path | str, sample_rate: int, *, max_layers: int = 4) -> Kit:
    """Read a folder of one-shots as a kit, resampled to ``sample_rate`` with soxr.

    Multichannel files are averaged to mono. Raises :class:`InputError` when the
    folder is missing or has no kick or no snare.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--kit {folder}: no such folder")
    found: dict[str, list[tuple[int | None, float, np.ndarray]]] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES):
        drum = drum_from_name(path.stem)
        if drum is None:
            continue
        stem = read_stem(path)
        mono = stem.mono().astype(np.float64)
        if stem.sample_rate != sample_rate:
            mono = soxr.resample(mono, stem.sample_rate, sample_rate, quality="HQ")
        rms = float(np.sqrt(np.mean(mono**2)))
        shot = prepare_shot(mono, sample_rate)
        if shot is not None:
            found.setdefault(drum, []).append((_layer_number(path.stem), rms, shot))
    missing = [d for d in ("kick", "snare") if d not in found]
    if missing:
        have = ", ".join(d for d in DRUMS if d in found) or "none"
        raise InputError(
            f"--kit {folder}: no {' or '.join(missing)} one-shot found (drums found: {have}); "
            "name files by drum, e.g. kick_v1.wav, snare_v2.flac, hh.wav, tom1.wav"
        )
    shots = {drum: _layers(entries, max_layers) for drum, entries in found.items()}
    return Kit(name=folder.name, sample_rate=int(sample_rate), shots=shots)


def _layers(entries: list[tuple[int | None, float, np.ndarray]], max_layers: int) -> tuple[tuple[np.ndarray, ...], ...]:
    if all(number is not None for number, _, _ in entries):
        numbers = sorted({number for number, _, _ in entries})
        return tuple(tuple(s for n, _, s in entries if n == number) for number in numbers)
    # No layer names: louder recordings are harder strokes.
    by_rms = [shot for _, _, shot in sorted(entries, key=lambda e: e[1])]
    groups = np.array_split(np.arange(len(by_rms)), min(max_layers, len(by_rms)))
    return tuple(tuple(by_rms[i] for i in group) for group in groups)
