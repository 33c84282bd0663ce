"""Giving freed memory back between the pipeline's stages, so each stage's peak does not sit on the last one's."""

from __future__ import annotations


def return_freed_memory() -> None:
    """Hand the C heap's free pages back to the system, where the C library allows it (glibc).

    The features' many block-sized arrays leave tens of MB free but held in the
    heap (glibc raises its mmap threshold as big arrays are freed); the later
    stages' peaks would sit on top of them. A hint only: nothing changes if it fails.
    """
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass
