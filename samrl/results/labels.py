"""Short legend text for grid points ("rho=0.05", "adam", "sam rho=0.1"), shared by the
aggregate table, the paper tables and the plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from samrl.config.sections import CorruptionSection
from samrl.sam.variants import is_base


def group_key(values: Sequence[Any]) -> tuple[Any, ...]:
    # NaN != NaN, so missing values get one shared stand-in to group on.
    return tuple("<missing>" if is_missing(v) else v for v in values)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return f"{value:g}" if isinstance(value, float) else str(value)


CORRUPTION = "dataset.corruption."
#: Corruption keys said by the condition's words ("random observations", "clean").
CONDITION_KEYS = (f"{CORRUPTION}fields", f"{CORRUPTION}mode")


def condition_of_point(point: Mapping[str, Any]) -> str:
    """The data condition of a grid point in words (samrl.data.corruption.condition_of), its
    mode the config default where the point does not set it."""
    from samrl.data.corruption import condition_of  # lazy: samrl.data imports d3rlpy

    fields = point.get(CONDITION_KEYS[0])
    if isinstance(fields, str):
        fields = json.loads(fields) if fields.startswith("[") else [fields]
    mode = point.get(CONDITION_KEYS[1])
    if is_missing(mode):
        mode = CorruptionSection.defaults()["mode"]
    return condition_of(None if is_missing(fields) else {"fields": fields, "mode": mode})


def point_label(point: Mapping[str, Any], keys: Sequence[str]) -> str:
    """Short legend text: "rho=0.05", "adam", "sam rho=0.1", "cql rho=0" ...

    Only `keys` are shown (pass the keys that vary); an adam point shows "adam" instead of a
    rho, since rho means nothing to Adam. Corrupted data are named by their condition
    ("random observations", "clean") once, whichever of its keys vary.
    """
    name = point.get("optim.name")
    parts: list[str] = []
    if any(k in CONDITION_KEYS for k in keys):
        parts.append(condition_of_point(point))
    for key in keys:
        value = point.get(key)
        if key in CONDITION_KEYS:
            continue
        if is_missing(value) and key != "optim.rho":
            continue  # a setting of other points' algorithm, not of this one
        if key == "optim.rho":
            if not is_base(name):
                parts.append(f"rho={_format_value(value)}")
        elif key == "optim.name" or key.endswith(".name"):
            parts.append(str(value))
        else:
            parts.append(f"{key.rsplit('.', 1)[-1]}={_format_value(value)}")
    if is_base(name) and "optim.rho" in keys and "optim.name" not in keys:
        parts.append(str(name))
    return " ".join(parts) or "all runs"


def varying_keys(points: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """The keys whose set values differ among `points`, corruption's condition keys aside (see
    condition_varies). A key set to one value where it is set at all (an algorithm's own
    parameter, or a corruption rate that clean points lack) is a setting, not an axis: it
    would only add "type=nan" noise to labels."""
    return [
        k
        for k in keys
        if k not in CONDITION_KEYS
        and len({p.get(k) for p in points if not is_missing(p.get(k))}) > 1
    ]


def condition_varies(points: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> bool:
    """Whether the points train on more than one data condition; missing corruption means
    clean data, so the condition varies when its words do."""
    if not any(k in CONDITION_KEYS for k in keys):
        return False
    return len({condition_of_point(p) for p in points}) > 1


def point_labels(points: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    """Labels for several points using only the keys that vary among them; if two labels
    still collide (e.g. two adam points that differ in rho), spell every key out."""
    varying = varying_keys(points, keys)
    if condition_varies(points, keys):
        varying.append(CONDITION_KEYS[0])
    labels = [point_label(p, varying) for p in points]
    if len(set(labels)) < len(labels):
        labels = [" ".join(f"{k}={_format_value(p.get(k))}" for k in varying) for p in points]
    return labels


def sam_networks(optim_name: Any, networks: Any) -> frozenset[str]:
    """The networks SAM steps in a run (none for a base optimizer)."""
    if is_base(optim_name):
        return frozenset()
    if isinstance(networks, str):
        try:
            networks = json.loads(networks)
        except ValueError:
            networks = [networks]
    return frozenset(str(n) for n in networks or ())
