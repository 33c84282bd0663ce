"""Channel roles from file names. Close mics trigger hits; overheads and rooms follow."""

from __future__ import annotations

import re
from typing import Mapping

from .errors import ParameterError
from .types import ROLES

# Checked in order: the first pattern that matches a token of the name wins, so
# "snare_room" is a room mic and "oh_hat_side" an overhead.
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("click", r"click|clk|klick|metronome|metro|met|clicktrack"),
    ("room", r"room|amb|ambience|ambient|rm|far|trash|crush|mono_?room"),
    ("overhead", r"oh|ohl|ohr|overheads?|over|ovh|cymbals?_?(l|r)?|top_?(l|r)"),
    ("kick", r"kick|kik|kck|bd|bassdrum|bass_?drum|kin|kout|sub_?kick"),
    ("snare", r"snare|snr|sn|sd|snt|snb"),
    ("hat", r"hat|hats|hh|hihat|hi_?hat"),
    ("tom", r"tom\d*|toms|rack\d*|floor\d*|ft\d*|rt\d*|hitom|lotom|midtom"),
    ("ride", r"ride|rd"),
    ("crash", r"crash|splash|china"),
    ("perc", r"perc|tamb|tambourine|cowbell|clap|shaker|conga|bongo"),
    ("nondrum", r"bass|bs|db|gtr|guitars?|gt|vox|vocals?|voc|bgv|keys|piano|pno|synth|pad|organ|strings|horns?|"
                r"sax|trumpet|tpt|trombone|leads?|rhodes|wurli|acoustic|elec|ag|eg"),
)
_COMPILED = tuple((role, re.compile(rf"^(?:{pat})$")) for role, pat in _PATTERNS)
# Also match role words glued to digits or side letters: "kick1", "ohL", "tom2".
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+|(?<=[a-z])(?=\d)")


def role_from_name(name: str) -> str:
    """Guess a stem's role from its file name (without extension)."""
    lowered = name.lower()
    if re.search(r"bass[\W_]*drum", lowered):  # a kick, not a bass guitar
        return "kick"
    tokens = [t for t in _TOKEN_SPLIT.split(lowered) if t]
    for role, pattern in _COMPILED:
        for token in tokens:
            if pattern.match(token) or pattern.match(token.rstrip("lr")):
                return role
    # Substrings catch names like "kickin" or "snaretop" that have no separator.
    for role, word in (("room", "room"), ("overhead", "overhead"), ("kick", "kick"),
                       ("snare", "snare"), ("hat", "hat"), ("tom", "tom"), ("ride", "ride"),
                       ("crash", "crash"), ("click", "click"), ("nondrum", "bass"), ("nondrum", "guitar"),
                       ("nondrum", "vocal")):
        if word in name.lower():
            return role
    return "other"


def parse_role_overrides(specs: list[str] | None) -> Mapping[str, str]:
    """Parse ``FILE=ROLE`` overrides; FILE may be a path, a file name or a stem name."""
    out: dict[str, str] = {}
    for spec in specs or []:
        if "=" not in spec:
            raise ParameterError(f"--role {spec!r}: expected FILE=ROLE")
        key, role = (part.strip() for part in spec.rsplit("=", 1))
        role = role.lower()
        if role not in ROLES:
            raise ParameterError(f"--role {spec!r}: unknown role {role!r}; use one of {', '.join(sorted(ROLES))}")
        out[key] = role
    return out
