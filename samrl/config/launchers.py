"""Where a sweep's runs execute: one typed section per launcher.

A sweep file's `launcher:` mapping (or `--launcher` and its flags) becomes one of these; the
runner dispatches on its type, and `samrl sweep`'s launcher flags are generated from the fields
that declare one (`flag`), so a new option is one field here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from samrl.validate import Checker

#: Slurm's `executor`: auto is Slurm where `sbatch` is found, else submitit's local executor.
SLURM_EXECUTORS = ("auto", "slurm", "local")


@dataclasses.dataclass(frozen=True)
class Flag:
    """A launcher option's `samrl sweep` flag: `--<name with dashes>`, its help, and its value
    range (`low`; `integer` picks click.IntRange over click.FloatRange; neither: a string)."""

    help: str
    integer: bool | None = None
    low: float | None = None


def option(
    kind: str | None = None,
    *,
    flag: Flag | None = None,
    choices: tuple[str, ...] = (),
    what: str = "",
) -> Any:
    """A launcher field (None when the sweep file leaves it out). kind: how the sweep file's
    value is checked: `integer`, `number`, `positive` (a number > 0), or one of `choices` (a
    `what`)."""
    metadata = {"kind": kind, "flag": flag, "choices": choices, "what": what}
    return dataclasses.field(default=None, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class LauncherSection:
    """What every launcher has: its `type` name (the sweep file's `launcher.type`)."""

    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """The sweep file's mapping: `type` and the options that are set."""
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return {"type": self.type, **given}


@dataclasses.dataclass(frozen=True)
class LocalLauncher(LauncherSection):
    type: ClassVar[str] = "local"
    #: a per-run wall-clock limit; fractions of a minute are fine here
    timeout_min: float | None = option("positive")


@dataclasses.dataclass(frozen=True)
class SlurmLauncher(LauncherSection):
    type: ClassVar[str] = "slurm"
    partition: str | None = option(flag=Flag("Slurm partition."))
    timeout_min: int | None = option(
        "integer", flag=Flag("Slurm time limit per run.", integer=True, low=1)
    )
    cpus_per_task: int | None = option(
        "integer",
        flag=Flag("Slurm CPUs per run (the most torch threads a run uses).", integer=True, low=1),
    )
    gpus_per_node: int | None = option(
        "integer", flag=Flag("Slurm GPUs per run.", integer=True, low=0)
    )
    mem_gb: float | None = option("number", flag=Flag("Slurm memory per run.", False, low=0))
    array_parallelism: int | None = option(
        "integer", flag=Flag("Slurm array tasks at once.", integer=True, low=1)
    )
    signal_delay_s: int | None = option("integer")
    executor: str | None = option(choices=SLURM_EXECUTORS, what="Slurm executor")


@dataclasses.dataclass(frozen=True)
class RayLauncher(LauncherSection):
    type: ClassVar[str] = "ray"
    address: str | None = option(flag=Flag("Ray cluster address (default: start a local Ray)."))
    num_cpus: float | None = option("number", flag=Flag("Ray CPUs per run.", False, low=0))
    num_gpus: float | None = option("number", flag=Flag("Ray GPUs per run.", False, low=0))


Launcher = LocalLauncher | SlurmLauncher | RayLauncher
LAUNCHER_SECTIONS: dict[str, type[LocalLauncher | SlurmLauncher | RayLauncher]] = {
    cls.type: cls for cls in (LocalLauncher, SlurmLauncher, RayLauncher)
}
LAUNCHERS = tuple(LAUNCHER_SECTIONS)
_EXPECTED = {"integer": "an integer", "number": "a number", "positive": "a positive number"}


def launcher_flags() -> dict[str, tuple[type[LauncherSection], dataclasses.Field[Any], Flag]]:
    """Flag name (the field's) -> (its launcher, the field, the flag), in declaration order."""
    out: dict[str, tuple[type[LauncherSection], dataclasses.Field[Any], Flag]] = {}
    for cls in LAUNCHER_SECTIONS.values():
        for field in dataclasses.fields(cls):
            flag = field.metadata.get("flag")
            if flag is not None:
                out[field.name] = (cls, field, flag)
    return out


def parse_launcher(value: Any, where: str = "launcher", check: Checker | None = None) -> Launcher:
    """The launcher section of a sweep file's `launcher:` value (a mapping with a `type`, a bare
    type name, or nothing: local); a ConfigError names `<where>.<key>`."""
    check = check or Checker()
    if value is None:
        return LocalLauncher()
    if isinstance(value, str):
        value = {"type": value}
    data: Mapping[str, Any] = check.mapping(value, where, expected="a mapping with a type")
    kind = check.choice(data.get("type", "local"), f"{where}.type", LAUNCHERS, "launcher")
    cls = LAUNCHER_SECTIONS[kind]
    fields = dataclasses.fields(cls)
    known = ("type", *(f.name for f in fields))
    check.known_keys(dict(data), known, where, f"key for launcher '{kind}'")
    for field in fields:
        given = data.get(field.name)
        if given is None:
            continue
        key = f"{where}.{field.name}"
        rule = field.metadata["kind"]
        if rule == "integer":
            check.integer(given, key, expected=_EXPECTED[rule])
        elif rule == "number":
            check.number(given, key, expected=_EXPECTED[rule])
        elif rule == "positive":
            check.number(given, key, above=0, expected=_EXPECTED[rule])
        elif field.metadata["choices"]:
            check.choice(given, key, field.metadata["choices"], field.metadata["what"])
    return cls(**{f.name: data.get(f.name) for f in fields})
