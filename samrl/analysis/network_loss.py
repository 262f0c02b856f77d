"""The loss of one network of a built d3rlpy algorithm, as a closure for the curvature tools.

``network_loss_fn(algo, "critic", batch)`` returns ``(loss_fn, params)``: ``loss_fn()`` runs the
algorithm's own gradient function (``_compute_critic_grad`` etc., the function the SAM engine
replays) on a fixed batch with fixed random draws and returns the scalar it would backpropagate,
graph attached, so Hessian-vector products can differentiate it twice. Nothing the call would
change survives it: ``backward`` and every optimizer's ``step``/``zero_grad`` are no-ops while it
runs (temperature and alpha stay at their current values; ``.grad`` is untouched), module modes,
BatchNorm statistics and the global RNG are put back afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from d3rlpy.algos.qlearning.torch.ddpg_impl import DDPGBaseImpl
from d3rlpy.algos.qlearning.torch.sac_impl import DiscreteSACImpl
from d3rlpy.dataset import TrajectoryMiniBatch, TransitionMiniBatch
from d3rlpy.optimizers import OptimizerWrapper
from d3rlpy.torch_utility import CudaGraphWrapper, TorchMiniBatch, TorchTrajectoryMiniBatch
from torch import nn

from samrl.algos import SCALAR_OPTIMIZERS
from samrl.errors import SamrlError, unknown_name
from samrl.networks import canonical_network, network_name
from samrl.rng import RngState
from samrl.sam.tape import backward_disabled, loss_scalar

__all__ = [
    "check_network",
    "evaluation_batch",
    "evaluation_batches",
    "network_loss_fn",
    "networks_of",
    "resolve_network",
    "to_torch_batch",
]

LossFn = Callable[[], torch.Tensor]
_Q_EVAL_IN_ACTOR_UPDATE = (DDPGBaseImpl, DiscreteSACImpl)  # d3rlpy 2.8.1


def _impl(algo: Any) -> Any:
    if getattr(algo, "impl", None) is None:
        raise SamrlError("the algorithm is not built: call build_with_dataset or load_learnable")
    return algo.impl


def _optimizers(impl: Any) -> dict[str, OptimizerWrapper]:
    """d3rlpy optimizer field -> wrapper, for every optimizer the impl's modules hold."""
    modules = impl.modules
    return {
        f.name: getattr(modules, f.name)
        for f in dataclasses.fields(modules)
        if isinstance(getattr(modules, f.name), OptimizerWrapper)
    }


def _network_fields(algo: Any) -> dict[str, str]:
    """samrl network name -> d3rlpy optimizer field (scalars left out)."""
    kind = algo.config.get_type()
    names = {network_name(field, kind): field for field in _optimizers(_impl(algo))}
    return {net: field for net, field in names.items() if net not in SCALAR_OPTIMIZERS}


def networks_of(algo: Any) -> dict[str, OptimizerWrapper]:
    """samrl network name (critic, actor, imitator, dynamics, q, policy, ...) -> its optimizer."""
    optimizers = _optimizers(_impl(algo))
    return {net: optimizers[field] for net, field in _network_fields(algo).items()}


def resolve_network(algo: Any, net: str) -> str:
    """``net`` as samrl names it (``loss``, the old name of a single network, resolved),
    checked: a SamrlError naming the choices if the algorithm has no such network."""
    net = str(canonical_network(net, algo.config.get_type()))
    check_network(algo, net)
    return net


def check_network(algo: Any, net: str) -> OptimizerWrapper:
    """The optimizer of network ``net``; a SamrlError naming the choices if there is none."""
    nets = networks_of(algo)
    net = str(canonical_network(net, algo.config.get_type()))
    if net not in nets:
        if net in SCALAR_OPTIMIZERS:
            raise SamrlError(
                f"'{net}' is a scalar optimized inside another loss, not a network; "
                f"choose from: {', '.join(sorted(nets))}"
            )
        raise SamrlError(unknown_name(f"network for {type(algo).__name__}", net, nets))
    return nets[net]


def _grad_function(impl: Any, net: str, field: str) -> Callable[[Any], Any]:
    # d3rlpy's gradient call of optimizer `<net>_optim` is `_compute_<net>_grad`; of a bare
    # `optim` (single-network algorithms) `_compute_grad`
    attr = "_compute_grad" if field == "optim" else f"_compute_{net}_grad"
    if getattr(impl, attr, None) is None:
        # BC and DiscreteBC name their single optimizer "optim" but its call _compute_imitator_grad
        found = [
            name
            for name, value in vars(impl).items()
            if name.startswith("_compute_") and name.endswith("grad") and callable(value)
        ]
        if len(found) != 1:
            raise SamrlError(
                f"{type(impl).__name__} has no {attr}; samrl cannot compute the {net} loss of "
                "this algorithm"
            )
        attr = found[0]
    func = getattr(impl, attr)
    while hasattr(func, "__wrapped__"):  # the SAM engine's recorder
        func = func.__wrapped__
    if isinstance(func, CudaGraphWrapper):
        # a graph replay writes into static outputs; the plain method builds a fresh graph
        func = getattr(impl, attr.removeprefix("_"))
    return func


def _modules(impl: Any) -> list[nn.Module]:
    modules = impl.modules
    return [
        getattr(modules, f.name)
        for f in dataclasses.fields(modules)
        if isinstance(getattr(modules, f.name), nn.Module)
    ]


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


@contextlib.contextmanager
def _frozen_side_effects(impl: Any, net: str) -> Iterator[None]:
    """Make the gradient function side-effect free while it runs; undo everything after."""
    optimizers = list(_optimizers(impl).values())
    modules = _modules(impl)
    submodules = [m for module in modules for m in module.modules()]
    modes = [m.training for m in submodules]
    buffers = list({id(b): b for module in modules for b in module.buffers()}.values())
    saved_buffers = [b.detach().clone() for b in buffers]
    # instance attributes (e.g. the engine's replayable step) are put back as they were
    saved_attrs = [
        (o, name, vars(o).get(name)) for o in optimizers for name in ("step", "zero_grad")
    ]
    rng = RngState.capture()
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(backward_disabled())  # the graph stays intact for HVPs
        for o, name, _ in saved_attrs:
            setattr(o, name, _noop)
        impl.modules.set_train()
        if net == "actor" and isinstance(impl, _Q_EVAL_IN_ACTOR_UPDATE):
            # their update_actor puts the Q functions in eval mode ("for stability")
            impl.modules.q_funcs.eval()
        yield
    finally:
        stack.close()
        for o, name, value in saved_attrs:
            if value is None:
                vars(o).pop(name, None)
            else:
                setattr(o, name, value)
        for m, mode in zip(submodules, modes, strict=True):
            m.training = mode
        with torch.no_grad():
            for b, v in zip(buffers, saved_buffers, strict=True):
                b.copy_(v)
        rng.restore()


def _rng_state_for(seed: int | None) -> RngState:
    """The global RNG state the closure starts from: seeded, or the current one."""
    if seed is None:
        return RngState.capture()
    outer = RngState.capture()
    try:
        torch.manual_seed(seed)
        return RngState.capture()
    finally:
        outer.restore()


def network_loss_fn(
    algo: Any,
    net: str,
    batch: TorchMiniBatch | TorchTrajectoryMiniBatch,
    *,
    seed: int | None = 0,
    rng_state: RngState | None = None,
) -> tuple[LossFn, list[nn.Parameter]]:
    """``(loss_fn, params)`` for network ``net`` of a built algorithm on ``batch``.

    ``loss_fn()`` returns the scalar loss with its autograd graph, computed by the algorithm's
    own gradient function with the global RNG set to a fixed state on every call (``rng_state``
    if given, else the state ``torch.manual_seed(seed)`` gives, else with ``seed=None`` the state
    at this call), so every call draws the same noise; the caller's RNG is restored afterwards.
    ``params`` are the parameters owned by the network's optimizer. ``batch`` is a torch batch
    as d3rlpy's ``update`` builds it (see :func:`evaluation_batch` / :func:`to_torch_batch`).
    """
    impl = _impl(algo)
    net = resolve_network(algo, net)
    params = list(check_network(algo, net)._params)
    func = _grad_function(impl, net, _network_fields(algo)[net])
    state = rng_state if rng_state is not None else _rng_state_for(seed)

    def loss_fn() -> torch.Tensor:
        with _frozen_side_effects(impl, net):
            state.restore()
            return loss_scalar(func(batch))

    return loss_fn, params


# ------------------------------------------------------------------------------ batches


def _is_transformer(algo: Any) -> bool:
    from d3rlpy.algos import TransformerAlgoBase

    return isinstance(algo, TransformerAlgoBase)


def to_torch_batch(
    algo: Any, batch: TransitionMiniBatch | TrajectoryMiniBatch
) -> TorchMiniBatch | TorchTrajectoryMiniBatch:
    """Convert a numpy batch exactly as the algorithm's ``update`` does (d3rlpy 2.8.1)."""
    config = algo.config
    scalers = {
        "observation_scaler": config.observation_scaler,
        "action_scaler": config.action_scaler,
        "reward_scaler": config.reward_scaler,
    }
    if isinstance(batch, TrajectoryMiniBatch):
        return TorchTrajectoryMiniBatch.from_batch(batch=batch, device=algo._device, **scalers)
    return TorchMiniBatch.from_batch(
        batch=batch,
        gamma=config.gamma,
        compute_returns_to_go=algo.need_returns_to_go,
        device=algo._device,
        **scalers,
    )


def _pick(count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct indices (all of them, in order, when n >= count)."""
    if n >= count:
        return np.arange(count)
    return np.sort(rng.choice(count, size=n, replace=False))


def _numpy_batch(
    algo: Any, dataset: Any, indices: np.ndarray
) -> TransitionMiniBatch | TrajectoryMiniBatch:
    buffer = dataset.buffer
    if _is_transformer(algo):
        length = algo.config.context_size
        trajectories = [dataset.trajectory_slicer(*buffer[int(i)], length) for i in indices]
        return TrajectoryMiniBatch.from_partial_trajectories(trajectories)
    return TransitionMiniBatch.from_transitions(
        [dataset.transition_picker(*buffer[int(i)]) for i in indices]
    )


def _check_size(n: int, what: str) -> None:
    if n < 1:
        raise SamrlError(f"{what} must be >= 1, got {n}")


def evaluation_batch(
    algo: Any, dataset: Any, n_transitions: int, seed: int
) -> TorchMiniBatch | TorchTrajectoryMiniBatch:
    """A fixed set of ``n_transitions`` distinct transitions (all of them if the dataset is
    smaller), chosen by a numpy Generator seeded with ``seed`` (the global RNGs are not touched)
    and converted as ``update`` converts a batch.

    Transformer algorithms get ``max(1, n_transitions // context_size)`` trajectories of
    ``context_size`` steps ending at the chosen transitions, as ``sample_trajectory_batch``
    builds them.
    """
    _check_size(n_transitions, "n_transitions")
    n = n_transitions
    if _is_transformer(algo):
        n = max(1, n_transitions // algo.config.context_size)
    indices = _pick(dataset.transition_count, n, np.random.default_rng(seed))
    return to_torch_batch(algo, _numpy_batch(algo, dataset, indices))


def evaluation_batches(
    algo: Any, dataset: Any, batch_size: int, n_batches: int, seed: int
) -> list[TorchMiniBatch | TorchTrajectoryMiniBatch]:
    """``n_batches`` disjoint batches of ``batch_size`` transitions (drawn with replacement
    across batches only when the dataset is too small), for m-sharpness."""
    _check_size(batch_size, "batch size")
    _check_size(n_batches, "number of batches")
    rng = np.random.default_rng(seed)
    count = dataset.transition_count
    if batch_size * n_batches <= count:
        flat = rng.choice(count, size=batch_size * n_batches, replace=False)
        chunks = [np.sort(c) for c in flat.reshape(n_batches, batch_size)]
    else:
        chunks = [_pick(count, batch_size, rng) for _ in range(n_batches)]
    return [to_torch_batch(algo, _numpy_batch(algo, dataset, c)) for c in chunks]
