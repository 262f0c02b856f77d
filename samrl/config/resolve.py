"""The one resolver: raw YAML values -> a validated Config with every default filled in.

Every problem is a ConfigError naming the file and the key path, raised before any work starts.
The resolver reads the mapping, refuses unknown keys, runs each key's own check (the rule its
declaration in `samrl.config.sections` names, `samrl.config.rules`) in declaration order with
the default where the key is not given, then the checks that relate keys
(`samrl.config.crosscheck`), and returns the frozen Config.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from samrl.config import crosscheck, owners
from samrl.config.rules import Rule
from samrl.config.sections import (
    RUN_RECORD,
    SECTIONS,
    AlgoSection,
    Config,
    DatasetSection,
    OptimSection,
    Section,
    TrainSection,
)
from samrl.config.yamlio import apply_override, parse_override, read_yaml
from samrl.sam.names import OPTIMIZER_NAMES
from samrl.validate import Checker, as_name

#: Top-level keys: the experiment name, the sections, and what a sweep records (`sweep`).
TOP_LEVEL = ("name", *SECTIONS, "sweep")


def load_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    check_dataset: bool = True,
) -> Config:
    """A config file with `--set key.path=value` overrides applied, resolved."""
    data = read_yaml(path)
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, key, value)
    return resolve(
        data, source=str(path), default_name=Path(path).stem, check_dataset=check_dataset
    )


def resolve(
    raw: dict[str, Any],
    *,
    source: str,
    default_name: str = "experiment",
    check_dataset: bool = True,
) -> Config:
    """Validate every key and fill in defaults; raises ConfigError on the first problem."""
    c = Checker(source)
    raw = {k: v for k, v in raw.items() if k != RUN_RECORD}  # a run's config.yaml
    c.known_keys(raw, TOP_LEVEL, "")
    name = _checked(c, _field(Config, "name"), raw.get("name", default_name), "name")
    given: dict[str, dict[str, Any]] = {}
    for section, cls in SECTIONS.items():
        given[section] = copy.deepcopy(c.mapping(raw.get(section), section))
        if cls is not OptimSection:  # optim's variant keys depend on optim.name: section_from
            c.known_keys(given[section], cls.keys(), section)
    parts = {s: section_from(c, cls, given[s], s) for s, cls in SECTIONS.items()}
    parts = crosscheck.checked(c, parts, check_dataset=check_dataset)
    output = parts["output"]
    if output.run_id is None:
        run_id = default_run_id(parts["algo"], parts["dataset"], parts["optim"], parts["train"])
        parts["output"] = dataclasses.replace(output, run_id=run_id)
    sweep = copy.deepcopy(raw.get("sweep"))
    return Config(name, **parts, sweep=sweep, source=source)


def section_from(c: Checker, cls: type[Section], given: dict[str, Any], path: str) -> Any:
    """The section from its given keys (unknown ones already refused): each key's check run
    in declaration order on the value given, else the default; a key holding a section has
    that section's keys checked the same way."""
    defaults = cls.defaults()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}"
        value = given.get(f.name, defaults.get(f.name))
        sub = f.metadata.get("section")
        if sub is not None:
            values[f.name] = None if value is None else _subsection(c, sub, value, key)
        elif "doc" in f.metadata:
            values[f.name] = _checked(c, f, value, key)
        elif f.metadata.get("flatten"):
            values[f.name] = _variant_params(c, values["name"], given)
    return cls(**values)


def _subsection(c: Checker, cls: type[Section], value: Any, key: str) -> Any:
    given = c.mapping(value, key)
    c.known_keys(given, cls.keys(), key)
    return section_from(c, cls, given, key)


def _checked(c: Checker, field: dataclasses.Field[Any], value: Any, key: str) -> Any:
    """The value as the key's own check returns it."""
    check = key_check(field)
    return value if check is None else check(c, value, key)


def key_check(field: dataclasses.Field[Any]) -> Rule | None:
    """The rule a key's declaration names (`check=`): a rule, or a rule of owners by name."""
    check = field.metadata.get("check")
    return getattr(owners, check) if isinstance(check, str) else check


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _variant_params(c: Checker, optim_name: str, given: dict[str, Any]) -> dict[str, Any]:
    """optim's keys beyond its own: those of the SAM variant named (e.g. looksam's k), which
    samrl.sam checks when the optimizer factories are built."""
    own = OptimSection.keys()
    variant = {k: v for k, v in given.items() if k not in own}
    allowed = [*own, *OPTIMIZER_NAMES[optim_name].keys]
    c.known_keys(variant, allowed, "optim", f"key for optimizer '{optim_name}'")
    return variant


def default_run_id(
    algo: AlgoSection, dataset: DatasetSection, optim: OptimSection, train: TrainSection
) -> str:
    """`<algo>_<dataset>_<optim>[-rho<rho>]_s<seed>`, safe as a folder name."""
    label = optim.name
    if optim.sharpness_aware:
        label += f"-rho{optim.rho:g}"
    name = str(dataset.name)
    if name.startswith("file:"):
        name = "file-" + Path(name[5:]).stem
    run_id = f"{algo.name}_{name}_{label}_s{train.seed}"
    return as_name(run_id)
