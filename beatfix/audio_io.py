"""The only module that reads or writes audio files.

Validation happens here, once, at the boundary: everything past
:func:`load_session` may assume finite float32 arrays of one sample rate and
one length.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import soundfile as sf

from .errors import InputError, OutputError
from .roles import role_from_name
from .types import Session, Stem

AUDIO_SUFFIXES = (".wav", ".wave", ".aif", ".aiff", ".flac")


def _wav_truncation(path: Path) -> str | None:
    """Return a reason if a RIFF/WAVE file's data chunk claims more bytes than the file has.

    libsndfile quietly reads what is there, which would hide a broken copy.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            endian = "<" if head[:4] == b"RIFF" else ">"
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                chunk_id, chunk_len = struct.unpack(endian + "4sI", fh.read(8))
                if chunk_id == b"data":
                    if chunk_len in (0, 0xFFFFFFFF):  # streamed or RF64 placeholder
                        return None
                    missing = pos + 8 + chunk_len - size
                    return f"truncated: {missing} bytes of audio data missing" if missing > 0 else None
                pos += 8 + chunk_len + (chunk_len & 1)
            return "truncated: no audio data chunk"
    except OSError:
        return None


def read_stem(path: Path, *, role: str | None = None) -> Stem:
    """Read one file as a Stem, shape ``(n_channels, n_samples)`` float32."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an audio file")
    try:
        info = sf.info(str(path))
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        reason = str(exc).split(":")[-1].strip() or "unknown format"
        raise InputError(f"{path}: not a readable audio file ({reason})") from None
    truncated = _wav_truncation(path)
    if truncated:
        raise InputError(f"{path}: {truncated}")
    if data.shape[0] == 0:
        raise InputError(f"{path}: empty file (no samples)")
    if not np.isfinite(data).all():
        bad = int(np.argmax(~np.isfinite(data).all(axis=1)))
        raise InputError(f"{path}: non-finite sample (NaN or inf) at {bad / sample_rate:.3f} s")
    audio = np.ascontiguousarray(data.T)
    name = path.stem
    return Stem(
        name=name,
        audio=audio,
        sample_rate=int(sample_rate),
        role=role or role_from_name(name),
        path=path,
        format=info.format,
        subtype=info.subtype,
        source_n_samples=audio.shape[1],
    )


def _override_for(path: Path, overrides: Mapping[str, str]) -> str | None:
    for key in (str(path), path.name, path.stem):
        if key in overrides:
            return overrides[key]
    return None


def load_session(paths: Sequence[Path | str], *, roles: Mapping[str, str] | None = None) -> tuple[Session, list[str]]:
    """Read stems and validate them as one session.

    Returns the session and warnings for the user (e.g. stems padded to one length).
    Different sample rates are refused: beatfix never resamples behind your back.
    """
    roles = dict(roles or {})
    if not paths:
        raise InputError("no stems given")
    paths = [Path(p) for p in paths]
    stems = [read_stem(p, role=_override_for(p, roles)) for p in paths]
    known = {k for p in paths for k in (str(p), p.name, p.stem)}
    unknown = [k for k in roles if k not in known]
    if unknown:
        raise InputError(f"--role names a file that is not an input: {unknown[0]}")
    names = [s.name for s in stems]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"two stems share the name {dupes[0]!r}: stem names must be unique")
    rates = {s.sample_rate for s in stems}
    if len(rates) > 1:
        listing = ", ".join(f"{s.path.name} {s.sample_rate} Hz" for s in stems)
        raise InputError(f"stems have different sample rates ({listing}): resample them first")
    warnings: list[str] = []
    longest = max(s.n_samples for s in stems)
    padded = []
    for s in stems:
        if s.n_samples < longest:
            short_ms = (longest - s.n_samples) / s.sample_rate * 1000
            warnings.append(f"{s.path.name} is {short_ms:.1f} ms shorter than the longest stem: padded with silence")
            audio = np.zeros((s.n_channels, longest), dtype=np.float32)
            audio[:, : s.n_samples] = s.audio
            s = replace(s, audio=audio)
        padded.append(s)
    if not any(s.is_close for s in padded):
        warnings.append("no close mic recognised from the file names (kick, snare, hat, tom...): use --role FILE=ROLE")
    return Session(stems=tuple(padded), sample_rate=rates.pop()), warnings


def find_session_files(folder: Path) -> list[Path]:
    """Audio files directly inside a session folder, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


# ----------------------------------------------------------------------------- output


def prepare_output_dir(out_dir: Path, inputs: Iterable[Path], *, force: bool) -> Path:
    """Check that ``out_dir`` is safe to write into and create it.

    Refuses the inputs' own folder or an input file, and a non-empty folder unless ``force``.
    """
    out_dir = Path(out_dir)
    resolved_inputs = [Path(p).resolve() for p in inputs]
    target = out_dir.resolve()
    if target in resolved_inputs:
        raise OutputError(f"-o {out_dir}: is an input file")
    if target in {p.parent for p in resolved_inputs}:
        raise OutputError(f"-o {out_dir}: is the inputs' folder; choose another so the inputs stay untouched")
    if target.exists() and not target.is_dir():
        raise OutputError(f"-o {out_dir}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise OutputError(f"-o {out_dir}: folder is not empty (use --force to write into it)")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"-o {out_dir}: cannot create folder ({exc.strerror})") from None
    if not os.access(target, os.W_OK):
        raise OutputError(f"-o {out_dir}: folder is not writable")
    return out_dir


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_path(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    # mkstemp makes 0600 files; outputs get the usual permissions.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


def _write_one(path: Path, audio: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> None:
    frames = np.ascontiguousarray(audio.T)
    if not subtype.startswith(("FLOAT", "DOUBLE")):
        # libsndfile wraps rather than clips out-of-range floats for integer formats.
        frames = np.clip(frames, -1.0, 1.0)
    sf.write(str(path), frames, sample_rate, format=fmt, subtype=subtype)


def write_files(jobs: Sequence[tuple[Path, np.ndarray, int, str, str]]) -> list[Path]:
    """Write ``(path, audio (n_channels, n_samples), sample_rate, format, subtype)`` jobs all-or-nothing.

    Every file goes to a temporary name in its destination folder first, and
    is renamed only once all were written: a full disk, an error or Ctrl-C
    leaves the previous state, never a half-written file.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for final, audio, sample_rate, fmt, subtype in jobs:
            final = Path(final)
            tmp = _temp_path(final)
            temps.append((tmp, final))
            _write_one(tmp, audio, sample_rate, fmt, subtype)
        for tmp, final in temps:
            os.replace(tmp, final)
        return [final for _, final in temps]
    except OSError as exc:
        raise OutputError(f"{temps[-1][1] if temps else 'output'}: write failed ({exc.strerror or exc})") from None
    except sf.LibsndfileError as exc:
        raise OutputError(f"{temps[-1][1] if temps else 'output'}: write failed ({exc})") from None
    finally:
        for tmp, _ in temps:
            if tmp.exists():
                tmp.unlink()


def write_stems(stems: Sequence[Stem], out_dir: Path) -> list[Path]:
    """Write stems under their original file names, format, subtype, rate and length."""
    jobs = []
    for s in stems:
        file_name = s.path.name if s.path is not None else f"{s.name}.wav"
        length = s.source_n_samples or s.n_samples
        jobs.append((Path(out_dir) / file_name, s.audio[:, :length], s.sample_rate, s.format, s.subtype))
    return write_files(jobs)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a small file (JSON, CSV, PNG) via a temporary name and rename."""
    path = Path(path)
    try:
        tmp = _temp_path(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: write failed ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
