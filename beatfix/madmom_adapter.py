"""The one place that talks to madmom. Imported lazily so `import beatfix` stays fast.

madmom's networks were trained at 44.1 kHz, so every signal is resampled to
44100 Hz (soxr) before it goes in. Activations come back as frame rates in
frames per second, so times in seconds need no mapping back; sample positions
are only ever computed by the caller, at the stem's own rate.

madmom's processors are given ``Signal`` objects with an explicit sample rate:
handed a bare array without one, some of them try to decode it with ffmpeg.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from .errors import ModelError

MADMOM_SAMPLE_RATE = 44100
ONSET_FPS = 100.0  # frame rate of madmom's onset and beat activations


def _resampled(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    import soxr

    x = np.asarray(mono, dtype=np.float32)
    if sample_rate != MADMOM_SAMPLE_RATE:
        x = soxr.resample(x, sample_rate, MADMOM_SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return x


def _to_madmom_signal(mono: np.ndarray, sample_rate: int):
    from madmom.audio.signal import Signal

    return Signal(_resampled(mono, sample_rate), sample_rate=MADMOM_SAMPLE_RATE, num_channels=1)


# madmom's CNNOnsetProcessor, step by step: frames of these sizes (in this order,
# stacked as the network's 3 input channels), Hann window, magnitude spectrum,
# an 80-band mel filterbank, log(x + eps), the first and last frame repeated
# ONSET_CNN_PAD times, then the network.
ONSET_FRAME_SIZES = (2048, 1024, 4096)
ONSET_CNN_PAD = 7
_HOP = MADMOM_SAMPLE_RATE // int(ONSET_FPS)  # 441 samples per frame
_STFT_BLOCK_FRAMES = 256  # frames transformed at once: ~20 MB of temporaries at 4096 samples, whatever the length
_NN_BLOCK_FRAMES = 1024  # frames through the network at once (it sees +-7 frames, so blocks join exactly)
_RESAMPLE_CHUNK = 1 << 16  # input samples resampled at a time


def _onset_filterbanks() -> list[np.ndarray]:
    from madmom.audio.filters import MelFilterbank
    from madmom.audio.stft import fft_frequencies

    return [np.ascontiguousarray(MelFilterbank(fft_frequencies(size // 2, MADMOM_SAMPLE_RATE), num_bands=80,
                                               fmin=27.5, fmax=16000, norm_filters=True, unique_filters=False))
            for size in ONSET_FRAME_SIZES]


def _resampled_chunks(mono: np.ndarray, sample_rate: int) -> Iterator[np.ndarray]:
    """``mono`` at 44.1 kHz as float32, chunk by chunk: the very samples of one ``soxr.resample`` call."""
    import soxr

    n = len(mono)
    stream = None
    if sample_rate != MADMOM_SAMPLE_RATE:
        stream = soxr.ResampleStream(sample_rate, MADMOM_SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    for i in range(0, n, _RESAMPLE_CHUNK):
        chunk = np.ascontiguousarray(mono[i:i + _RESAMPLE_CHUNK], dtype=np.float32)
        yield chunk if stream is None else stream.resample_chunk(chunk, last=i + _RESAMPLE_CHUNK >= n)


def _spectrogram_rows(buf: np.ndarray, buf_start: int, f0: int, f1: int,
                      filterbanks: Sequence[np.ndarray]) -> np.ndarray:
    """Frames ``[f0, f1)`` of the log mel spectrograms, ``(f1 - f0, 80, 3)``, from 44.1 kHz samples
    ``buf`` (sample ``buf_start`` on): zeros before sample 0 and after the buffer, which must hold
    every other sample the frames need.

    The same numbers as madmom's pre-processing (frame ``i`` centred on sample
    ``441 i``, the window product and FFT in float64, the spectrum rounded to
    complex64), but a block of frames goes through one real FFT instead of one
    complex FFT per frame.
    """
    from scipy import fft as sfft

    out = np.empty((f1 - f0, filterbanks[0].shape[1], len(ONSET_FRAME_SIZES)), dtype=np.float32)
    end = buf_start + len(buf)
    eps = np.spacing(1)
    for k, (size, bank) in enumerate(zip(ONSET_FRAME_SIZES, filterbanks)):
        half = size // 2
        window = np.hanning(size)
        for b0 in range(f0, f1, _STFT_BLOCK_FRAMES):
            b1 = min(f1, b0 + _STFT_BLOCK_FRAMES)
            lo = b0 * _HOP - half
            hi = (b1 - 1) * _HOP - half + size
            seg = np.zeros(hi - lo, dtype=np.float32)
            a, b = max(lo, 0), min(hi, end)
            if b > a:
                assert a >= buf_start, "spectrogram frames asked for samples already let go"
                seg[a - lo:b - lo] = buf[a - buf_start:b - buf_start]
            frames = np.lib.stride_tricks.sliding_window_view(seg, size)[::_HOP]
            spectrum = sfft.rfft(frames * window, axis=1)[:, :half].astype(np.complex64)
            bands = np.abs(spectrum) @ bank
            bands += eps
            np.log(bands, out=bands)
            out[b0 - f0:b1 - f0, :, k] = bands
    return out


def _onset_spectrogram_blocks(mono: np.ndarray, sample_rate: int,
                              filterbanks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    """The ``(n_frames, 80, 3)`` input of madmom's onset network, block after block of frames, in order.

    Resampling, framing and the FFTs run as the samples stream in; only the
    samples the next frames need are held, never the whole song.
    """
    reach = max(ONSET_FRAME_SIZES) // 2  # a frame needs this many samples either side of its centre
    buf, buf_start, next_frame = np.zeros(0, dtype=np.float32), 0, 0
    chunks = _resampled_chunks(mono, sample_rate)
    while True:
        chunk = next(chunks, None)
        if chunk is not None:
            buf = np.concatenate([buf, chunk])
        end = buf_start + len(buf)
        if chunk is None:  # the end: the remaining frames, zeros after the last sample
            ready = -(-end // _HOP)
        else:  # whole blocks of frames whose windows are all in (blocks fall where a one-shot call puts them)
            ready = ((end - reach) // _HOP + 1) // _STFT_BLOCK_FRAMES * _STFT_BLOCK_FRAMES if end >= reach else 0
        while next_frame < ready:
            stop = min(ready, next_frame + _STFT_BLOCK_FRAMES)
            yield _spectrogram_rows(buf, buf_start, next_frame, stop, filterbanks)
            next_frame = stop
        if chunk is None:
            return
        keep_from = max(buf_start, next_frame * _HOP - reach)
        buf, buf_start = buf[keep_from - buf_start:].copy(), keep_from


def _onset_activation(mono: np.ndarray, sample_rate: int, network, filterbanks) -> np.ndarray:
    """One signal through the spectrogram blocks and the network, holding a few blocks at a time."""
    pad = ONSET_CNN_PAD
    pending: np.ndarray | None = None
    pending_start, next_frame = 0, 0
    activation: list[np.ndarray] = []

    def run(f0: int, f1: int, last_frame: int) -> None:
        # the block with ONSET_CNN_PAD frames of context each side, the first and last frame
        # repeated beyond the ends, as madmom pads the whole spectrogram
        assert pending is not None  # run() is called once frames are pending
        rows = np.clip(np.arange(f0 - pad, f1 + pad), 0, last_frame) - pending_start
        activation.append(np.asarray(network(pending[rows]), dtype=np.float32).reshape(-1))

    for rows in _onset_spectrogram_blocks(mono, sample_rate, filterbanks):
        pending = rows if pending is None else np.concatenate([pending, rows])
        available = pending_start + len(pending)
        while next_frame + _NN_BLOCK_FRAMES + pad <= available:
            run(next_frame, next_frame + _NN_BLOCK_FRAMES, available - 1)
            next_frame += _NN_BLOCK_FRAMES
        drop = max(0, next_frame - pad - pending_start)
        pending, pending_start = pending[drop:], pending_start + drop
    n_frames = pending_start + (0 if pending is None else len(pending))
    while next_frame < n_frames:
        stop = min(n_frames, next_frame + _NN_BLOCK_FRAMES)
        run(next_frame, stop, n_frames - 1)
        next_frame = stop
    return np.concatenate(activation)


def _onset_network():
    try:
        from madmom.ml.nn import NeuralNetwork
        from madmom.models import ONSETS_CNN
    except ImportError as exc:  # pragma: no cover - madmom is a hard dependency
        raise ModelError(f"madmom is not installed or broken ({exc})") from None
    # one thread: stems run in parallel instead, and an idle pool thread spinning for work
    # steals a core from the one doing it on a small machine
    return NeuralNetwork.load(ONSETS_CNN[0], intra_op_num_threads=1)


def onset_activations(channels: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """CNN onset activation (0..1, ``ONSET_FPS`` frames per second) of each mono signal ``(n_samples,)``.

    Frame ``i`` is centred on ``i / ONSET_FPS`` seconds. Equal to madmom's
    ``CNNOnsetProcessor`` to float rounding (~1e-6), in about a third of its
    time, and streamed: memory is a few MB whatever the length, where madmom
    holds the resampled song and complex spectrograms of it (~1 GB for 4 minutes).
    """
    network = _onset_network()  # cheap to build; not cached, to keep no global state
    filterbanks = _onset_filterbanks()
    out = []
    for mono in channels:
        if len(mono) < MADMOM_SAMPLE_RATE // 10:  # shorter than the network's context
            out.append(np.zeros(max(1, int(len(mono) / sample_rate * ONSET_FPS)), dtype=np.float32))
            continue
        out.append(_onset_activation(mono, sample_rate, network, filterbanks))
    return out


def pick_onset_peaks(activation: np.ndarray, *, threshold: float, combine_s: float) -> np.ndarray:
    """Times (s) of local maxima of an onset activation above ``threshold``, one per ``combine_s``."""
    from madmom.features.onsets import OnsetPeakPickingProcessor

    picker = OnsetPeakPickingProcessor(
        threshold=threshold, pre_max=1.0 / ONSET_FPS, post_max=1.0 / ONSET_FPS,
        combine=combine_s, fps=ONSET_FPS,
    )
    return np.asarray(picker(np.asarray(activation, dtype=np.float32)), dtype=float)


def beat_activation(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """RNN beat activation (0..1, ``ONSET_FPS`` frames per second) of a mono mix."""
    from madmom.features.beats import RNNBeatProcessor

    return np.asarray(RNNBeatProcessor()(_to_madmom_signal(mono, sample_rate)), dtype=float)


def tempo_histogram(activation: np.ndarray, *, min_bpm: float, max_bpm: float) -> np.ndarray:
    """madmom's comb-filter tempo estimate of an activation: rows of (bpm, strength), strongest first."""
    from madmom.features.tempo import CombFilterTempoHistogramProcessor, TempoEstimationProcessor

    hist = CombFilterTempoHistogramProcessor(min_bpm=min_bpm, max_bpm=max_bpm, fps=ONSET_FPS)
    proc = TempoEstimationProcessor(method=None, histogram_processor=hist, fps=ONSET_FPS,
                                    min_bpm=min_bpm, max_bpm=max_bpm, interpolate=True)
    return np.asarray(proc(np.asarray(activation, dtype=float)), dtype=float)


def track_beats(activation: np.ndarray, *, min_bpm: float, max_bpm: float) -> np.ndarray:
    """madmom's DBN beat tracker on a beat activation: beat times in seconds, tempo within the range."""
    from madmom.features.beats import DBNBeatTrackingProcessor

    proc = DBNBeatTrackingProcessor(min_bpm=float(min_bpm), max_bpm=float(max_bpm), fps=ONSET_FPS)
    return np.asarray(proc(np.asarray(activation, dtype=np.float32)), dtype=float)
