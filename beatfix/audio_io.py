"""The only module that reads or writes audio files.

Validation happens here, once, at the boundary: everything past
:func:`load_session` may assume finite float32 arrays of one sample rate and
one length.
"""

from __future__ import annotations

import os
import signal
import struct
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import soundfile as sf

from .errors import InputError, OutputError
from .riff import aiff_metadata, flac_metadata, splice_chunks, wav_metadata
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


def _metadata(path: Path, fmt: str) -> tuple[tuple[tuple[bytes, bytes], ...], tuple[str, ...]]:
    """Chunks to carry to the output and names of those that cannot be (see :mod:`beatfix.riff`)."""
    try:
        with path.open("rb") as fh:
            if fmt == "WAV":
                carried, dropped = wav_metadata(fh)
                return tuple(carried), tuple(dropped)
            if fmt in ("RF64", "W64"):
                return (), (f"{fmt} metadata (not supported)",)
            if fmt == "AIFF":
                return (), tuple(aiff_metadata(fh))
            if fmt == "FLAC":
                return (), tuple(flac_metadata(fh))
    except OSError:
        pass
    return (), ()


READ_BLOCK_FRAMES = 1 << 18  # frames decoded at a time; the stem is transposed into place block by block


def _decode(path: Path) -> tuple[np.ndarray, int, str, str, int | None]:
    """``(audio (n_channels, n_samples) float32, sample rate, format, subtype, first non-finite frame or None)``.

    Decoded block by block straight into the ``(n_channels, n_samples)`` array:
    no second, interleaved copy of the stem.
    """
    with sf.SoundFile(str(path)) as f:
        n_channels, expected = f.channels, max(0, f.frames)
        audio = np.empty((n_channels, expected), dtype=np.float32)
        filled, bad = 0, None
        while True:
            block = f.read(READ_BLOCK_FRAMES, dtype="float32", always_2d=True)
            if len(block) == 0:
                break
            if filled + len(block) > audio.shape[1]:  # a header that understated the length
                audio = np.concatenate([audio[:, :filled], np.empty((n_channels, filled + len(block) - audio.shape[1]),
                                                                    dtype=np.float32)], axis=1)
            audio[:, filled:filled + len(block)] = block.T
            if bad is None and not np.isfinite(block).all():
                bad = filled + int(np.argmax(~np.isfinite(block).all(axis=1)))
            filled += len(block)
        if filled < audio.shape[1]:
            audio = audio[:, :filled].copy()
        return audio, int(f.samplerate), f.format, f.subtype, bad


def read_stem(path: Path, *, role: str | None = None) -> Stem:
    """Read one file as a Stem, shape ``(n_channels, n_samples)`` float32."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an audio file")
    try:
        audio, sample_rate, fmt, subtype, bad = _decode(path)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        reason = str(exc).split(":")[-1].strip() or "unknown format"
        raise InputError(f"{path}: not a readable audio file ({reason})") from None
    truncated = _wav_truncation(path)
    if truncated:
        raise InputError(f"{path}: {truncated}")
    if audio.shape[1] == 0:
        raise InputError(f"{path}: empty file (no samples)")
    if bad is not None:
        raise InputError(f"{path}: non-finite sample (NaN or inf) at {bad / sample_rate:.3f} s")
    name = path.stem
    metadata, dropped = _metadata(path, fmt)
    return Stem(
        name=name,
        audio=audio,
        sample_rate=int(sample_rate),
        role=role or role_from_name(name),
        path=path,
        format=fmt,
        subtype=subtype,
        source_n_samples=audio.shape[1],
        metadata=metadata,
        metadata_dropped=dropped,
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
    files = [Path(p) for p in paths]
    stems = [read_stem(p, role=_override_for(p, roles)) for p in files]
    known = {k for p in files for k in (str(p), p.name, p.stem)}
    unknown = [k for k in roles if k not in known]
    if unknown:
        raise InputError(f"--role names a file that is not an input: {unknown[0]}")
    names = [s.name for s in stems]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"two stems share the name {dupes[0]!r}: stem names must be unique")
    rates = {s.sample_rate for s in stems}
    if len(rates) > 1:
        listing = ", ".join(f"{s.name} {s.sample_rate} Hz" if s.path is None else f"{s.path.name} {s.sample_rate} Hz"
                            for s in stems)
        raise InputError(f"stems have different sample rates ({listing}): resample them first")
    warnings: list[str] = []
    longest = max(s.n_samples for s in stems)
    padded = []
    for s in stems:
        if s.n_samples < longest:
            short_ms = (longest - s.n_samples) / s.sample_rate * 1000
            shown = s.name if s.path is None else s.path.name
            warnings.append(f"{shown} is {short_ms:.1f} ms shorter than the longest stem: padded with silence")
            audio = np.zeros((s.n_channels, longest), dtype=np.float32)
            audio[:, : s.n_samples] = s.audio
            s = replace(s, audio=audio)
        padded.append(s)
    dropped = [f"{s.path.name if s.path else s.name} ({', '.join(s.metadata_dropped)})"
               for s in stems if s.metadata_dropped]
    if dropped:
        warnings.append(f"metadata the outputs cannot carry is left out: {'; '.join(dropped)}")
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
    try:
        # mkstemp makes 0600 files; outputs get the usual permissions.
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        os.unlink(name)
        raise
    finally:
        os.close(fd)
    return Path(name)


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C for the few microseconds of the final renames, so they happen all or not at all.

    Python runs signal handlers in the main thread whichever thread the OS
    delivered to, so swapping the handler defers it process-wide.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may swap handlers; Ctrl-C is raised there anyway
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:  # the Ctrl-C that came meanwhile, handled as it would have been
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous != signal.SIG_IGN:
                os.kill(os.getpid(), signal.SIGINT)


WRITE_BLOCK_FRAMES = 1 << 16  # frames converted (transposed, clipped) and handed to libsndfile at a time


def _write_one(path: Path, audio: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> None:
    # In blocks: the same bytes as one call, without a transposed or clipped copy of the whole stem.
    clip = not subtype.startswith(("FLOAT", "DOUBLE"))
    n_channels, n_samples = audio.shape
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=n_channels, format=fmt,
                      subtype=subtype) as out:
        for start in range(0, n_samples, WRITE_BLOCK_FRAMES):
            frames = np.ascontiguousarray(audio[:, start:start + WRITE_BLOCK_FRAMES].T)
            if clip:
                # libsndfile wraps rather than clips out-of-range floats for integer formats.
                frames = np.clip(frames, -1.0, 1.0)
            out.write(frames)


def _splice(tmp: Path, chunks: Sequence[tuple[bytes, bytes]], temps: list[tuple[Path, Path]]) -> None:
    """Put ``chunks`` (the source's bext, iXML, markers) into the WAV just written at ``tmp``."""
    spliced = _temp_path(tmp.parent / tmp.name.lstrip("."))
    temps.append((spliced, spliced))  # cleaned up with the others if anything fails
    try:
        with tmp.open("rb") as src, spliced.open("wb") as dst:
            splice_chunks(src, dst, chunks)
    except ValueError as exc:
        raise OutputError(f"{tmp}: cannot add the source's metadata ({exc})") from None
    os.replace(spliced, tmp)


def write_files(jobs: Iterable[tuple], *, extra: Mapping[Path, bytes] | None = None) -> list[Path]:
    """Write ``(path, audio (n_channels, n_samples), sample_rate, format, subtype[, chunks])`` jobs all-or-nothing.

    Every file goes to a temporary name in its destination folder first, and
    is renamed only once all were written: a full disk, an error or Ctrl-C
    leaves the previous state, never a half-written file. ``jobs`` may be a
    generator that renders each stem as it is asked for: each is written and
    let go before the next is made. ``extra`` maps further files (reports) to
    their bytes; they are part of the same all-or-nothing write.
    ``chunks``, ``(id, payload)`` pairs, go into a WAV output beside its
    audio (:func:`beatfix.riff.splice_chunks`).
    Returns the paths written, jobs first.
    """
    temps: list[tuple[Path, Path]] = []
    current: Path | None = None
    try:
        for final, audio, sample_rate, fmt, subtype, *rest in jobs:
            current = Path(final)
            tmp = _temp_path(current)
            temps.append((tmp, current))
            _write_one(tmp, audio, sample_rate, fmt, subtype)
            del audio  # before the generator makes the next one
            if rest and rest[0] and fmt == "WAV":
                _splice(tmp, rest[0], temps)
        for final, data in (extra or {}).items():
            current = Path(final)
            tmp = _temp_path(current)
            temps.append((tmp, current))
            tmp.write_bytes(data)
        renames = [(tmp, final) for tmp, final in temps if tmp != final]
        with _sigint_deferred():
            for tmp, final in renames:
                os.replace(tmp, final)
        return [final for _, final in renames]
    except OSError as exc:
        raise OutputError(f"{current or 'output'}: write failed ({exc.strerror or exc})") from None
    except sf.LibsndfileError as exc:
        raise OutputError(f"{current or 'output'}: write failed ({exc})") from None
    finally:
        for tmp, _ in temps:
            if tmp.exists():
                tmp.unlink()


def write_stems(stems: Iterable[Stem], out_dir: Path, *, extra: Mapping[str, bytes] | None = None) -> list[Path]:
    """Write stems under their original file names, format, subtype, rate and length, all-or-nothing.

    ``stems`` may be a generator (:func:`beatfix.align.render_stems`): each stem
    is rendered, written and released before the next. ``extra`` maps further
    file names in ``out_dir`` (reports) to their bytes, written in the same
    all-or-nothing step.
    """

    def jobs():
        for s in stems:
            file_name = s.path.name if s.path is not None else f"{s.name}.wav"
            length = s.source_n_samples or s.n_samples
            yield Path(out_dir) / file_name, s.audio[:, :length], s.sample_rate, s.format, s.subtype, s.metadata
            del s  # written: let it go before the next one is rendered

    return write_files(jobs(), extra={Path(out_dir) / name: data for name, data in (extra or {}).items()})


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


def file_facts(path: Path) -> dict:
    """``{file, size_bytes, sha256}`` of an input, for provenance (edits.json)."""
    import hashlib

    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return {"file": path.name, "size_bytes": path.stat().st_size, "sha256": digest.hexdigest()}
