"""SAM variants as strategies: the class every variant extends, and the registry of their names.

SAMOptimizerWrapper.step (optimizer.py), the SAM step in one function, asks the network's
variant, once per update:
  - `sam_due(index)`: does update `index` (from 0) take the SAM step (a second pass)?
  - yes: `chunks(call, rho)`, the parts of the recorded call that each take the step (plain SAM:
    the call; m-sharpness: chunks); per part `ascent(params, g, rho, adaptive)`, eps and ||g||
    (ASAM's ball when adaptive), and after g_s = g(w + eps) is in .grad, `combine(opt, params,
    g, rho)` may change it (GSAM, LookSAM); defaults: plain SAM;
  - no: `between(opt)` may change g(w) (default: nothing, the base optimizer's plain step);
and keeps the variant's own state in the optimizer's state_dict (`state_dict`/`load_state_dict`).
Radius schedules, weight decay modes and the sharpness probes are the wrapper's, the same for
every variant.

What a variant declares is read without torch (config validation, `samrl config keys`, the
README's tables): `name` (its `optim.name`), `summary`, `label` (in result tables), `params`
(its `optim.<key>` parameters, each with default, meaning and check), `adaptive` (ASAM's ball)
and `probe_compatible`.

A new variant is one subclass decorated with `@register_variant`; variants.py holds the built-in
ones, tests/test_sam_registry.py registers one inside a test, docs/sam-variants.md says how.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from samrl.errors import ConfigError
from samrl.validate import Checker

if TYPE_CHECKING:
    import torch

    from samrl.sam.tape import RecordedCall


class SAMStepHost(Protocol):
    """What a variant's hooks may ask of the optimizer that runs them (SAMOptimizerWrapper):
    declared here so variants depend on this interface, not on the optimizer module."""

    @property
    def parameters(self) -> list[torch.nn.Parameter]: ...


def fail(key: str, message: str) -> ConfigError:
    """The error for config key `optim.<key>`."""
    return ConfigError(message, key=f"optim.{key}")


# The rules themselves are samrl.validate's (one place for every input's checks); these name
# the config key `optim.<key>` a variant parameter is.
_CHECK = Checker()


def check_integer(value: Any, key: str, minimum: int) -> None:
    _CHECK.integer(value, f"optim.{key}", minimum)


def check_number(value: Any, key: str) -> None:
    _CHECK.number(value, f"optim.{key}")


def check_fraction(value: Any, key: str) -> None:
    """A number in [0, 1]."""
    _CHECK.number(value, f"optim.{key}", 0.0, 1.0, expected="in [0, 1]")


def check_choice(value: Any, key: str, choices: Iterable[str], what: str) -> None:
    _CHECK.choice(value, f"optim.{key}", choices, what)


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a variant: the config key `optim.<name>`.

    default: the value when the config leaves the key out (None: the check decides whether it
    is required). check(value): raises `fail(name, ...)` for a bad value.
    """

    name: str
    doc: str
    default: Any = None
    check: Callable[[Any], None] | None = None


class SAMVariant:
    """Plain SAM's step; subclasses override the hooks that differ. One instance per optimizer
    (it may hold state, e.g. LookSAM's stored direction)."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    #: its name in result tables and figures ("" : the name itself)
    label: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    #: ASAM's ball (rho T^2 g/||T g||, T = |w|) instead of SAM's (SAMFactory.adaptive)
    adaptive: ClassVar[bool] = False
    #: whether a sharpness probe (probe_every) may run with it: the probe measures plain SAM
    probe_compatible: ClassVar[bool] = False

    def __init__(self, **values: Any) -> None:
        self.values = {p.name: values[p.name] for p in self.params}
        for key, value in self.values.items():
            setattr(self, key, value)

    @classmethod
    def check(cls, values: Mapping[str, Any]) -> None:
        """Each parameter's own check; override for rules across parameters."""
        for param in cls.params:
            if param.check is not None:
                param.check(values[param.name])

    @classmethod
    def check_batch_size(cls, values: Mapping[str, Any], batch_size: int) -> None:
        """Rules on the configured minibatch size (`algo.params.batch_size`), checked with the
        config; the variant may also check the batch it meets in `chunks`."""

    def sam_due(self, index: int) -> bool:
        """Whether update `index` (from 0) takes the SAM step."""
        return True

    def ascent(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], rho: float, adaptive: bool
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Step 1, the ascent: (eps, ||g||), eps = rho g/||g|| (adaptive, ASAM's ball:
        rho T^2 g/||T g||, T = |w|)."""
        from samrl.sam.perturbation import ascent_direction

        return ascent_direction(params, grads, rho, adaptive)

    def chunks(self, call: RecordedCall, rho: float) -> list[RecordedCall]:
        """The parts of the recorded call that take steps 1-3 each (m-sharpness: its chunks,
        the step uses the mean of their SAM gradients); plain SAM: [call]."""
        return [call]

    def combine(
        self, opt: SAMStepHost, params: list[torch.nn.Parameter], g: list[torch.Tensor], rho: float
    ) -> None:
        """After step 3: g_s (plus wd (w + eps) in weight_decay_mode "loss") is in .grad and g
        is g(w); leave in .grad what the base optimizer steps with (plain SAM: g_s as it is)."""

    def between(self, opt: SAMStepHost) -> None:
        """An update that is not a SAM step: g(w) is in .grad; the base optimizer steps next."""

    def state_dict(self, opt: SAMStepHost) -> dict[str, Any]:
        """Entries added to the optimizer's state_dict (keys prefixed `samrl_`)."""
        return {}

    def load_state_dict(self, opt: SAMStepHost, state: Mapping[str, Any]) -> None:
        """Restore from the optimizer's state_dict (a missing entry: the initial state)."""


_REGISTRY: dict[str, type[SAMVariant]] = {}


def register_variant(cls: type[SAMVariant]) -> type[SAMVariant]:
    """Class decorator: makes `cls.name` an `optim.name` and a SAMFactory variant."""
    if not (isinstance(cls, type) and issubclass(cls, SAMVariant)):
        raise TypeError(f"register_variant needs a SAMVariant subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name`")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"a SAM variant named '{name}' is already registered")
    _REGISTRY[name] = cls
    return cls


def unregister_variant(name: str) -> None:
    """Remove a registered variant (tests, notebooks redefining one)."""
    del _REGISTRY[name]


def variant_class(name: str) -> type[SAMVariant]:
    """The registered class of a variant name (KeyError if none)."""
    return _REGISTRY[name]


def variant_names() -> tuple[str, ...]:
    """Registered variant names, in registration order."""
    return tuple(_REGISTRY)


def declared_by(key: str) -> list[str]:
    """Names of the registered variants that have parameter `key`."""
    return [name for name, cls in _REGISTRY.items() if any(p.name == key for p in cls.params)]


def param_keys() -> tuple[str, ...]:
    """Every parameter name of a registered variant, first seen first."""
    return tuple(dict.fromkeys(p.name for cls in _REGISTRY.values() for p in cls.params))


def join_names(names: list[str]) -> str:
    """a; a and b; a, b and c."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
