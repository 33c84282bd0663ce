"""Onset candidates on the close mics, refined to sample accuracy, with the features a judge needs.

madmom's CNN finds *where* something starts to within a 10 ms frame and is
very sensitive (soft ghost notes and bleed alike), so it is run with a
generous threshold and every peak is then refined on the stem's own samples:

1. the stem is high-passed into nested bands (from 200 Hz, 1 kHz and 4 kHz;
   causal filters, so nothing moves earlier): the stick's broadband click
   dominates, the slow low end of earlier strokes fades out of the way;
2. around the peak, every local maximum of the energy ratio just after / just
   before a point (STA/LTA, the largest over the bands) is a possible attack.
   The peak's attack is the one adding the most energy among the clear rises,
   moved back to the earliest point of its build-up (a drum's body keeps
   growing for ms after the stick lands); a clearly separate, softer attack
   7-45 ms before it (a grace note the network merged) becomes a candidate too;
3. an AIC change-point picker on the samples around that point finds the
   first sample of the rise.

Steps 1-3 live in :mod:`beatfix.refine`. Two network peaks refining to one
attack, or to an attack and its build-up, give one candidate. Nothing here decides what is bleed: that is the judge's
job (:mod:`beatfix.hits`).
"""


from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import InputError
from .refine import BUILD_UP_DB, BUILD_UP_MS, FLOOR_DB, _Attack, _db, _refine, _signals, _StemSignal
from .types import Onset, Session, Stem

ACTIVATION_THRESHOLD = 0.05  # generous: the judge, not the detector, throws out bleed
COMBINE_S = 0.008  # madmom merges activation peaks closer than this
MERGE_MS = 2.0  # refined candidates closer than this are one attack
ATTACK_MS = 10.0  # level_db and rise time are measured over this much of the attack
SPECTRUM_MS = 20.0
PRE_LEVEL_MS = (20.0, 1.0)  # pre-onset level: from 20 ms to 1 ms before the onset
NEW_ENERGY_MARGIN = 2.0  # band energy after must exceed this times the energy before to count as new
BAND_EDGES_HZ = (30.0, 90.0, 180.0, 360.0, 720.0, 1440.0, 2880.0, 5760.0, 11520.0, 20000.0)



@dataclass(frozen=True)
class Candidate(Onset):
    """A possible attack on one close mic, in that stem's own time: an Onset with the features a judge needs.

    Being an :class:`Onset`, a candidate can be handed to any judge as is (a judge
    returns onsets with ``confidence`` set, e.g. through ``dataclasses.replace``).
    ``time_s`` is the refined first sample of the attack; ``level_db`` the peak
    |x| over its first ATTACK_MS.
    """

    coarse_s: float = 0.0  # the madmom activation peak it was refined from
    activation: float = 0.0  # onset network activation at that peak, 0..1
    pre_level_db: float = FLOOR_DB  # RMS just before the onset (PRE_LEVEL_MS), dBFS
    rise_db: float = 0.0  # high-passed energy just after vs just before the onset
    rise_time_ms: float = 0.0  # onset to peak |x|
    centroid_hz: float = 0.0  # centroid of the new energy over SPECTRUM_MS, from the band centres
    band_db: tuple[float, ...] = ()  # new energy per BAND_EDGES_HZ band, dB mean square (NEW_ENERGY_MARGIN)
    grace: bool = False  # split off a louder attack right after it, not a network peak of its own

    @property
    def added_db(self) -> float:
        """Total new energy of the attack, dB mean square (what it adds to what was ringing)."""
        return float(_db(np.sum(np.power(10.0, np.asarray(self.band_db) / 10.0)))) if self.band_db else FLOOR_DB


def _band_powers(seg: np.ndarray, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Power spectrum scaled so that its sum is the segment's mean square (a sine at 1.0 sums to 0.5)."""
    window = np.hanning(len(seg))
    spec = np.abs(np.fft.rfft(seg * window, n_fft)) ** 2 * (2.0 / (n_fft * np.sum(window**2)))
    spec[0] /= 2.0
    return spec, np.fft.rfftfreq(n_fft, 1.0 / sr)


def _features(sig: _StemSignal, name: str, attack: _Attack) -> Candidate:
    sr, onset = sig.sr, attack.onset
    head = sig.samples(onset, onset + sig.ms(ATTACK_MS))
    peak_at = int(np.argmax(np.abs(head))) if len(head) else 0
    level_db = float(_db(np.max(head * head))) if len(head) else FLOOR_DB
    a, b = onset - sig.ms(PRE_LEVEL_MS[0]), onset - sig.ms(PRE_LEVEL_MS[1])
    pre = sig.samples(max(a, 0), max(b, 0))
    pre_level_db = float(_db(np.mean(pre * pre))) if len(pre) else FLOOR_DB
    # New energy per band: the attack's spectrum minus whatever was already ringing.
    m = sig.ms(SPECTRUM_MS)
    n_fft = 1 << int(np.ceil(np.log2(max(m, 64))))
    after = sig.samples(onset, onset + m)
    before = sig.samples(max(onset - m, 0), onset)
    after = np.pad(after, (0, m - len(after)))
    before = np.pad(before, (m - len(before), 0))
    spec_after, freqs = _band_powers(after, sr, n_fft)
    spec_before, _ = _band_powers(before, sr, n_fft)
    # Subtracted per band, not per bin (a ringing decay's periodogram fluctuates
    # bin by bin), and only what doubles a band counts: a decaying tone's energy
    # in a short window swings with its phase and with what beats against it.
    edges = np.asarray(BAND_EDGES_HZ)
    bands = [(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    new = np.array([max(spec_after[b].sum() - NEW_ENERGY_MARGIN * spec_before[b].sum(), 0.0) for b in bands])
    centres = np.sqrt(edges[:-1] * edges[1:])
    centroid = float((centres * new).sum() / new.sum()) if new.sum() > 0 else 0.0
    band_db = tuple(float(v) for v in _db(new))
    return Candidate(
        stem=name, time_s=onset / sr, level_db=level_db, coarse_s=attack.coarse_s,
        activation=attack.activation, pre_level_db=pre_level_db, rise_db=attack.rise_db,
        rise_time_ms=peak_at * 1000.0 / sr, centroid_hz=centroid, band_db=band_db, grace=attack.grace,
    )


def stem_candidates(stem: Stem, activation: np.ndarray, fps: float) -> list[Candidate]:
    """Refined candidates of one close mic from its onset activation (``fps`` frames per second)."""
    from . import madmom_adapter

    if not np.any(stem.audio):
        return []  # digital silence: nothing to find, and nothing to divide by
    peaks = madmom_adapter.pick_onset_peaks(activation, threshold=ACTIVATION_THRESHOLD, combine_s=COMBINE_S)
    if len(peaks) == 0:
        return []
    centres = np.array([int(round(t * stem.sample_rate)) for t in peaks], dtype=np.int64)
    found: list[_Attack] = []
    for sig, which in _signals(stem, centres):
        for i in which:
            coarse_s = peaks[i]
            act = float(activation[min(int(round(coarse_s * fps)), len(activation) - 1)])
            found += [a._replace(coarse_s=float(coarse_s), activation=act) for a in _refine(sig, coarse_s)]
    # Two peaks may refine to one attack, or one to its start and one to its
    # build-up a few ms later: keep one per attack, unless the later one is a
    # much louder stroke (the main note after a grace note).
    found.sort(key=lambda a: (a.onset, a.grace))
    kept: list[_Attack] = []
    merge, build_up = sig.ms(MERGE_MS), sig.ms(BUILD_UP_MS)
    for attack in found:
        if kept:
            last = kept[-1]
            gap = attack.onset - last.onset
            if gap < merge:
                if last.grace and not attack.grace:
                    kept[-1] = attack  # a network peak outranks a split-off point
                continue
            if gap <= build_up and attack.added_db < last.added_db + BUILD_UP_DB:
                continue
        kept.append(attack)
    return [_features(sig, stem.name, a) for a in kept]  # any window will do: features read the mono samples


def _close_mic_candidates(stem: Stem) -> list[Candidate]:
    from . import madmom_adapter

    if not np.any(stem.audio):
        return []
    (activation,) = madmom_adapter.onset_activations([stem.mono()], stem.sample_rate)
    return stem_candidates(stem, activation, madmom_adapter.ONSET_FPS)


def default_workers(n_tasks: int) -> int:
    """Threads for per-stem work: one per usable core, at most one per task."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(n_tasks, cores))


def detect_candidates(session: Session, *, progress: Callable[[str, float], None] | None = None,
                      workers: int | None = None) -> dict[str, list[Candidate]]:
    """Onset candidates of every close mic: stem name -> candidates sorted by time.

    Close mics are analysed in ``workers`` threads (default: one per core, see
    :func:`default_workers`): the heavy parts (FFTs, the onset network, the
    filters) release the GIL, and each thread holds only its own stem's
    temporaries. Results do not depend on the number of workers.
    """
    close = session.close_stems
    if not close:
        raise InputError("no close mic in the session (kick, snare, hat, tom...): "
                         "name the files by drum or use --role FILE=ROLE")
    workers = default_workers(len(close)) if workers is None else max(1, int(workers))
    if progress:
        progress("onsets", 0.0)
    found: dict[str, list[Candidate]] = {}
    if workers == 1:
        for i, stem in enumerate(close):
            found[stem.name] = _close_mic_candidates(stem)
            if progress:
                progress("onsets", (i + 1) / len(close))
    else:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="beatfix-onsets")
        try:
            futures = {pool.submit(_close_mic_candidates, stem): stem.name for stem in close}
            for i, future in enumerate(as_completed(futures)):
                found[futures[future]] = future.result()
                if progress:
                    progress("onsets", (i + 1) / len(close))
        finally:
            # on an error or Ctrl-C, stems not started yet are dropped, not analysed first
            pool.shutdown(wait=True, cancel_futures=True)
    return {stem.name: found[stem.name] for stem in close}
