"""Grid arithmetic, grid specs, tempo bounds and roles from file names."""

from __future__ import annotations

import numpy as np
import pytest

from beatfix.errors import ParameterError
from beatfix.grid import Grid, check_bpm, parse_grid
from beatfix.roles import parse_role_overrides, role_from_name


@pytest.mark.parametrize("spec,steps", [("1/4", 1), ("1/8", 2), ("1/16", 4), ("1/32", 8), ("1/8T", 3), ("1/16t", 6), ("1/4T", 1.5)])
def test_parse_grid(spec, steps):
    assert parse_grid(spec) == steps


@pytest.mark.parametrize("spec", ["1/3", "16", "1/16x", "", "quarter"])
def test_unknown_grid(spec):
    with pytest.raises(ParameterError, match="unknown grid"):
        parse_grid(spec)


@pytest.mark.parametrize("bpm", [0, -10, 100000, float("nan"), float("inf")])
def test_absurd_bpm(bpm):
    with pytest.raises(ParameterError):
        check_bpm(bpm)


def test_slots_and_nearest_slot_with_phase_and_swing():
    g = Grid(bpm=120, offset_s=0.3, steps_per_beat=4)
    assert g.step_s == pytest.approx(0.125)
    assert g.slot_time(8) == pytest.approx(1.3)
    times = g.slot_time(np.arange(-2, 20)) + np.linspace(-0.06, 0.06, 22)
    np.testing.assert_array_equal(g.nearest_slot(times), np.arange(-2, 20))
    swung = Grid(bpm=120, offset_s=0.0, steps_per_beat=2, swing_pct=66.67)
    assert swung.slot_time(1) == pytest.approx(0.3333, abs=1e-3)
    assert swung.nearest_slot(0.32) == 1 and swung.nearest_slot(0.15) == 0
    with pytest.raises(ParameterError):
        Grid(bpm=120, offset_s=0, swing_pct=80)


@pytest.mark.parametrize(
    "name,role",
    [("Kick In", "kick"), ("kik_out", "kick"), ("BD", "kick"), ("snare_top", "snare"), ("SnB", "snare"),
     ("hh", "hat"), ("HiHat", "hat"), ("tom1", "tom"), ("Floor Tom", "tom"), ("OH_L", "overhead"),
     ("ohR", "overhead"), ("overheads", "overhead"), ("room", "room"), ("amb_mono", "room"),
     ("Snare Room", "room"), ("ride", "ride"), ("bass_di", "nondrum")],
)
def test_roles_from_names(name, role):
    assert role_from_name(name) == role


def test_role_overrides():
    assert parse_role_overrides(["a.wav=Kick"]) == {"a.wav": "kick"}
    with pytest.raises(ParameterError):
        parse_role_overrides(["a.wav"])
    with pytest.raises(ParameterError):
        parse_role_overrides(["a.wav=guitar"])
