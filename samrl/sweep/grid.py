"""Sweep specification: sweep files and flags -> a grid -> one config per (grid point, seed).

Nothing here trains or writes; `expand` turns a SweepSpec into RunPlans whose configs are all
validated by `samrl.config.resolve` before anything starts.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from samrl.config import (
    Config,
    apply_override,
    load_yaml,
    parse_override,
    read_yaml,
    resolve,
)
from samrl.config.launchers import Launcher, LocalLauncher, parse_launcher
from samrl.errors import ConfigError
from samrl.rundir import SweepDir
from samrl.validate import KEY_PATH, Checker, as_name

DEFAULT_OUT = "runs/sweeps"
SWEEP_KEYS = (
    "name",
    "base",
    "config",
    "grid",
    "seeds",
    "set",
    "jobs",
    "out",
    "launcher",
    "pilot",
)
#: Keys a grid may not vary: seeds have their own axis, the sweep sets output (each run's
#: directory is `<sweep>/runs/<run_id>`); name is the sweep's.
RESERVED_KEYS = ("train.seed", "name", "output", "sweep")
#: Keys already spelled out by samrl's default run_id (`<algo>_<dataset>_<optim>[-rho]_s<seed>`).
RUN_ID_KEYS = ("algo.name", "dataset.name", "optim.name", "optim.rho")
#: Grid keys a run id leaves out unless ids would collide: a dataset's pin names the file that
#: dataset.name already names (a sweep pins each dataset of its grid this way).
UNNAMED_KEYS = ("dataset.sha256",)
# No source here: load_sweep_file and the sweep CLI add the file or flag.
_CHECK = Checker()


@dataclasses.dataclass
class SweepSpec:
    """What to run: a base config, a grid of key paths to value lists, and seeds."""

    name: str
    base: dict[str, Any]
    source: str
    grid: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    # A grid given as a list of mappings: the union of their products (`grid` then holds every
    # key with all its values, for labels and reports). Empty: `grid` alone.
    grids: list[dict[str, list[Any]]] = dataclasses.field(default_factory=list)
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    overrides: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    out: str = DEFAULT_OUT
    jobs: int = 1
    launcher: Launcher = dataclasses.field(default_factory=LocalLauncher)
    #: The pilot the budget was chosen from (sweep file or directory; samrl.sweep.pilot).
    pilot: str | None = None

    @property
    def directory(self) -> Path:
        return Path(self.out) / self.name

    @property
    def sweep_dir(self) -> SweepDir:
        return SweepDir(self.directory)

    def base_config(self) -> dict[str, Any]:
        """The base config with the `set` overrides applied (grid and seed not yet)."""
        data = copy.deepcopy(self.base)
        for key, value in self.overrides:
            apply_override(data, key, value)
        return data


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """One run of a sweep: its id, grid point, seed and validated config."""

    run_id: str
    point: dict[str, Any]
    seed: int
    config: Config
    #: The config as written for the worker, unresolved: e.g. `device: auto` is decided on the
    #: machine that trains (a Slurm GPU node), not where the sweep was started.
    raw: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir


# ---------------------------------------------------------------- parsing values


def parse_seeds(value: Any, where: str = "seeds") -> list[int]:
    """`[0, 1, 2]`, `"0-4"`, `"0,2,5-7"` or a single integer -> a list of distinct seeds."""
    items: list[Any]
    if isinstance(value, bool):
        raise ConfigError(f"must be a list of seeds or a range like 0-4, got {value!r}", key=where)
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = []
        for part in value.split(","):
            part = part.strip()
            match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if match:
                lo, hi = int(match.group(1)), int(match.group(2))
                if hi < lo:
                    raise ConfigError(f"empty seed range '{part}'", key=where)
                items.extend(range(lo, hi + 1))
            elif re.fullmatch(r"\d+", part):
                items.append(int(part))
            else:
                raise ConfigError(
                    f"expects seeds like 0-4 or 0,1,2 (non-negative integers), got '{value}'",
                    key=where,
                )
    elif isinstance(value, list):
        items = value
    else:
        raise ConfigError(f"must be a list of seeds or a range like 0-4, got {value!r}", key=where)
    if not items:
        raise ConfigError("needs at least one seed", key=where)
    for seed in items:
        _CHECK.integer(seed, where, 0, expected="non-negative integer seeds")
    if len(set(items)) != len(items):
        raise ConfigError(f"repeated seed in {items}", key=where)
    return list(items)


def split_values(text: str) -> list[str]:
    """Split `a,b,[c,d]` at top-level commas (brackets and quotes keep their commas)."""
    parts: list[str] = []
    depth, quote, current = 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_grid_flag(text: str, flag: str = "--grid") -> tuple[str, list[Any]]:
    """`--grid optim.rho=0,0.05` -> ("optim.rho", [0, 0.05]); values typed as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not raw.strip() or not KEY_PATH.fullmatch(key):
        raise ConfigError(f"{flag} expects key.path=v1,v2,..., got '{text}'")
    values = []
    for item in split_values(raw):
        try:
            values.append(load_yaml(item) if item else None)
        except yaml.YAMLError:
            values.append(item)
    return key, values


def parse_only_flags(texts: tuple[str, ...], spec: SweepSpec) -> dict[str, list[Any]]:
    """`--only dataset.name=hopper-medium --only optim.name=adam` -> the grid values a run must
    have to be launched. Each key must be a grid key of the sweep and each value one of its
    values, so a typo is an error rather than an empty selection."""
    only: dict[str, list[Any]] = {}
    for text in texts:
        key, values = parse_grid_flag(text, "--only")
        if key in only:
            raise ConfigError(f"--only {key} given twice; list every value in one flag")
        if key not in spec.grid:
            keys = ", ".join(spec.grid) or "none"
            raise ConfigError(f"--only {key}: not a grid key of sweep {spec.name} ({keys})")
        for value in values:
            if value not in spec.grid[key]:
                known = ", ".join(format_value(v) for v in spec.grid[key])
                raise ConfigError(
                    f"--only {key}={format_value(value)}: not a value of that grid axis ({known})"
                )
        only[key] = values
    return only


def matches(plan: RunPlan, only: dict[str, list[Any]]) -> bool:
    """Whether a run's grid point has one of the selected values on every `--only` key."""
    return all(key in plan.point and plan.point[key] in values for key, values in only.items())


def parse_set_entries(value: Any, where: str) -> list[tuple[str, Any]]:
    """A sweep file's `set:` as a mapping {key.path: value} or a list of 'key=value' strings."""
    if value is None:
        return []
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            parse_override(f"{key}=0")  # validates the key path
            out.append((str(key), item))
        return out
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [parse_override(v) for v in value]
    raise ConfigError(
        "must be a mapping {key.path: value} or a list of 'key.path=value' strings", key=where
    )


# ---------------------------------------------------------------- checking a spec


def check_grids(grid: Any, where: str = "grid") -> tuple[dict[str, list[Any]], list[dict]]:
    """(merged grid, grids): a mapping is one grid; a list of mappings is the union of their
    products, e.g. SAM per network x rho plus one Adam point that has no rho to vary."""
    if not isinstance(grid, list):
        return check_grid(grid, where), []
    if not grid or not all(isinstance(g, dict) for g in grid):
        raise _CHECK.fail(where, "a list grid must hold mappings {key.path: [values]}")
    grids = [check_grid(g, f"{where}[{i}]") for i, g in enumerate(grid)]
    merged: dict[str, list[Any]] = {}
    for g in grids:
        for key, values in g.items():
            seen = [json.dumps(v, sort_keys=True, default=str) for v in merged.get(key, [])]
            merged.setdefault(key, []).extend(
                v for v in values if json.dumps(v, sort_keys=True, default=str) not in seen
            )
    return merged, grids


def check_grid(grid: Any, where: str = "grid") -> dict[str, list[Any]]:
    grid = _CHECK.mapping(grid, where, expected="a mapping {key.path: [values]}")
    out: dict[str, list[Any]] = {}
    for key, values in grid.items():
        key = _CHECK.key_path(str(key), f"{where}.{key}")
        for reserved in RESERVED_KEYS:
            if key == reserved or key.startswith(reserved + "."):
                hint = "use seeds" if reserved == "train.seed" else "the sweep sets it"
                raise _CHECK.fail(f"{where}.{key}", f"cannot be a grid key ({hint})")
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise _CHECK.fail(f"{where}.{key}", "needs at least one value")
        canonical = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(canonical)) != len(canonical):
            raise _CHECK.fail(f"{where}.{key}", f"repeated value in {values}")
        out[key] = list(values)
    return out


def check_name(name: Any, where: str = "name") -> str:
    return _CHECK.name(name, where)


def check_jobs(jobs: Any, where: str = "jobs") -> int:
    return _CHECK.integer(jobs, where, minimum=1, expected="an integer >= 1")


# ---------------------------------------------------------------- loading


def load_sweep_file(path: str | Path) -> SweepSpec:
    """A sweep YAML file: `base:` (a config path relative to it) or an inline `config:`."""
    path = Path(path)
    data = read_yaml(path)
    source = str(path)
    try:
        _CHECK.known_keys(data, SWEEP_KEYS, "", "sweep key")
        if ("base" in data) == ("config" in data):
            raise _CHECK.fail(
                None, "give either 'base: <config file>' or an inline 'config: {...}' (exactly one)"
            )
        if "base" in data:
            base_path = _CHECK.string(data["base"], "base", expected="a config file path")
            config_path = (path.parent / base_path).resolve()
            if not config_path.is_file():
                raise _CHECK.fail("base", f"config file {config_path} not found")
            base = read_yaml(config_path)
        else:
            base = data["config"]
            if not isinstance(base, dict):
                raise _CHECK.fail("config", "must be a mapping of config sections")
        return SweepSpec(
            name=check_name(data.get("name", path.stem)),
            base=copy.deepcopy(base),
            source=source,
            grid=(grids := check_grids(data.get("grid")))[0],
            grids=grids[1],
            seeds=parse_seeds(data.get("seeds", [0])),
            overrides=parse_set_entries(data.get("set"), "set"),
            out=_CHECK.string(data.get("out", DEFAULT_OUT), "out"),
            jobs=check_jobs(data.get("jobs", 1)),
            launcher=parse_launcher(data.get("launcher"), check=_CHECK),
            pilot=_pilot_path(path, data.get("pilot")),
        )
    except ConfigError as exc:
        raise ConfigError(exc.message, key=exc.key, source=exc.source or source) from None


def _pilot_path(path: Path, value: Any) -> str | None:
    """The `pilot:` entry as a path (relative to the sweep file), None without one."""
    if value is None:
        return None
    return str(path.parent / _CHECK.string(value, "pilot", expected="a sweep file or directory"))


def spec_from_config(path: str | Path) -> SweepSpec:
    """A sweep around one experiment config (`samrl sweep --config x.yaml`)."""
    path = Path(path)
    base = read_yaml(path)
    name = Checker(str(path)).name(base.get("name") or path.stem, "name")
    return SweepSpec(name=name, base=base, source=str(path))


# ---------------------------------------------------------------- expansion


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product, in the grid's key order (the last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}".replace("e+", "e")  # 1e10, not 1e+10 (run ids drop '+')
    if isinstance(value, list | tuple):
        return "+".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "none" if value is None else str(value)


def point_text(point: dict[str, Any]) -> str:
    """`optim.rho=0.05 algo.name=cql` for messages and listings."""
    return " ".join(f"{k}={format_value(v)}" for k, v in point.items()) or "(no grid)"


def _token(key: str, value: Any, labels: dict[str, str]) -> str:
    text = format_value(value)
    label = labels[key]
    return (
        f"{label}{text}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else (f"{label}-{text}")
    )


def _labels(keys: list[str]) -> dict[str, str]:
    """The last part of each key path, or the whole path where last parts collide."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {
        k: (tail if last.count(tail) == 1 else k.replace(".", "-"))
        for k, tail in zip(keys, last, strict=True)
    }


def safe_id(text: str) -> str:
    return as_name(text).strip("-") or "run"


def _resolve(spec: SweepSpec, raw: dict[str, Any], point: dict[str, Any], seed: int) -> Config:
    where = f"{spec.source} (grid point {point_text(point)}, seed {seed})"
    if not point:
        where = f"{spec.source} (seed {seed})"
    return Checker(where).rebased(lambda: resolve(raw, source=spec.source, default_name=spec.name))


def expand(spec: SweepSpec) -> list[RunPlan]:
    """Every (grid point, seed) as a validated config writing into the sweep directory.

    Raises ConfigError naming the grid point and key of the first invalid config, before
    anything runs. run_ids: samrl's default `<algo>_<dataset>_<optim>[-rho]` plus a token for
    each other grid key, then `_s<seed>`; made unique by adding every grid key if needed.
    """
    base = spec.base_config()
    sweep_dir = SweepDir(spec.directory.resolve())
    points = [p for g in (spec.grids or [spec.grid]) for p in grid_points(g)]
    labels = _labels(list(spec.grid))
    # A key with one value in the whole sweep is a setting, not an axis (e.g. one algorithm's
    # own parameter in its own grid): it is named in a run id only where ids would collide.
    axes = {k for k, values in spec.grid.items() if len(values) > 1}
    drafts: list[tuple[dict[str, Any], Config, int, dict[str, Any], str, str]] = []
    for point in points:
        for seed in spec.seeds:
            raw = copy.deepcopy(base)
            at_point = Checker(f"{spec.source} (grid point {point_text(point)})")
            for key, value in point.items():
                at_point.rebased(lambda: apply_override(raw, key, copy.deepcopy(value)))  # noqa: B023
            apply_override(raw, "train.seed", seed)
            raw.pop("output", None)
            raw.setdefault("name", spec.name)  # the worker reads this file, not the sweep's
            raw["sweep"] = {"name": spec.name, "point": copy.deepcopy(point)}
            config = _resolve(spec, raw, point, seed)
            stem = config.run_id.removesuffix(f"_s{seed}")
            sam = config.optim.sharpness_aware
            extra = [
                k
                for k in point
                if (k not in (*RUN_ID_KEYS, *UNNAMED_KEYS) and k in axes)
                or (k == "optim.rho" and not sam)
            ]
            short = "_".join([stem, *(_token(k, point[k], labels) for k in extra)])
            full = "_".join([stem, *(_token(k, point[k], labels) for k in point)])
            drafts.append((raw, config, seed, point, short, full))
    counts: dict[str, int] = {}
    for _, _, seed, _, short, _ in drafts:
        counts[f"{short}_s{seed}"] = counts.get(f"{short}_s{seed}", 0) + 1
    plans: list[RunPlan] = []
    seen: set[str] = set()
    for raw, config, seed, point, short, full in drafts:
        stem = short if counts[f"{short}_s{seed}"] == 1 else full
        run_id = safe_id(f"{stem}_s{seed}")
        n = 2
        while run_id in seen:  # values that format alike (e.g. 1 and "1")
            run_id = safe_id(f"{stem}-{n}_s{seed}")
            n += 1
        seen.add(run_id)
        # Each config is resolved once here; the explicit run directory replaces the
        # default `<output.dir>/<name>/<run_id>`, so the experiment's name stays its own.
        output = {"run_id": run_id, "run_dir": str(sweep_dir.run(run_id).path)}
        raw["output"] = dict(output)
        plans.append(RunPlan(run_id, point, seed, config.with_output(**output), raw))
    return plans
