"""One error hierarchy. The CLI turns any BeatfixError into one red line and exit 1."""

from __future__ import annotations


class BeatfixError(Exception):
    """Base class of every error beatfix raises on purpose."""


class InputError(BeatfixError):
    """A stem or session cannot be used: unreadable, empty, non-finite, mismatched."""


class ParameterError(BeatfixError):
    """An argument is out of range or malformed (tempo, grid, strength, ...)."""


class ModelError(BeatfixError):
    """Model weights are missing, corrupt (checksum) or incompatible, or a device is unavailable."""


class OutputError(BeatfixError):
    """Outputs cannot be written safely (inputs in the way, folder not empty, disk full)."""


class GridFitError(InputError):
    """The grid does not fit the playing (wrong tempo, a tempo change, another feel): nothing is edited."""
