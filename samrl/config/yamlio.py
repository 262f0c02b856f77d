"""Config files and `--set` overrides: YAML text to plain Python values (not yet validated)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from samrl.errors import ConfigError
from samrl.validate import KEY_PATH


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading every float a person writes as a float.

    PyYAML implements YAML 1.1, where `3e-4` and `1E5` (no dot in the mantissa) are strings;
    YAML 1.2, Python and every config reader a person has met read them as numbers.
    """


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string _Loader would read as a float: a config hash
    such as `955991399544e088`, written plain by yaml.safe_dump, would come back as 9.6e+99."""


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; an empty mapping inside stays a value."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def load_yaml(text: str) -> Any:
    """YAML text as Python values (safe; `3e-4` is a float)."""
    return yaml.load(text, Loader=_Loader)


def dump_yaml(data: Any) -> str:
    """Python values as YAML text that load_yaml reads back as the same values (keys in their
    order). Every YAML file samrl writes goes through here."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=False)


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
