"""optim.name and its keys, read from the variant registry, and their documentation.

What the config needs of the SAM variants (samrl/sam/variants.py holds their math): which
`optim.name`s exist (the registered variants and the names of the base optimizer alone), which
`optim.<key>` entries each accepts, the keys every variant takes, and the text `samrl config
keys` and the README's variant table show. Plain Python: configs are checked without torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from samrl.sam.strategy import Param, declared_by, variant_class, variant_names
from samrl.sam.variants import BASE_NAMES  # importing variants registers the built-in ones

#: The optim keys every SAM variant takes, declared like a variant's own parameters (their
#: rules across keys are SAMFactory's `_check_common`); a variant's own parameters are its
#: `params`. `samrl config keys` and the README table read both from here.
COMMON_PARAMS = (
    Param("rho_schedule", "constant, linear_warmup or lr_proportional", "constant"),
    Param("warmup_steps", "linear_warmup: updates until rho is reached", 0),
    Param("rho_min", "the schedule's smallest rho", 0.0),
    Param(
        "weight_decay_mode",
        "decoupled (after the SAM gradient) or loss (inside the loss)",
        "decoupled",
    ),
)
COMMON_KEYS = tuple(p.name for p in COMMON_PARAMS)


@dataclasses.dataclass(frozen=True)
class OptimizerName:
    sharpness_aware: bool  # False: plain base optimizer (probe allowed)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)  # SAMFactory fields it sets
    keys: tuple[str, ...] = ()  # the optim.<key> entries it accepts


class _OptimizerNames(Mapping[str, OptimizerName]):
    """optim.name -> OptimizerName, read from the variant registry (so a variant registered
    later is a name at once)."""

    def __getitem__(self, name: str) -> OptimizerName:
        if name in BASE_NAMES:
            return OptimizerName(sharpness_aware=False)
        cls = variant_class(name)
        keys = (*(p.name for p in cls.params), *COMMON_KEYS)
        return OptimizerName(sharpness_aware=True, fixed={"variant": name}, keys=keys)

    def __iter__(self) -> Iterator[str]:
        return iter((*BASE_NAMES, *variant_names()))

    def __len__(self) -> int:
        return len(BASE_NAMES) + len(variant_names())

    def __contains__(self, name: object) -> bool:
        return name in BASE_NAMES or name in variant_names()


OPTIMIZER_NAMES: Mapping[str, OptimizerName] = _OptimizerNames()


def check_batch_size(optim: Mapping[str, Any], batch_size: int) -> None:
    """The variant's rules on the configured minibatch size (msam: m divides it)."""
    cls = variant_class(optim["name"])
    cls.check_batch_size({p.name: optim.get(p.name, p.default) for p in cls.params}, batch_size)


# ---------------------------------------------------------------------------------------------
# Documentation, from the registry: `samrl config keys` and the README's tables.


def names_doc() -> str:
    """The meaning of optim.name."""
    return f"base (no SAM; adam is its alias), {', '.join(variant_names())}"


def param_docs() -> dict[str, str]:
    """optim.<key> -> its meaning, for every variant parameter (`looksam: ... (0.7); gsam: ...`)
    and then for the keys every variant takes."""
    docs: dict[str, str] = {}
    for key in dict.fromkeys(p.name for n in variant_names() for p in variant_class(n).params):
        by_doc: dict[str, list[str]] = {}
        for name in declared_by(key):
            param = next(p for p in variant_class(name).params if p.name == key)
            default = "" if param.default is None else f" (default {param.default})"
            by_doc.setdefault(param.doc + default, []).append(name)
        docs[f"optim.{key}"] = "; ".join(f"{'/'.join(n)}: {d}" for d, n in by_doc.items())
    docs.update({f"optim.{p.name}": p.doc for p in COMMON_PARAMS})
    return docs


README_START = (
    "<!-- sam-variants:start (generated from samrl/sam/names.py: names.markdown_table()) -->"
)
README_END = "<!-- sam-variants:end -->"


def markdown_table() -> str:
    """The README's table of SAM variants (between README_START and README_END)."""
    lines = ["| `optim.name` | keys | what it does |", "|---|---|---|"]
    for name in variant_names():
        cls = variant_class(name)
        keys = ", ".join(
            f"`{p.name}`" + ("" if p.default is None else f" ({p.default})") for p in cls.params
        )
        lines.append(f"| `{name}` | {keys or '–'} | {cls.summary} |")
    return "\n".join(lines)
