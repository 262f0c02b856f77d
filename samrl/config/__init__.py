"""Experiment config: typed sections (`sections`, each key with its check from `rules`), YAML
and `--set` (`yamlio`), and the one resolver that validates a config (each key's rule, then the
checks relating keys in `crosscheck`) and fills in its defaults (`resolve`)."""

from samrl.config.resolve import TOP_LEVEL, default_run_id, load_config, resolve
from samrl.config.sections import (
    SECTIONS,
    AlgoSection,
    AnalysisSection,
    Config,
    DatasetSection,
    HessianSection,
    OptimSection,
    OutputSection,
    ProbeSection,
    TrainSection,
    key_table,
)
from samrl.config.yamlio import apply_override, dump_yaml, load_yaml, parse_override, read_yaml


def __getattr__(name: str) -> object:
    # KEY_DOCS: what each key means, a flat view of the docs on the section fields; computed
    # when read, so variants registered since import are included.
    if name == "KEY_DOCS":
        return {key: doc for key, _, doc in key_table()}
    raise AttributeError(f"module 'samrl.config' has no attribute {name!r}")


__all__ = [
    "KEY_DOCS",
    "SECTIONS",
    "TOP_LEVEL",
    "AlgoSection",
    "AnalysisSection",
    "Config",
    "DatasetSection",
    "HessianSection",
    "OptimSection",
    "OutputSection",
    "ProbeSection",
    "TrainSection",
    "apply_override",
    "default_run_id",
    "dump_yaml",
    "key_table",
    "load_config",
    "load_yaml",
    "parse_override",
    "read_yaml",
    "resolve",
]
