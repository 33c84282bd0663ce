"""Measure an edit from its output audio against the synthetic truth (for benchmarks and tests).

Nothing here trusts beatfix's own analysis or plan. Every measurement looks
at audio:

* **landing** (:class:`Locator`): each truth hit is re-found in the output by
  normalised cross-correlation of its own one-shot's attack, high-passed at
  :data:`HIGHPASS_HZ` so a ringing drum body cannot pull the match, searched
  within half a grid step of where it belongs. The same match in the input,
  at the truth onset, calibrates it, so the untouched input scores exactly
  its performed deviation and the ideal render ~0. Residual: landing minus
  target (slot time plus the mic's delay for that drum). A hit not found
  there (weak match, or best match at the window's edge) is *lost*: cut
  apart, dropped, or moved to another slot.
* **phase** (:func:`overhead_lags`): the lag from each close-mic attack to
  the same attack in every overhead channel, input against output.
* **seams** (:func:`seam_artifacts`): the same strokes are rendered again by
  the synthesizer, each where it landed (:func:`render_landed`); the output's
  high-band short-window energy is compared with that reference, so only what
  the edit added (a click, an attack heard twice) stands out.
* **colour** (:func:`spectral_distance_db`): log-magnitude STFT distance.

Also here, because they are judged against the same truth: the quality of
an :class:`~beatfix.types.Analysis` (:func:`analysis_quality`) and the oracle
analysis built from the truth (:func:`oracle_analysis`).

Stems are mappings ``stem name -> (n_channels, n_samples)`` arrays; ``truth``
is the ``truth.json`` document of :mod:`beatfix.synth.session`.

The code lives in submodules, all re-exported here: :mod:`.truth` (the true
grid, a :class:`~beatfix.grid.MapGrid` when the truth has a tempo map; which
stems own which drums, delays, expected times), :mod:`.matching` (high-pass
and normalised cross-correlation), :mod:`.locate` (:class:`Locator`,
:class:`Landing`, :func:`residual_summary`), :mod:`.phase`
(:func:`overhead_lags`), :mod:`.seams` (:func:`render_landed`,
:func:`seam_artifacts`, :func:`source_time_map`), :mod:`.spectral` and
:mod:`.quality` (:func:`analysis_quality`, :func:`quality_rates`,
:func:`oracle_analysis`).
"""

from .truth import (OWN_WITHIN_DB, OWN_CLEAR_DB, FOLLOWER_ROLES, close_stems, own_drums, own_stems, expected_times_s,
                    truth_grid, truth_step_s)
from .matching import HIGHPASS_HZ, highpass, ncc_curve, find_template
from .locate import (
    ATTACK_MS, MIN_MATCH, MIN_MATCH_REL, MEASURABLE_MATCH, MASKED_WITHIN_DB, CALIBRATE_MS, ECHO_MIN, ECHO_REL,
    ECHO_APART_MS, MAX_SEARCH_MS, Landing, search_samples, shot_template, Locator, residual_summary,
)
from .phase import overhead_lags, input_positions, landed_positions, lag_changes_ms
from .seams import (
    CLICK_BAND_HZ, FRAME_MS, EXCESS_DB, FLOOR_BELOW_PEAK_DB, TOLERANCE_FRAMES, ATTACK_RISE_DB, RISE_FRAMES,
    CLICK_MAX_FRAMES, SPIKE_FRAMES, SPIKE_QUANTILE, SMOOTH_FRAMES, PIECE_LEAD_MS, MERGE_MS, render_landed,
    landed_onsets_s, band_envelope_db, SeamArtifacts, source_time_map, seam_artifacts,
)
from .spectral import SPECTRAL_N_FFT, SPECTRAL_RANGE_DB, log_spectrogram, spectral_distance_db
from .quality import analysis_quality, quality_rates, oracle_analysis

__all__ = [
    "OWN_WITHIN_DB", "OWN_CLEAR_DB", "FOLLOWER_ROLES", "close_stems", "own_drums", "own_stems", "expected_times_s",
    "truth_grid", "truth_step_s",
    "HIGHPASS_HZ", "highpass", "ncc_curve", "find_template", "ATTACK_MS", "MIN_MATCH", "MIN_MATCH_REL",
    "MEASURABLE_MATCH", "MASKED_WITHIN_DB", "CALIBRATE_MS", "ECHO_MIN", "ECHO_REL", "ECHO_APART_MS",
    "MAX_SEARCH_MS", "Landing", "search_samples", "shot_template", "Locator", "residual_summary", "overhead_lags",
    "input_positions", "landed_positions", "lag_changes_ms", "CLICK_BAND_HZ", "FRAME_MS", "EXCESS_DB",
    "FLOOR_BELOW_PEAK_DB", "TOLERANCE_FRAMES", "ATTACK_RISE_DB", "RISE_FRAMES", "CLICK_MAX_FRAMES", "SPIKE_FRAMES",
    "SPIKE_QUANTILE", "SMOOTH_FRAMES", "PIECE_LEAD_MS", "MERGE_MS", "render_landed", "landed_onsets_s",
    "band_envelope_db", "SeamArtifacts", "source_time_map", "seam_artifacts", "SPECTRAL_N_FFT", "SPECTRAL_RANGE_DB",
    "log_spectrogram", "spectral_distance_db", "analysis_quality", "quality_rates", "oracle_analysis",
]
