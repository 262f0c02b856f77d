"""Pilots on their own seeds: a study names the pilot its budget was chosen from, and a study
whose seeds overlap that pilot's is refused (DESIGN.md section 8).

A budget chosen on the seeds a study then compares is chosen on the test data: on pendulum the
pilot's seeds 0 and 1 were 2 of the study's 5, and two pilot curves peaked exactly at the
chosen budget (issue 31). A sweep file says `pilot: <sweep file or sweep directory>` (relative
to the sweep file); pilots use seeds the studies never use (100 and up).
"""

from __future__ import annotations

from pathlib import Path

from samrl.errors import ConfigError
from samrl.rundir import SweepDir
from samrl.sweep.grid import load_sweep_file

#: The sweep-file key naming the pilot.
PILOT_KEY = "pilot"
ALLOW_FLAG = "--allow-pilot-seeds"


def pilot_seeds(pilot: str | Path) -> list[int]:
    """The seeds of a pilot: a sweep file's `seeds`, or a sweep directory's sweep.json."""
    path = Path(pilot)
    if path.is_dir():
        record = SweepDir(path).read_record()
        if record is None:
            raise ConfigError(f"pilot {path}: no sweep.json there", key=PILOT_KEY)
        return [int(s) for s in record.get("seeds", [])]
    if not path.is_file():
        raise ConfigError(f"pilot {path}: no such sweep file or directory", key=PILOT_KEY)
    return load_sweep_file(path).seeds


def check_pilot_seeds(seeds: list[int], pilot: str | None, allow: bool) -> None:
    """ConfigError (one line) when the study's seeds overlap its pilot's, unless `allow`."""
    if pilot is None or allow:
        return
    shared = sorted(set(seeds) & set(pilot_seeds(pilot)))
    if shared:
        raise ConfigError(
            f"seeds {','.join(map(str, shared))} are also its pilot's ({pilot}): a budget "
            "chosen on the seeds a study compares is chosen on its test data; give the pilot "
            f"seeds the study never uses (100 and up) or pass {ALLOW_FLAG}",
            key="seeds",
        )
