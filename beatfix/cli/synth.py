"""``beatfix synth``: render synthetic drum sessions with exact ground truth.

Only this module of the synth feature imports typer or rich; heavy imports
happen inside the command so ``--help`` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

HELP = """Render synthetic multitrack drum sessions with exact ground truth.

Each session is a random groove (rock, funk, half-time, shuffle; 60-200 BPM by
default) played with human timing, recorded by a random mic setup (close mics
with bleed, overheads, room with reverb) and written as stems plus truth.json:
every hit's grid time, performed time and onset sample, and every drum's gain
and delay in every channel.

Musical time: by default every session is one fixed tempo in 4/4 with the
style's own feel. --tempo-curve, --meter, --feel and --count-in add tempo
ramps, breathing and sudden changes, odd meters and meter changes, swing,
shuffle and triplet feels, and a bar of hats before bar 1 ("random" draws
one per session). Those sessions write the true tempo map into truth.json
("tempo_map": anchors in quarter notes and seconds, and the meters); every
session also gets tempo_map.mid, its conductor track as a MIDI file.

\b
Examples:
  beatfix synth data/train --sessions 500 --seed 1
  beatfix synth data/val --sessions 50 --seed 2 --kit kits/rumpf_kit_z01 --format flac
  beatfix synth bench/ --sessions 20 --kit benchmarks/kits/fluidgm --ideal --sample-rate 48000
  beatfix synth maps/ --sessions 20 --tempo-curve random --meter random --count-in
  beatfix synth shuffles/ --sessions 10 --feel shuffle --bpm-min 90 --bpm-max 140
  beatfix synth odd/ --sessions 10 --meter 7/8 --tempo-curve change
"""

_SAMPLE_RATES = {"auto": (44100, 48000, 96000), "44100": (44100,), "48000": (48000,), "96000": (96000,)}
_SUBTYPE = {"wav": "PCM_24", "flac": "PCM_24"}
MSG_DONE = "wrote {n} session(s) to {out}"
MSG_NOT_EMPTY = "{out}: folder is not empty (use --force to write into it)"


def _range(name: str, low: float, high: float) -> tuple[float, float]:
    from ..errors import ParameterError

    if low > high:
        raise ParameterError(f"{name}: minimum {low:g} is above maximum {high:g}")
    return (low, high)


def _musical_time(tempo_curve: str, meter: str, feel: str, count_in: bool) -> dict:
    """The ``draw_specs`` choices of the musical-time options; "random" offers every value."""
    from ..errors import ParameterError
    from ..synth.timeline import FEELS, METERS, TEMPO_CURVES

    curve = tempo_curve.strip().lower()
    if curve != "random" and curve not in TEMPO_CURVES:
        raise ParameterError(f"--tempo-curve {tempo_curve}: use {', '.join(TEMPO_CURVES)} or random")
    m = meter.strip().lower()
    if m != "random" and m != "change" and m not in METERS:
        raise ParameterError(f"--meter {meter}: use {', '.join(METERS)}, change or random")
    f = feel.strip().lower()
    if f not in ("style", "random") and f not in FEELS:
        raise ParameterError(f"--feel {feel}: use style, {', '.join(FEELS)} or random")
    return {
        "tempo_curves": TEMPO_CURVES if curve == "random" else (curve,),
        "meters": (*METERS, "change") if m == "random" else (m,),
        "feels": (None, *FEELS) if f == "random" else ((None,) if f == "style" else (f,)),
        "count_in_rate": 1.0 if count_in else 0.0,
    }


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to ``app``."""

    @app.command("synth", help=HELP)
    def synth(
        out_dir: Path = typer.Argument(..., metavar="OUT_DIR",
                                       help="Folder to write session_0000/, session_0001/ ... into."),
        sessions: int = typer.Option(10, "--sessions", "-n", help="Number of sessions to render."),
        kit: str = typer.Option("procedural", "--kit",
                                help="'procedural' (synthesized) or a folder of one-shots named by drum "
                                     "(kick*.wav, snare*.flac, hh*, tom1*, ft*, ride*, crash* ...)."),
        seed: int = typer.Option(0, "--seed", help="Seed: the same seed renders the same sessions."),
        sample_rate: str = typer.Option("auto", "--sample-rate",
                                        help="auto (each session draws 44100, 48000 or 96000), or one rate."),
        duration_s: float = typer.Option(20.0, "--duration-s", help="Length of each session in seconds."),
        bpm_min: float = typer.Option(60.0, "--bpm-min", help="Slowest tempo drawn."),
        bpm_max: float = typer.Option(200.0, "--bpm-max", help="Fastest tempo drawn."),
        spread_ms_min: float = typer.Option(3.0, "--spread-ms-min",
                                            help="Tightest drummer: timing spread (about 2 standard deviations), ms."),
        spread_ms_max: float = typer.Option(30.0, "--spread-ms-max", help="Sloppiest drummer, ms."),
        channels_min: int = typer.Option(2, "--channels-min", help="Fewest channels in a session (2-16)."),
        channels_max: int = typer.Option(16, "--channels-max", help="Most channels in a session (2-16)."),
        idle_tom_rate: float = typer.Option(0.25, "--idle-tom-rate",
                                            help="Share of sessions (0-1) where some toms are mic'd but never played."),
        fmt: str = typer.Option("wav", "--format", help="wav or flac (24-bit)."),
        ideal: bool = typer.Option(False, "--ideal",
                                   help="Also write ideal/ in each session: the same strokes exactly on the grid."),
        fill_missing: bool = typer.Option(True, "--fill-missing/--no-fill-missing",
                                          help="Play drums a --kit folder lacks (hats, toms, cymbals) "
                                               "with the procedural kit."),
        tempo_curve: str = typer.Option("steady", "--tempo-curve",
                                        help="steady, ramp (10-20 % up or down over the song), breathing "
                                             "(slow ±2-6 % swells over bars), change (10-20 % jump at a bar "
                                             "mid-song) or random."),
        meter: str = typer.Option("4/4", "--meter",
                                  help="2/4, 3/4, 4/4, 5/4, 6/8, 7/8, 12/8, change (4/4 turning into another "
                                       "meter mid-song) or random."),
        feel: str = typer.Option("style", "--feel",
                                 help="style (each style's own: triplets for the shuffle, sometimes swung funk), "
                                      "straight, swing (swung 16ths 54-62 %), shuffle (swung 8ths 60-66 %), "
                                      "triplet (1/8T) or random."),
        count_in: bool = typer.Option(False, "--count-in/--no-count-in",
                                      help="A bar of closed hats on the beats before bar 1."),
        force: bool = typer.Option(False, "--force", help="Write into OUT_DIR even if it is not empty."),
        progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                                help="Show a progress bar (default: when stdout is a terminal)."),
    ) -> None:
        from ..audio_io import prepare_output_dir
        from ..errors import OutputError, ParameterError
        from ..synth import complete_kit, draw_specs, load_kit, procedural_kit, write_dataset

        rates = _SAMPLE_RATES.get(sample_rate.lower())
        if rates is None:
            raise ParameterError(f"--sample-rate {sample_rate}: use auto, 44100, 48000 or 96000")
        if fmt.lower() not in _SUBTYPE:
            raise ParameterError(f"--format {fmt}: use wav or flac")
        bpm_range = _range("--bpm-min/--bpm-max", bpm_min, bpm_max)
        spread_range = _range("--spread-ms-min/--spread-ms-max", spread_ms_min, spread_ms_max)
        channels_range = tuple(int(c) for c in _range("--channels-min/--channels-max", channels_min, channels_max))
        kits: dict = {}

        def kit_for_rate(rate: int):
            if rate not in kits:
                if kit == "procedural":
                    kits[rate] = procedural_kit(rate, seed)
                else:
                    loaded = load_kit(Path(kit), rate)
                    kits[rate] = complete_kit(loaded, procedural_kit(rate, seed)) if fill_missing else loaded
            return kits[rate]

        # Everything is validated (options, then the kit) before anything is written.
        specs = draw_specs(sessions, seed=seed, sample_rates=rates, duration_s=duration_s, bpm_range=bpm_range,
                           spread_ms_range=spread_range, channels_range=channels_range, idle_tom_rate=idle_tom_rate,
                           **_musical_time(tempo_curve, meter, feel, count_in))
        kit_for_rate(rates[0])
        if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
            raise OutputError(MSG_NOT_EMPTY.format(out=out_dir))
        prepare_output_dir(out_dir, [], force=True)
        options = dict(kit_for_rate=kit_for_rate, ideal=ideal, fmt=fmt.upper(), subtype=_SUBTYPE[fmt.lower()])
        show = sys.stdout.isatty() if progress is None else progress
        if show:
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("rendering sessions", total=sessions)
                write_dataset(out_dir, specs, progress=lambda done, total: bar.update(task, completed=done), **options)
        else:
            write_dataset(out_dir, specs, **options)
        typer.echo(MSG_DONE.format(n=sessions, out=out_dir))
