"""Experiment config: YAML loading, `--set` overrides, complete validation, resolution.

Every problem is a ConfigError naming the file and the key path, raised before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from samrl.errors import ConfigError, DatasetError, unknown_name
from samrl.sam.variants import OPTIMIZER_NAMES, names_doc, param_docs
from samrl.validate import KEY_PATH, Checker, describe

# Every key a config may hold, with its default (None: optional, no default).
SCHEMA: dict[str, dict[str, Any]] = {
    "algo": {"name": None, "params": {}},
    "dataset": {"name": None, "size": None, "seed": 0, "test_fraction": 0.0},
    "optim": {
        "name": "adam",
        "base": None,
        "rho": 0.05,
        "networks": None,
        "params": {},
        "probe": None,
    },
    "train": {
        "n_steps": 10000,
        "n_steps_per_epoch": 1000,
        "seed": 0,
        "device": "auto",
        "eval_episodes": 5,
        "save_interval": 1,
        "threads": "auto",
    },
    "output": {"dir": "runs", "run_id": None, "run_dir": None, "loggers": ["file"]},
    "analysis": {"hessian": None},
}
TOP_LEVEL = ("name", *SCHEMA)
PROBE_KEYS = {"rho": 0.05, "every": 10, "networks": None}
HESSIAN_KEYS = {
    "every_epochs": 1,
    "networks": None,
    "top_k": 1,
    "n_transitions": 1024,
    "trace_samples": 0,
}

#: What each key means: the one place a key is documented (`samrl config keys` and the
#: README's key table are printed from it; tests/test_config_keys.py keeps them complete).
KEY_DOCS: dict[str, str] = {
    "name": "experiment name: the folder under output.dir (default: the config file's name)",
    "algo.name": "a d3rlpy algorithm in snake_case (cql, iql, td3_plus_bc, ...) or combo",
    "algo.params": "keyword arguments of d3rlpy's <Algo>Config (batch_size, gamma, ...)",
    "dataset.name": "built-in name, d4rl:<name>, d3rlpy:<name>, minari:<id> or file:<path>",
    "dataset.size": "transitions to generate (built-in datasets; default per dataset)",
    "dataset.seed": "seed of the generated data (built-in datasets)",
    "dataset.test_fraction": "share of episodes held out for TD-error evaluation (0-0.9)",
    "optim.name": names_doc(),  # the variant registry (samrl/sam/variants.py)
    "optim.base": "the base optimizer: adam, sgd, adamw or rmsprop (default: the algorithm's own)",
    "optim.rho": "SAM's radius (>= 0; 0 is the base optimizer bitwise)",
    "optim.networks": "networks SAM applies to (default: every network optimizer)",
    "optim.params": "keyword arguments of the base optimizer (betas, weight_decay, ...)",
    "optim.probe": "measure sharpness at a fixed radius without stepping with it",
    "optim.probe.rho": "the probe's radius",
    "optim.probe.every": "probe every this many updates",
    "optim.probe.networks": "networks probed (default: every network optimizer)",
    **param_docs(),  # variant parameters (k, alpha, m): documented by their variant classes
    "optim.rho_schedule": "constant, linear_warmup or lr_proportional",
    "optim.warmup_steps": "linear_warmup: updates until rho is reached",
    "optim.rho_min": "the schedule's smallest rho",
    "optim.weight_decay_mode": "decoupled (after the SAM gradient) or loss (inside the loss)",
    "train.n_steps": "gradient updates in total",
    "train.n_steps_per_epoch": "updates per epoch (one CSV row, checkpoint and evaluation each)",
    "train.seed": "seed of initial weights and minibatch order",
    "train.device": "auto, cpu, cuda or cuda:N",
    "train.eval_episodes": "environment episodes per evaluation (0: none)",
    "train.save_interval": "save d3rlpy's model_<step>.d3 every this many epochs",
    "train.threads": "torch threads (auto: 1 or all, whichever measures faster, rechecked)",
    "output.dir": "parent folder of the experiment's run directories",
    "output.run_id": "the run's folder name (default: <algo>_<dataset>_<optim>[-rho]_s<seed>)",
    "output.run_dir": "the exact run directory (sweeps set it; default "
    "<output.dir>/<name>/<run_id>)",
    "output.loggers": "where metrics also go: file, tensorboard, wandb",
    "analysis.hessian": "Hessian eigenvalues and trace during training (hessian.csv)",
    "analysis.hessian.every_epochs": "measure every this many epochs",
    "analysis.hessian.networks": "networks measured (default: all)",
    "analysis.hessian.top_k": "largest eigenvalues computed",
    "analysis.hessian.n_transitions": "training transitions the Hessian is measured on",
    "analysis.hessian.trace_samples": "Hutchinson samples of the trace (0: no trace)",
}


def key_table() -> list[tuple[str, Any, str]]:
    """(key path, default, meaning) of every config key, in schema order."""
    from samrl.sam.variants import COMMON_KEYS, OPTIMIZER_NAMES

    defaults: dict[str, Any] = {"name": None}
    for section, keys in SCHEMA.items():
        for key, default in keys.items():
            defaults[f"{section}.{key}"] = default
            nested = {"optim.probe": PROBE_KEYS, "analysis.hessian": HESSIAN_KEYS}
            for sub, value in nested.get(f"{section}.{key}", {}).items():
                defaults[f"{section}.{key}.{sub}"] = value
    variant_keys = dict.fromkeys(k for spec in OPTIMIZER_NAMES.values() for k in spec.keys)
    for key in [*(k for k in variant_keys if k not in COMMON_KEYS), *COMMON_KEYS]:
        defaults.setdefault(f"optim.{key}", None)
    docs = {**KEY_DOCS, "optim.name": names_doc(), **param_docs()}  # variants registered since
    return [(key, default, docs.get(key, "")) for key, default in defaults.items()]


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated, resolved experiment config."""

    data: dict[str, Any]
    source: str

    def __getitem__(self, section: str) -> Any:
        return self.data[section]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def run_id(self) -> str:
        return str(self.data["output"]["run_id"])

    @property
    def run_dir(self) -> Path:
        """`output.run_dir` when given (a sweep places each run in its sweep directory), else
        `<output.dir>/<name>/<run_id>`."""
        explicit = self.data["output"].get("run_dir")
        if explicit is not None:
            return Path(explicit)
        return Path(self.data["output"]["dir"]) / self.name / self.run_id

    def with_output(self, **output: Any) -> Config:
        """The same config writing elsewhere (output keys never change results)."""
        data = copy.deepcopy(self.data)
        data["output"].update(output)
        return Config(data, self.source)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False)

    def result_hash(self) -> str:
        """Hash of everything that determines the results (not where they are written)."""
        relevant = {k: v for k, v in self.data.items() if k not in ("output", "name", "sweep")}
        # where and how fast a run computes is not what it computes
        relevant["train"] = {
            k: v for k, v in relevant["train"].items() if k not in ("device", "threads")
        }
        text = json.dumps(relevant, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading every float a person writes as a float.

    PyYAML implements YAML 1.1, where `3e-4` and `1E5` (no dot in the mantissa) are strings;
    YAML 1.2, Python and every config reader a person has met read them as numbers.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """YAML text as Python values (safe; `3e-4` is a float)."""
    return yaml.load(text, Loader=_Loader)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found", source=str(path))
    try:
        data = load_yaml(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"malformed YAML: {where}{exc.problem}", source=str(path)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"malformed YAML: {exc}", source=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of sections", source=str(path))
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """`key.path=value`, the value typed as YAML (`optim.rho=0.1`, `optim.networks=[critic]`)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not KEY_PATH.fullmatch(key):
        raise ConfigError(f"--set expects key.path=value, got '{text}'")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"cannot set a key inside a {type(child).__name__}", key=".".join(parts[: i + 1])
            )
        node = child
    node[parts[-1]] = value


def load_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    check_dataset: bool = True,
) -> Config:
    data = read_yaml(path)
    for text in overrides:
        key, value = parse_override(text)
        apply_override(data, key, value)
    return resolve(
        data, source=str(path), default_name=Path(path).stem, check_dataset=check_dataset
    )


# ---------------------------------------------------------------- validation


def resolve(
    raw: dict[str, Any],
    *,
    source: str,
    default_name: str = "experiment",
    check_dataset: bool = True,
) -> Config:
    """Validate every key and fill in defaults; raises ConfigError on the first problem."""
    c = Checker(source)
    c.known_keys(raw, (*TOP_LEVEL, "sweep"), "")
    data: dict[str, Any] = {"name": raw.get("name", default_name)}
    data["name"] = c.name(c.string(data["name"], "name"), "name")
    for section, defaults in SCHEMA.items():
        given = c.mapping(raw.get(section), section)
        if section != "optim":  # optim's variant keys depend on optim.name: _check_optim
            c.known_keys(given, defaults, section)
        merged = copy.deepcopy(defaults)
        merged.update(copy.deepcopy(given))
        data[section] = merged
    if "sweep" in raw:
        data["sweep"] = copy.deepcopy(raw["sweep"])

    from samrl.algos import algo_facts

    algo = data["algo"]
    if algo["name"] is None:
        raise c.fail("algo.name", "missing; name a d3rlpy algorithm, e.g. cql, iql, td3_plus_bc")
    facts = c.rebased(lambda: algo_facts(c.string(algo["name"], "algo.name")))
    algo["params"] = c.mapping(algo["params"], "algo.params")

    _check_dataset(c, data["dataset"], facts, check_dataset)
    _check_train(c, data["train"])
    _check_optim(c, data["optim"], facts)
    _check_algo_params(c, data, facts)
    _check_analysis(c, data["analysis"], facts)

    out = data["output"]
    out["dir"] = c.string(out["dir"], "output.dir")
    if Path(out["dir"]).exists() and not Path(out["dir"]).is_dir():
        raise c.fail("output.dir", f"{out['dir']} is a file, not a directory")
    if out["run_dir"] is not None:
        out["run_dir"] = c.string(out["run_dir"], "output.run_dir")
    from samrl.trackers import check_loggers

    out["loggers"] = c.rebased(lambda: check_loggers(out["loggers"]))
    if out["run_id"] is None:
        out["run_id"] = default_run_id(data)
    else:
        c.name(c.string(out["run_id"], "output.run_id"), "output.run_id")
    return Config(data, source)


def _check_dataset(c: Checker, ds: dict[str, Any], facts: Any, check_dataset: bool) -> None:
    if ds["name"] is None:
        raise c.fail(
            "dataset.name", "missing; e.g. pendulum-medium, cartpole-replay, d4rl:hopper-medium-v2"
        )
    c.string(ds["name"], "dataset.name")
    if ds["size"] is not None:
        c.integer(ds["size"], "dataset.size", minimum=1)
    c.integer(ds["seed"], "dataset.seed", minimum=0)
    ds["test_fraction"] = c.number(ds["test_fraction"], "dataset.test_fraction", 0.0, 0.9)
    if not check_dataset:
        return
    from samrl.data import describe_dataset
    from samrl.data.sources import check_available

    try:
        info = describe_dataset(ds["name"])
        # d4rl:/d3rlpy: on disk, or downloadable now (they are fetched when training starts)
        check_available(ds["name"])
    except DatasetError as exc:
        raise c.fail("dataset.name", str(exc)) from None
    if info.kind == "builtin":
        _check_generated(c, ds)
    if info.discrete != facts.discrete:
        kind = "discrete" if facts.discrete else "continuous"
        other = "discrete" if info.discrete else "continuous"
        raise c.fail(
            "algo.name",
            f"'{facts.name}' is a {kind}-action algorithm but dataset "
            f"'{ds['name']}' has {other} actions",
        )


def _check_generated(c: Checker, ds: dict[str, Any]) -> None:
    """MuJoCo built-ins need hours of SAC training: an explicit `samrl data make` step (not
    the random level: an untrained policy's rollouts are generated on first use)."""
    from samrl.data.builtin import BUILTINS, cache_path

    builtin = BUILTINS[ds["name"]]
    size = ds["size"] or builtin.default_size
    needs_training = builtin.is_mujoco and builtin.level != "random"
    if needs_training and not cache_path(builtin, size, ds["seed"]).exists():
        raise c.fail(
            "dataset.name",
            f"{ds['name']} (size {size}, seed {ds['seed']}) is not generated yet; run "
            f"`samrl data make {ds['name']} --size {size} --seed {ds['seed']}` first (it trains "
            "SAC behaviour policies: hours on a CPU)",
        )


def _check_train(c: Checker, train: dict[str, Any]) -> None:
    c.integer(train["n_steps"], "train.n_steps", minimum=1)
    c.integer(train["n_steps_per_epoch"], "train.n_steps_per_epoch", minimum=1)
    if train["n_steps_per_epoch"] > train["n_steps"]:
        raise c.fail(
            "train.n_steps_per_epoch",
            f"must be <= train.n_steps ({train['n_steps']}), got {train['n_steps_per_epoch']}",
        )
    c.integer(train["seed"], "train.seed", minimum=0)
    c.integer(train["eval_episodes"], "train.eval_episodes", minimum=0)
    c.integer(train["save_interval"], "train.save_interval", minimum=1)
    train["device"] = resolve_device(c, train["device"])
    threads = train["threads"]
    if threads != "auto":
        c.integer(threads, "train.threads", minimum=1, expected="auto or an integer >= 1")


def resolve_device(c: Checker, device: Any) -> str:
    import torch

    device = c.string(device, "train.device")
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not match:
        raise c.fail("train.device", f"must be auto, cpu, cuda or cuda:N, got '{device}'")
    if not torch.cuda.is_available():
        raise c.fail(
            "train.device",
            f"'{device}' requested but CUDA is not available here "
            "(torch reports no GPU); use cpu or auto",
        )
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise c.fail(
            "train.device",
            f"'{device}' requested but only {torch.cuda.device_count()} CUDA device(s) exist",
        )
    return f"cuda:{index}"


def _check_optim(c: Checker, optim: dict[str, Any], facts: Any) -> None:
    name = c.string(optim["name"], "optim.name")
    if name not in OPTIMIZER_NAMES:
        raise c.fail("optim.name", unknown_name("optimizer", name, OPTIMIZER_NAMES))
    spec = OPTIMIZER_NAMES[name]
    # Variant parameters (e.g. looksam's k) live next to rho.
    extra = {k: v for k, v in optim.items() if k not in SCHEMA["optim"]}
    for key in extra:
        if key not in spec.keys:
            allowed = [*SCHEMA["optim"], *spec.keys]
            raise c.fail(f"optim.{key}", unknown_name(f"key for optimizer '{name}'", key, allowed))
    if optim["base"] is not None:
        base = c.string(optim["base"], "optim.base")
        from samrl.build import BASE_FACTORIES

        if base not in BASE_FACTORIES:
            raise c.fail("optim.base", unknown_name("base optimizer", base, BASE_FACTORIES))
    optim["params"] = c.mapping(optim["params"], "optim.params")
    optim["rho"] = c.number(optim["rho"], "optim.rho", minimum=0.0)
    optim["networks"] = networks = _network_list(c, optim["networks"], facts, "optim.networks")
    for net, owner in facts.shares_factory.items():
        if (net in networks) != (owner in networks):
            raise c.fail(
                "optim.networks",
                f"in {facts.name} the {net} optimizer is built "
                f"from the {owner}'s factory (d3rlpy 2.8.1); list both or neither",
            )
    probe = optim["probe"]
    if probe is not None:
        # Beside SAM too: sharpness at one fixed radius makes every run of a rho sweep
        # comparable (columns <net>_rho<r>_sharpness).
        probe = c.mapping(probe, "optim.probe")
        c.known_keys(probe, PROBE_KEYS, "optim.probe")
        merged = {**PROBE_KEYS, **probe}
        merged["rho"] = c.number(merged["rho"], "optim.probe.rho", minimum=0.0)
        c.integer(merged["every"], "optim.probe.every", minimum=1)
        if merged["networks"] is None and not spec.sharpness_aware:
            merged["networks"] = list(networks)  # Adam runs: optim.networks, as before
        merged["networks"] = _network_list(c, merged["networks"], facts, "optim.probe.networks")
        for net, owner in facts.shares_factory.items():
            if (net in merged["networks"]) != (owner in merged["networks"]):
                raise c.fail(
                    "optim.probe.networks",
                    f"in {facts.name} the {net} optimizer is built "
                    f"from the {owner}'s factory (d3rlpy 2.8.1); list both or neither",
                )
        optim["probe"] = merged
    # Building the factories validates base params and variant parameters.
    from samrl.build import optimizer_factories

    c.rebased(lambda: optimizer_factories(optim, facts, default_factories=None))


def _check_algo_params(c: Checker, data: dict[str, Any], facts: Any) -> None:
    from samrl.build import algo_config

    config = c.rebased(lambda: algo_config(facts, data["algo"]["params"], data["optim"]))
    batch_size = getattr(config, "batch_size", None)
    if batch_size and OPTIMIZER_NAMES[data["optim"]["name"]].sharpness_aware:
        from samrl.sam.variants import check_batch_size  # msam: m must divide it

        c.rebased(lambda: check_batch_size(data["optim"], batch_size))
    _check_max_timestep(c, config, data["dataset"]["name"])
    uses_engine = OPTIMIZER_NAMES[data["optim"]["name"]].sharpness_aware or data["optim"]["probe"]
    if (
        getattr(config, "compile_graph", False)
        and "cuda" in data["train"]["device"]
        and uses_engine
    ):
        raise c.fail(
            "algo.params.compile_graph",
            "compile_graph=True on CUDA is not supported "
            "with SAM or a sharpness probe (unverified on GPU); set it to false",
        )


def _check_max_timestep(c: Checker, config: Any, dataset: str) -> None:
    """Decision transformers embed the timestep: episodes longer than max_timestep crash them."""
    max_timestep = getattr(config, "max_timestep", None)
    if max_timestep is None:
        return
    import gymnasium

    from samrl.data import describe_dataset

    try:
        env_id = describe_dataset(dataset).env_id
        horizon = gymnasium.spec(env_id).max_episode_steps if env_id else None
    except (DatasetError, gymnasium.error.Error):
        return
    if horizon is not None and max_timestep < horizon:
        raise c.fail(
            "algo.params.max_timestep",
            f"must be >= the episode length of {env_id} ({horizon}), got {max_timestep}",
        )


def _check_analysis(c: Checker, analysis: dict[str, Any], facts: Any) -> None:
    hessian = analysis.get("hessian")
    if hessian is None:
        return
    hessian = c.mapping(hessian, "analysis.hessian")
    c.known_keys(hessian, HESSIAN_KEYS, "analysis.hessian")
    merged = {**HESSIAN_KEYS, **hessian}
    c.integer(merged["every_epochs"], "analysis.hessian.every_epochs", minimum=1)
    c.integer(merged["top_k"], "analysis.hessian.top_k", minimum=1)
    c.integer(merged["n_transitions"], "analysis.hessian.n_transitions", minimum=1)
    c.integer(merged["trace_samples"], "analysis.hessian.trace_samples", minimum=0)
    merged["networks"] = _network_list(c, merged["networks"], facts, "analysis.hessian.networks")
    analysis["hessian"] = merged


def _network_list(c: Checker, value: Any, facts: Any, key: str) -> list[str]:
    """A list of the algorithm's network names (default: all of them), without repeats."""
    if value is None:
        return list(facts.networks)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise c.fail(key, f"must be a non-empty list, got {describe(value)}")
    value = [facts.canonical_network(net) for net in value]  # `loss`: a single net's old name
    for i, net in enumerate(value):
        if net in facts.scalars:
            raise c.fail(
                f"{key}[{i}]",
                f"'{net}' is a scalar optimized inside another loss; it always uses the base "
                "optimizer, not SAM",
            )
        if net not in facts.networks:
            raise c.fail(
                f"{key}[{i}]", unknown_name(f"network for {facts.name}", str(net), facts.networks)
            )
    return list(dict.fromkeys(value))


def default_run_id(data: dict[str, Any]) -> str:
    optim = data["optim"]
    label = optim["name"]
    if OPTIMIZER_NAMES[label].sharpness_aware:
        label += f"-rho{optim['rho']:g}"
    dataset = str(data["dataset"]["name"])
    if dataset.startswith("file:"):
        dataset = "file-" + Path(dataset[5:]).stem
    run_id = f"{data['algo']['name']}_{dataset}_{label}_s{data['train']['seed']}"
    return re.sub(r"[^\w.-]+", "-", run_id)
