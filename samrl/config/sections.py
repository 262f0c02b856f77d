"""The experiment config as typed, frozen sections: every key, its default and its meaning.

This is the one place a key is documented (`samrl config keys` and the README's key table are
printed from it; tests/test_config_keys.py keeps them complete). `samrl.config.resolve` is the
one way to make a Config: it validates every key and fills in every default.

A resolved Config's YAML form (`to_yaml`, a run's config.yaml) and `result_hash` are those of
the plain mapping `to_dict` returns: sections in this order, keys in field order, optim's variant
keys (e.g. looksam's k) after the others in the order given.

Adding a key: a field `name: type = key("meaning", default, check=rule)` on its section here
(`results=False` when it cannot change what a run computes), where `rule` is its value's check
from `samrl/config/rules.py` (`rules.integer(1)`, `rules.optional(...)`, ...: the resolver runs
it, nothing else to edit; a new rule goes there, on the primitives of `samrl.validate`, or, when
it asks samrl.algos or samrl.data, in `samrl/config/owners.py`, named by a string), and the
README table regenerated with `samrl config keys --markdown`. Only a check relating the key to
others goes elsewhere: `samrl/config/crosscheck.py`. Mind the hash: a new key that changes
results is hashed with its default, so every existing run would look made with another config
(a sweep would not resume it); tests/test_config_typed.py re-resolves the committed runs to
catch that.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from samrl.config import rules
from samrl.config.yamlio import dump_yaml
from samrl.networks import LEGACY_SINGLE_NETWORK, SINGLE_NETWORK
from samrl.sam.names import COMMON_KEYS, OPTIMIZER_NAMES, names_doc, param_docs

_MISSING = dataclasses.MISSING


def key(
    doc: Any,
    default: Any = _MISSING,
    *,
    factory: Any = None,
    check: rules.Rule | str | None = None,
    **meta: Any,
) -> Any:
    """A config key: its meaning (`doc`: text, or a function giving it where the meaning
    comes from a registry), default and `check` (a rule of `samrl.config.rules`, or the name
    of one in `samrl.config.owners`, which the resolver runs on the value given or the
    default). `section=<cls>`: the key holds that
    section's keys (or None when left out; the section's keys are checked); `results=False`:
    it does not change what a run computes (left out of the result hash);
    `written_when_set=True`: left out of the written config (and the hash) while None."""
    metadata = {"doc": doc, **meta}
    if check is not None:
        metadata["check"] = check
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _section(cls: type, **meta: Any) -> Any:
    """A top-level section (not itself a key: its keys are)."""
    return dataclasses.field(metadata={"section": cls, **meta})


@dataclasses.dataclass(frozen=True)
class Section:
    """Common to every section: its keys in order, the plain mapping, reading a stored one."""

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if "doc" in f.metadata]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Key -> default (None for a required key)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if "doc" not in f.metadata:
                continue
            if f.default_factory is not _MISSING:
                out[f.name] = _plain(f.default_factory())
            else:
                out[f.name] = None if f.default is _MISSING else _plain(f.default)
        return out

    def to_dict(self, *, results_only: bool = False) -> dict[str, Any]:
        """The section as plain YAML values (lists, not tuples), keys in field order.

        results_only: without the keys that do not change what a run computes.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if results_only and f.metadata.get("results") is False:
                continue
            value = getattr(self, f.name)
            if value is None and f.metadata.get("written_when_set"):
                continue
            if f.metadata.get("flatten"):
                out.update(_plain(value))
            elif "doc" in f.metadata or "section" in f.metadata:
                out[f.name] = _plain(value, results_only)
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Any:
        """A section as a resolved config wrote it (a run's config.yaml): no validation, keys
        this version does not know are ignored, missing ones take their defaults."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            sub = f.metadata.get("section")
            if sub is not None and isinstance(value, Mapping):
                value = sub.from_mapping(value)
            kwargs[f.name] = _frozen(value)
        return cls(**kwargs)


def _plain(value: Any, results_only: bool = False) -> Any:
    if isinstance(value, Section):
        return value.to_dict(results_only=results_only)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    # A user's mapping (algo.params, ...) copied whole: what YAML anchors shared inside it stays
    # shared, so the YAML written is the one written before sections were typed (&id001 ...).
    return copy.deepcopy(value)


def _frozen(value: Any) -> Any:
    """Lists of names as tuples (a frozen section does not change under its user)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return copy.deepcopy(value)


# ---------------------------------------------------------------- the sections


@dataclasses.dataclass(frozen=True)
class AlgoSection(Section):
    name: str = key(
        "a d3rlpy algorithm in snake_case (cql, iql, td3_plus_bc, ...) or combo",
        check="algorithm",
    )
    params: dict[str, Any] = key(
        "keyword arguments of d3rlpy's <Algo>Config (batch_size, gamma, ...)",
        factory=dict,
        check=rules.mapping,
    )


@dataclasses.dataclass(frozen=True)
class AttackerSection(Section):
    algo: str = key(
        "d3rlpy algorithm whose critics the attack minimises: sac or td3",
        "sac",
        check="attacker_algo",
    )
    n_critics: int = key(
        "critics of the attacker's ensemble (RIQL attacks with 10)", 10, check=rules.integer(1)
    )
    n_steps: int = key(
        "updates the attacker is trained for, on the clean data", 10000, check=rules.integer(1)
    )
    hidden_units: tuple[int, ...] = key(
        "hidden layer sizes of the attacker's networks",
        factory=lambda: (256, 256),
        check=rules.layer_sizes,
    )
    batch_size: int = key("the attacker's minibatch size", 256, check=rules.integer(1))


@dataclasses.dataclass(frozen=True)
class CorruptionSection(Section):
    """RIQL's corruption protocol (Yang et al. 2024; samrl/data/corruption.py)."""

    mode: str = key("random or adversarial", "random", check="corruption_mode")
    fields: tuple[str, ...] = key(
        "fields corrupted, each alone: observations, actions, rewards, next_observations "
        "(several: mixed corruption)",
        None,
        check="corrupted_fields",
    )
    rate: float = key(
        "probability that a transition's field is corrupted (0-1)",
        0.3,
        check=rules.number(0.0, 1.0),
    )
    scale: float = key(
        "epsilon: noise U(-eps, eps) * std; random rewards are replaced by "
        "U(-30 eps, 30 eps), adversarial ones become -eps * r",
        1.0,
        check=rules.finite(0.0),
    )
    seed: int | None = key(
        "seed of the corruption (default: dataset.seed); `run`: the run's train.seed",
        None,
        check=rules.optional(rules.seed_or_run),
    )
    attack_steps: int = key("adversarial: Adam steps of the attack", 100, check=rules.integer(1))
    attacker: AttackerSection | None = key(
        "adversarial: the critics the attack minimises (trained with d3rlpy on the clean data)",
        None,
        section=AttackerSection,
        written_when_set=True,
    )


@dataclasses.dataclass(frozen=True)
class DatasetSection(Section):
    name: str = key(
        "built-in name, d4rl:<name>, d3rlpy:<name>, minari:<id> or file:<path>",
        check=rules.required(
            "e.g. pendulum-medium, cartpole-replay, d4rl:hopper-medium-v2", rules.string
        ),
    )
    size: int | None = key(
        "transitions to generate (built-in datasets; default per dataset)",
        None,
        check=rules.optional(rules.integer(1)),
    )
    seed: int = key(
        "seed of the generated data (built-ins) and of the held-out split; `run`: the run's "
        "train.seed, so the data draw varies over seeds",
        0,
        check=rules.seed_or_run,
    )
    test_fraction: float = key(
        "share of episodes held out for TD-error evaluation (0-0.9)",
        0.0,
        check=rules.number(0.0, 0.9),
    )
    sha256: str | None = key(
        "pins the dataset file: its sha256 (64 hex digits, `samrl data info` shows it); a "
        "different file is refused before training (default: not pinned)",
        None,
        check="sha256",
        # Added after runs were recorded: left out when unset, so their YAML and hash stay; a
        # pin does not change what a run computes (a pinned run is the unpinned run).
        written_when_set=True,
        results=False,
    )
    corruption: CorruptionSection | None = key(
        "corrupt the training data as RIQL does (evaluation and held-out data stay clean)",
        None,
        section=CorruptionSection,
        # Added after runs were recorded: left out when unset, so their YAML and hash stay.
        written_when_set=True,
    )


@dataclasses.dataclass(frozen=True)
class ProbeSection(Section):
    rho: float = key("the probe's radius", 0.05, check=rules.number(0.0))
    every: int = key("probe every this many updates", 10, check=rules.integer(1))
    networks: tuple[str, ...] | None = key(
        "networks probed (default: every network optimizer)", None, check=rules.network_list
    )


def _names_doc() -> str:

    return names_doc()  # the variant registry (samrl/sam/names.py)


@dataclasses.dataclass(frozen=True)
class OptimSection(Section):
    name: str = key(_names_doc, "adam", check=rules.optimizer)
    base: str | None = key(
        "the base optimizer: adam, sgd, adamw or rmsprop (default: the algorithm's own)",
        None,
        check="base_optimizer",
    )
    rho: float = key(
        "SAM's radius (>= 0; 0 is the base optimizer bitwise)", 0.05, check=rules.number(0.0)
    )
    networks: tuple[str, ...] | None = key(
        "networks SAM applies to (default: all; `samrl algos` lists them; old name loss accepted)",
        None,
        check=rules.network_list,
    )
    params: dict[str, Any] = key(
        "keyword arguments of the base optimizer (betas, weight_decay, ...)",
        factory=dict,
        check=rules.mapping,
    )
    probe: ProbeSection | None = key(
        "measure sharpness at a fixed radius without stepping with it", None, section=ProbeSection
    )
    lr_scheduler: dict[str, Any] | None = key(
        "d3rlpy learning-rate schedulers by network, e.g. "
        "{actor: {type: cosine_annealing, params: {T_max: 500000}}} (default: none)",
        None,
        check=rules.lr_schedulers,
        # Added after runs were recorded: left out when unset, so their YAML and hash stay.
        written_when_set=True,
    )
    #: The SAM variant keys given (declared in samrl.sam.variants: each variant's `params` and
    #: COMMON_PARAMS), in the order given; written beside the others.
    variant_params: dict[str, Any] = dataclasses.field(
        default_factory=dict, metadata={"flatten": True}
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Any:
        section = super().from_mapping(data)

        known = {k for spec in OPTIMIZER_NAMES.values() for k in spec.keys}
        variant = {k: copy.deepcopy(v) for k, v in data.items() if k in known}
        return dataclasses.replace(section, variant_params=variant)

    @property
    def sharpness_aware(self) -> bool:
        """Whether this optimizer trains with SAM (else the base optimizer alone)."""

        return OPTIMIZER_NAMES[self.name].sharpness_aware


@dataclasses.dataclass(frozen=True)
class TrainSection(Section):
    n_steps: int = key("gradient updates in total", 10000, check=rules.integer(1))
    n_steps_per_epoch: int = key(
        "updates per epoch (one CSV row, checkpoint and evaluation each)",
        1000,
        check=rules.integer(1),
    )
    seed: int = key("seed of initial weights and minibatch order", 0, check=rules.integer(0))
    # where and how fast a run computes is not what it computes
    device: str = key("auto, cpu, cuda or cuda:N", "auto", results=False, check=rules.device)
    eval_episodes: int = key(
        "environment episodes per evaluation (0: none)", 5, check=rules.integer(0)
    )
    save_interval: int = key(
        "save d3rlpy's model_<step>.d3 every this many epochs", 1, check=rules.integer(1)
    )
    threads: int | str = key(
        "torch threads: auto (adapts between 1 and all cores when that leaves results "
        "bitwise unchanged, else a launcher's OMP_NUM_THREADS or 1), adaptive or N",
        "auto",
        results=False,
        check=rules.threads,
    )


@dataclasses.dataclass(frozen=True)
class OutputSection(Section):
    dir: str = key(
        "parent folder of the experiment's run directories", "runs", check=rules.directory
    )
    run_id: str | None = key(
        "the run's folder name (default: <algo>_<dataset>_<optim>[-rho]_s<seed>)",
        None,
        check=rules.optional(rules.name),
    )
    run_dir: str | None = key(
        "the exact run directory (sweeps set it; default <output.dir>/<name>/<run_id>)",
        None,
        check=rules.optional(rules.string),
        # A run's config.yaml leaves it out (the run is where the file is: no machine path in
        # a shipped record), so a record re-resolved writes the same YAML.
        written_when_set=True,
    )
    loggers: tuple[str, ...] = key(
        "where metrics also go: file, tensorboard, wandb",
        factory=lambda: ("file",),
        check=rules.loggers,
    )


@dataclasses.dataclass(frozen=True)
class HessianSection(Section):
    every_epochs: int = key("measure every this many epochs", 1, check=rules.integer(1))
    networks: tuple[str, ...] | None = key(
        "networks measured (default: all)", None, check=rules.network_list
    )
    top_k: int = key("largest eigenvalues computed", 1, check=rules.integer(1))
    n_transitions: int = key(
        "training transitions the Hessian is measured on", 1024, check=rules.integer(1)
    )
    trace_samples: int = key(
        "Hutchinson samples of the trace (0: no trace)", 0, check=rules.integer(0)
    )


@dataclasses.dataclass(frozen=True)
class AnalysisSection(Section):
    hessian: HessianSection | None = key(
        "Hessian eigenvalues and trace during training (hessian.csv)", None, section=HessianSection
    )


@dataclasses.dataclass(frozen=True)
class Config(Section):
    """A validated, resolved experiment config (made by `samrl.config.resolve`)."""

    name: str = key(
        "experiment name: the folder under output.dir (default: the config file's name)",
        results=False,
        check=rules.name,
    )
    algo: AlgoSection = _section(AlgoSection)
    dataset: DatasetSection = _section(DatasetSection)
    optim: OptimSection = _section(OptimSection)
    train: TrainSection = _section(TrainSection)
    output: OutputSection = _section(OutputSection, results=False)
    analysis: AnalysisSection = _section(AnalysisSection)
    #: What a sweep records about the run (its name and grid point); not a user key.
    sweep: dict[str, Any] | None = dataclasses.field(default=None, metadata={"results": False})
    #: Where the config came from (a file, a sweep's grid point), for messages; not written.
    source: str = dataclasses.field(default="", compare=False)

    def to_dict(self, *, results_only: bool = False) -> dict[str, Any]:
        out = super().to_dict(results_only=results_only)
        if self.sweep is not None and not results_only:
            out["sweep"] = _plain(self.sweep)
        return out

    @property
    def run_id(self) -> str:
        return str(self.output.run_id)

    @property
    def run_dir(self) -> Path:
        """`output.run_dir` when given (a sweep places each run in its sweep directory), else
        `<output.dir>/<name>/<run_id>`."""
        if self.output.run_dir is not None:
            return Path(self.output.run_dir)
        return Path(self.output.dir) / self.name / self.run_id

    def with_output(self, **output: Any) -> Config:
        """The same config writing elsewhere (output keys never change results)."""
        return dataclasses.replace(self, output=dataclasses.replace(self.output, **output))

    def to_yaml(self) -> str:

        return dump_yaml(self.to_dict())

    def result_hash(self) -> str:
        """Hash of everything that determines the results (not where they are written)."""
        return _hash(self.to_dict(results_only=True))

    def legacy_result_hash(self) -> str | None:
        """The hash this config had before single networks were named (`loss` where it now
        says `q`, `policy`, ...; samrl/networks.py), or None when no network name is spelt
        differently: a run made then is recognised and told why it cannot resume."""

        new = SINGLE_NETWORK.get(str(self.algo.name))
        data = self.to_dict(results_only=True)
        lists = [
            data["optim"],
            data["optim"].get("probe"),
            (data.get("analysis") or {}).get("hessian"),
        ]
        renamed = False
        for holder in lists:
            if isinstance(holder, dict) and isinstance(holder.get("networks"), list):
                names = holder["networks"]
                holder["networks"] = [LEGACY_SINGLE_NETWORK if n == new else n for n in names]
                renamed = renamed or new in names
        return _hash(data) if renamed else None


#: config.yaml's record of the run itself (versions, run id, config hash, dataset file): written
#: beside the config by `samrl train`, outside the hash, and ignored when the file is read back
#: as a config, so `samrl train --config <run dir>/config.yaml` makes the same run again.
RUN_RECORD = "samrl"


def _hash(results: dict[str, Any]) -> str:
    text = json.dumps(results, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: The top-level sections, in the order a config is written.
SECTIONS: dict[str, type[Section]] = {
    f.name: f.metadata["section"] for f in dataclasses.fields(Config) if "section" in f.metadata
}


# ---------------------------------------------------------------- the key table


def _rows(cls: type[Section], prefix: str) -> Iterator[tuple[str, Any, str]]:
    defaults = cls.defaults()
    for f in dataclasses.fields(cls):
        if "doc" in f.metadata:
            doc = f.metadata["doc"]
            yield f"{prefix}{f.name}", defaults[f.name], doc() if callable(doc) else doc
        sub = f.metadata.get("section")
        if sub is not None:
            yield from _rows(sub, f"{prefix}{f.name}.")


def key_table() -> list[tuple[str, Any, str]]:
    """(key path, default, meaning) of every config key, in schema order, then optim's variant
    keys (those of one variant first, then the ones every variant takes)."""

    variant_keys = dict.fromkeys(k for spec in OPTIMIZER_NAMES.values() for k in spec.keys)
    ordered = [*(k for k in variant_keys if k not in COMMON_KEYS), *COMMON_KEYS]
    docs = param_docs()
    variant_rows = [(f"optim.{k}", None, docs.get(f"optim.{k}", "")) for k in ordered]
    return [*_rows(Config, ""), *variant_rows]
