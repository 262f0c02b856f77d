"""The one resolver: raw YAML values -> a validated Config with every default filled in.

Every problem is a ConfigError naming the file and the key path, raised before any work starts.
Value rules come from samrl.validate; what is specific to a key (a network of this algorithm,
a dataset that exists, parameters d3rlpy accepts) is checked here, by asking the owner:
`samrl.algos` (networks), `samrl.data` (datasets), `samrl.config.build` (d3rlpy keyword arguments,
which builds the optimizer factories; samrl.sam checks the SAM variant's parameters there).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samrl.config.sections import (
    RUN_RECORD,
    SECTIONS,
    AlgoSection,
    AnalysisSection,
    AttackerSection,
    Config,
    CorruptionSection,
    DatasetSection,
    HessianSection,
    OptimSection,
    OutputSection,
    ProbeSection,
    Section,
    TrainSection,
)
from samrl.config.yamlio import apply_override, parse_override, read_yaml
from samrl.errors import ConfigError, DatasetError
from samrl.sam.names import (
    OPTIMIZER_NAMES,
    check_batch_size,  # msam: m must divide it
)
from samrl.validate import Checker, as_name, describe

if TYPE_CHECKING:
    from d3rlpy.optimizers import OptimizerFactory

#: Top-level keys: the experiment name, the sections, and what a sweep records (`sweep`).
TOP_LEVEL = ("name", *SECTIONS, "sweep")
#: `dataset.seed` / `dataset.corruption.seed` value tying the draw to the run's train.seed.
RUN_SEED = "run"


LOGGERS = ("file", "tensorboard", "wandb")
# The module each d3rlpy adapter imports, and the samrl extra that installs it.
REQUIRED_MODULE = {"tensorboard": "tensorboardX", "wandb": "wandb"}


def check_loggers(value: Any, key: str = "output.loggers") -> list[str]:
    """The validated logger list, `file` first; a missing package is a ConfigError."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"must be a list of {', '.join(LOGGERS)}, got {value!r}", key=key)
    for name in value:
        Checker().choice(name, key, LOGGERS, "logger")  # `unknown logger 'x' (did you mean ...`
        module = REQUIRED_MODULE.get(name)
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"{name} needs the {module} package: pip install 'samrl[{name}]'", key=key
            )
    return ["file", *dict.fromkeys(v for v in value if v != "file")]


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
    name = c.name(c.string(raw.get("name", default_name), "name"), "name")
    given: dict[str, dict[str, Any]] = {}
    for section, cls in SECTIONS.items():
        given[section] = copy.deepcopy(c.mapping(raw.get(section), section))
        if cls is not OptimSection:  # optim's variant keys depend on optim.name: _optim
            c.known_keys(given[section], cls.keys(), section)

    from samrl.algos import algo_facts

    algo_name = given["algo"].get("name")
    if algo_name is None:
        raise c.fail("algo.name", "missing; name a d3rlpy algorithm, e.g. cql, iql, td3_plus_bc")
    facts = c.rebased(lambda: algo_facts(c.string(algo_name, "algo.name")))
    algo = AlgoSection(algo_name, c.mapping(given["algo"].get("params"), "algo.params"))

    train = _train(c, given["train"])
    dataset = _dataset(c, given["dataset"], facts, check_dataset, train.seed)
    optim, factories = _optim(c, given["optim"], facts)
    built = _check_algo_params(c, facts, algo, dataset, optim, train, factories)
    analysis = AnalysisSection(_hessian(c, given["analysis"].get("hessian"), facts))
    _check_corruption_paths(c, facts, dataset, analysis)
    output = _output(c, given["output"])
    if output.run_id is None:
        output = dataclasses.replace(output, run_id=default_run_id(algo, dataset, optim, train))
    sweep = copy.deepcopy(raw.get("sweep"))
    return Config(name, algo, dataset, optim, train, output, analysis, sweep, source, built)


def _merged(cls: type[Section], given: dict[str, Any]) -> dict[str, Any]:
    """The section's defaults with the given keys on top."""
    return {**cls.defaults(), **given}


def run_seed(c: Checker, value: Any, key: str, seed: int) -> Any:
    """`run` (RUN_SEED) stands for the run's own train.seed: the data draw (or the corruption
    draw) then varies with the seed, so confidence intervals over seeds include it (DESIGN.md
    section 8). The resolved config records the number, so a run's hash is the same as with
    the seed written out."""
    if isinstance(value, str):
        if value != RUN_SEED:
            raise c.fail(key, f"must be a non-negative integer or '{RUN_SEED}', got {value!r}")
        return seed
    return value


def _dataset(
    c: Checker, given: dict[str, Any], facts: Any, check: bool, seed: int
) -> DatasetSection:
    ds = _merged(DatasetSection, given)
    ds["seed"] = run_seed(c, ds["seed"], "dataset.seed", seed)
    if isinstance(ds["corruption"], dict):
        ds["corruption"] = {**ds["corruption"]}
        cor_seed = ds["corruption"].get("seed")
        if cor_seed is not None:
            ds["corruption"]["seed"] = run_seed(c, cor_seed, "dataset.corruption.seed", seed)
    if ds["name"] is None:
        raise c.fail(
            "dataset.name", "missing; e.g. pendulum-medium, cartpole-replay, d4rl:hopper-medium-v2"
        )
    c.string(ds["name"], "dataset.name")
    if ds["size"] is not None:
        c.integer(ds["size"], "dataset.size", minimum=1)
    c.integer(ds["seed"], "dataset.seed", minimum=0)
    ds["test_fraction"] = c.number(ds["test_fraction"], "dataset.test_fraction", 0.0, 0.9)
    if ds["sha256"] is not None:
        ds["sha256"] = _sha256(c, ds["sha256"])
    if ds["corruption"] is not None:
        ds["corruption"] = _corruption(c, ds["corruption"], ds["seed"], facts)
    section = DatasetSection(**ds)
    if check:
        _check_dataset_exists(c, section, facts)
    return section


def _sha256(c: Checker, value: Any) -> str:
    from samrl.data.provenance import SHA256_PATTERN

    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not SHA256_PATTERN.fullmatch(text):
        raise c.fail(
            "dataset.sha256",
            f"must be 64 hexadecimal digits in quotes (what sha256sum prints), got {value!r}",
        )
    return text


def _corruption(c: Checker, value: Any, dataset_seed: int, facts: Any) -> CorruptionSection:
    """dataset.corruption: RIQL's protocol (samrl/data/corruption.py owns its meaning)."""
    from samrl.data.corruption import FIELDS, MODES, needs_attacker

    given = c.mapping(value, "dataset.corruption")
    c.known_keys(given, CorruptionSection.keys(), "dataset.corruption")
    cor = _merged(CorruptionSection, given)
    c.choice(cor["mode"], "dataset.corruption.mode", MODES, "corruption mode")
    fields = cor["fields"]
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list | tuple) or not fields:
        raise c.fail(
            "dataset.corruption.fields", f"must be a list of fields from {', '.join(FIELDS)}"
        )
    for name in fields:
        c.choice(name, "dataset.corruption.fields", FIELDS, "corrupted field")
    if len(set(fields)) != len(fields):
        raise c.fail("dataset.corruption.fields", f"names a field twice: {list(fields)}")
    # one order whatever the order written: RIQL's (observations, actions, rewards, next)
    cor["fields"] = tuple(f for f in FIELDS if f in fields)
    cor["rate"] = c.number(cor["rate"], "dataset.corruption.rate", 0.0, 1.0)
    cor["scale"] = c.number(cor["scale"], "dataset.corruption.scale", minimum=0.0)
    if cor["scale"] == float("inf"):
        raise c.fail("dataset.corruption.scale", "must be finite, got inf")
    if cor["seed"] is None:
        cor["seed"] = dataset_seed
    c.integer(cor["seed"], "dataset.corruption.seed", minimum=0)
    c.integer(cor["attack_steps"], "dataset.corruption.attack_steps", minimum=1)
    if facts.discrete and "actions" in cor["fields"]:
        raise c.fail(
            "dataset.corruption.fields",
            f"'{facts.name}' trains on discrete actions, which cannot be corrupted "
            "(RIQL's noise is in units of a continuous action's std)",
        )
    adversarial = needs_attacker(cor["mode"], cor["fields"])
    if cor["attacker"] is not None and not adversarial:
        raise c.fail(
            "dataset.corruption.attacker",
            "only adversarial corruption of observations, actions or next_observations "
            "uses an attacker",
        )
    if adversarial:
        if facts.discrete:
            raise c.fail(
                "dataset.corruption.mode",
                "adversarial corruption needs an attacker with continuous actions "
                "(a d3rlpy SAC or TD3 ensemble); this dataset's actions are discrete",
            )
        cor["attacker"] = _attacker(c, cor["attacker"])
    return CorruptionSection(**cor)


def _check_corruption_paths(
    c: Checker, facts: Any, dataset: DatasetSection, analysis: AnalysisSection
) -> None:
    """Corrupted observations or next observations keep next observations in an array of
    their own, which only samrl's sampler serves; what reads transitions from d3rlpy's replay
    buffer instead (COMBO's dynamics model, the Hessian's batches) would see next observations
    derived from the next row (corrupted observations, or clean where they are corrupted)."""
    cor = dataset.corruption
    if cor is None or not {"observations", "next_observations"} & set(cor.fields):
        return
    if facts.buffer_transitions is not None:
        raise c.fail(
            "dataset.corruption.fields",
            f"{facts.name} {facts.buffer_transitions}, which derives next "
            "observations from the next row; corrupted observations or next_observations are "
            "not supported with it",
        )
    if analysis.hessian is not None:
        raise c.fail(
            "analysis.hessian",
            "Hessian batches come from d3rlpy's replay buffer, which derives next observations "
            "from the next row; not supported with corrupted observations or next_observations",
        )


def _attacker(c: Checker, value: Any) -> AttackerSection:
    from samrl.data.corruption import ATTACKER_ALGOS

    given = c.mapping(value, "dataset.corruption.attacker")
    c.known_keys(given, AttackerSection.keys(), "dataset.corruption.attacker")
    at = _merged(AttackerSection, given)
    key = "dataset.corruption.attacker"
    c.choice(at["algo"], f"{key}.algo", ATTACKER_ALGOS, "attacker algorithm")
    c.integer(at["n_critics"], f"{key}.n_critics", minimum=1)
    c.integer(at["n_steps"], f"{key}.n_steps", minimum=1)
    c.integer(at["batch_size"], f"{key}.batch_size", minimum=1)
    units = at["hidden_units"]
    if not isinstance(units, list | tuple) or not units:
        raise c.fail(f"{key}.hidden_units", "must be a list of layer sizes, e.g. [256, 256]")
    for size in units:
        c.integer(size, f"{key}.hidden_units", minimum=1)
    at["hidden_units"] = tuple(units)
    return AttackerSection(**at)


def _check_dataset_exists(c: Checker, ds: DatasetSection, facts: Any) -> None:
    from samrl.data import describe_dataset
    from samrl.data.sources import check_available

    try:
        info = describe_dataset(ds.name)
        # d4rl:/d3rlpy: on disk, or downloadable now (they are fetched when training starts)
        check_available(ds.name)
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
            f"'{ds.name}' has {other} actions",
        )


def _check_generated(c: Checker, ds: DatasetSection) -> None:
    """MuJoCo built-ins that need SAC trained here (hours) are an explicit `samrl data make`
    step; those rolled out from samrl's shipped policies, or from an untrained one (random),
    are generated on first use (minutes)."""
    from samrl.data.builtin import BUILTINS, cache_path, needs_sac_training, sac_training_needed

    builtin = BUILTINS[ds.name]
    size = ds.size or builtin.default_size
    if needs_sac_training(builtin) and not cache_path(builtin, size, ds.seed).exists():
        raise c.fail("dataset.name", sac_training_needed(builtin, size, ds.seed))


def _train(c: Checker, given: dict[str, Any]) -> TrainSection:
    train = _merged(TrainSection, given)
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
    if train["threads"] not in ("auto", "adaptive"):
        c.integer(
            train["threads"], "train.threads", 1, expected="auto, adaptive or an integer >= 1"
        )
    return TrainSection(**train)


def resolve_device(c: Checker, device: Any) -> str:
    """`auto` -> cuda:0 when a GPU is there, else cpu; a CUDA device that exists here."""
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


def _optim(
    c: Checker, given: dict[str, Any], facts: Any
) -> tuple[OptimSection, dict[str, OptimizerFactory]]:
    """optim, and the optimizer factories it makes (building them validates the base params
    and, in samrl.sam, the variant's parameters)."""
    optim = _merged(OptimSection, given)
    name = c.string(optim["name"], "optim.name")
    c.choice(name, "optim.name", OPTIMIZER_NAMES, "optimizer")
    spec = OPTIMIZER_NAMES[name]
    # Variant parameters (e.g. looksam's k) live next to rho; samrl.sam checks their values.
    own = OptimSection.keys()
    variant = {k: v for k, v in given.items() if k not in own}
    c.known_keys(variant, [*own, *spec.keys], "optim", f"key for optimizer '{name}'")
    if optim["base"] is not None:
        from samrl.config.build import BASE_FACTORIES

        base = c.string(optim["base"], "optim.base")
        c.choice(base, "optim.base", BASE_FACTORIES, "base optimizer")
    params = c.mapping(optim["params"], "optim.params")
    rho = c.number(optim["rho"], "optim.rho", minimum=0.0)
    networks = _networks(c, optim["networks"], facts, "optim.networks")
    probe = None
    if optim["probe"] is not None:
        # Beside SAM too: sharpness at one fixed radius makes every run of a rho sweep
        # comparable (columns <net>_rho<r>_sharpness).
        given_probe = c.mapping(optim["probe"], "optim.probe")
        c.known_keys(given_probe, ProbeSection.keys(), "optim.probe")
        p = _merged(ProbeSection, given_probe)
        p["rho"] = c.number(p["rho"], "optim.probe.rho", minimum=0.0)
        c.integer(p["every"], "optim.probe.every", minimum=1)
        if p["networks"] is None and not spec.sharpness_aware:
            p["networks"] = list(networks)  # Adam runs: optim.networks, as before
        p["networks"] = _networks(c, p["networks"], facts, "optim.probe.networks")
        probe = ProbeSection(**p)
    schedulers = _lr_schedulers(c, optim["lr_scheduler"], facts)
    section = OptimSection(
        name, optim["base"], rho, networks, params, probe, schedulers, variant_params=variant
    )
    from samrl.config.build import optimizer_factories

    return section, c.rebased(lambda: optimizer_factories(section, facts, None))


def _lr_schedulers(c: Checker, value: Any, facts: Any) -> dict[str, Any] | None:
    """optim.lr_scheduler: network -> d3rlpy {type, params}, under the networks' own names
    (samrl.config.build decodes and checks each scheduler)."""
    if value is None:
        return None
    given = c.mapping(value, "optim.lr_scheduler")
    if not given:
        raise c.fail("optim.lr_scheduler", "give a scheduler per network, or leave the key out")
    schedulers: dict[str, Any] = {}
    for name, spec in given.items():
        key = f"optim.lr_scheduler.{name}"
        net = facts.canonical_network(name)  # `loss`: a single network's old name
        c.choice(net, key, facts.networks, f"network for {facts.name}")
        if net in schedulers:
            raise c.fail(key, f"names {net} a second time (loss is its old name)")
        schedulers[net] = copy.deepcopy(spec)
    # d3rlpy builds some optimizers from another network's factory (PLAS's imitator from the
    # critic's): those two train under one scheduler, so they must be given the same one.
    for net, owner in facts.shares_factory.items():
        if schedulers.get(net) != schedulers.get(owner):
            raise c.fail(
                f"optim.lr_scheduler.{net if net in schedulers else owner}",
                f"in {facts.name} the {net} optimizer is built from the {owner}'s factory "
                "(d3rlpy 2.8.1); give both the same scheduler",
            )
    return schedulers


def _check_algo_params(
    c: Checker,
    facts: Any,
    algo: AlgoSection,
    dataset: DatasetSection,
    optim: OptimSection,
    train: TrainSection,
    factories: dict[str, OptimizerFactory],
) -> Any:
    """d3rlpy's <Algo>Config from algo.params and the factories `_optim` built, checked
    against the dataset, the device and the SAM variant's batch-size rules."""
    from samrl.config.build import algo_config

    config = c.rebased(lambda: algo_config(facts, algo.params, optim, factories))
    batch_size = getattr(config, "batch_size", None)
    if batch_size and optim.sharpness_aware:
        values = {"name": optim.name, **optim.variant_params}
        c.rebased(lambda: check_batch_size(values, batch_size))
    _check_max_timestep(c, config, dataset.name)
    uses_engine = optim.sharpness_aware or optim.probe is not None
    if getattr(config, "compile_graph", False) and "cuda" in train.device and uses_engine:
        raise c.fail(
            "algo.params.compile_graph",
            "compile_graph=True on CUDA is not supported "
            "with SAM or a sharpness probe (unverified on GPU); set it to false",
        )
    return config


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


def _hessian(c: Checker, hessian: Any, facts: Any) -> HessianSection | None:
    if hessian is None:
        return None
    hessian = c.mapping(hessian, "analysis.hessian")
    c.known_keys(hessian, HessianSection.keys(), "analysis.hessian")
    h = _merged(HessianSection, hessian)
    c.integer(h["every_epochs"], "analysis.hessian.every_epochs", minimum=1)
    c.integer(h["top_k"], "analysis.hessian.top_k", minimum=1)
    c.integer(h["n_transitions"], "analysis.hessian.n_transitions", minimum=1)
    c.integer(h["trace_samples"], "analysis.hessian.trace_samples", minimum=0)
    # each network's Hessian on its own: no need to list networks sharing a factory together
    h["networks"] = _networks(c, h["networks"], facts, "analysis.hessian.networks", alone=True)
    return HessianSection(**h)


def _output(c: Checker, given: dict[str, Any]) -> OutputSection:
    out = _merged(OutputSection, given)
    out["dir"] = c.string(out["dir"], "output.dir")
    if Path(out["dir"]).exists() and not Path(out["dir"]).is_dir():
        raise c.fail("output.dir", f"{out['dir']} is a file, not a directory")
    if out["run_dir"] is not None:
        out["run_dir"] = c.string(out["run_dir"], "output.run_dir")
    out["loggers"] = tuple(c.rebased(lambda: check_loggers(out["loggers"])))
    if out["run_id"] is not None:
        c.name(c.string(out["run_id"], "output.run_id"), "output.run_id")
    return OutputSection(**out)


def _networks(
    c: Checker, value: Any, facts: Any, key: str, *, alone: bool = False
) -> tuple[str, ...]:
    """A list of the algorithm's network names (default: all of them), without repeats; a
    network whose optimizer is built from another's factory only together with that one
    (unless `alone`: a measurement, not an optimizer)."""
    if value is None:
        return tuple(facts.networks)
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
        c.choice(net, f"{key}[{i}]", facts.networks, f"network for {facts.name}")
    networks = tuple(dict.fromkeys(value))
    for net, owner in () if alone else facts.shares_factory.items():
        if (net in networks) != (owner in networks):
            raise c.fail(
                key,
                f"in {facts.name} the {net} optimizer is built "
                f"from the {owner}'s factory (d3rlpy 2.8.1); list both or neither",
            )
    return networks


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
