"""Experiment config: typed sections (`sections`), YAML and `--set` (`yamlio`), and the one
resolver that validates a config and fills in its defaults (`resolve`)."""

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
from samrl.config.yamlio import apply_override, load_yaml, parse_override, read_yaml

#: What each key means (the docs live on the section fields; this is their flat view).
KEY_DOCS: dict[str, str] = {key: doc for key, _, doc in key_table()}

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
    "key_table",
    "load_config",
    "load_yaml",
    "parse_override",
    "read_yaml",
    "resolve",
]
