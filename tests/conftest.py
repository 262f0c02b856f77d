"""Shared fixtures and helpers: tiny algorithms for the SAM engine tests (tiny networks, CPU,
seconds), a toy model for hand computations, and tiny configs run through the CLI."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import d3rlpy
import numpy as np
import pytest
import structlog
import torch
import torch.nn.functional as F
import yaml
from d3rlpy.optimizers import OptimizerFactory, OptimizerWrapper
from torch import nn
from torch.func import functional_call

from samrl.algos import AlgoFacts, algorithm_table, build_for_training
from samrl.cli import main
from samrl.metrics import is_sam_metric
from samrl.sam import install
from samrl.sam.engine import _make_evaluate
from samrl.sam.tape import Tape
from samrl.testing.data import random_dataset, tiny_params

FactoryFor = Callable[[str], OptimizerFactory | None]


@pytest.fixture(autouse=True)
def _quiet_d3rlpy() -> Iterator[None]:
    """d3rlpy logs every build at info level through structlog; keep test output readable."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    yield


@pytest.fixture(scope="session", autouse=True)
def _data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One dataset cache per test process, never ~/.cache; child processes inherit it through
    the environment. Tests and fixtures that need another cache set their own."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.getbasetemp()
        mp.setenv("SAMRL_DATA_DIR", str(base / "datasets"))
        # Tests never reach the internet: named datasets are never downloaded unless a test
        # serves them from 127.0.0.1 and lifts this itself; users' caches are never touched.
        mp.setenv("SAMRL_OFFLINE", "1")
        mp.setenv("D4RL_DATASET_DIR", str(base / "d4rl"))
        mp.setenv("MINARI_DATASETS_PATH", str(base / "minari"))
        mp.delenv("SAMRL_D4RL_URL", raising=False)
        yield


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread, and then don't fight parallel test workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def facts_of(name: str) -> AlgoFacts:
    return algorithm_table()[name]


def is_samrl_algorithm(facts: AlgoFacts) -> bool:
    return facts.config_class.__module__.startswith("samrl")


def build(
    name: str,
    factory_for: FactoryFor = lambda net: None,
    *,
    seed: int = 0,
    installed: bool = True,
    **overrides: Any,
) -> tuple[Any, Any]:
    """A tiny built algorithm (and its dataset); `factory_for(net)` sets a network's optimizer.

    samrl's own algorithms that fail to build are skipped; d3rlpy's must always build.
    """
    facts = facts_of(name)
    d3rlpy.seed(seed)
    dataset = random_dataset(discrete=facts.discrete)
    params = tiny_params(facts)
    for net, field in facts.networks.items():
        factory = factory_for(net)
        if factory is not None:
            params[field] = factory
    params.update(overrides)
    try:
        algo = facts.config_class(**params).create(device="cpu")
        build_for_training(algo, dataset)
    except Exception as exc:
        if is_samrl_algorithm(facts):
            pytest.skip(f"samrl's own algorithm {name} does not build yet: {exc!r}")
        raise
    if installed:
        install(algo)
    return algo, dataset


def _built_on_hopper(config: Any) -> tuple[Any, Any]:
    """A d3rlpy config built (engine not installed) on a Hopper-sized random dataset, seeds
    fixed, and a Sampler of that dataset."""
    from samrl.run.sampling import Sampler

    dataset = random_dataset(
        discrete=False, n_episodes=4, episode_length=100, observation_size=11, action_size=3
    )
    torch.manual_seed(0)
    np.random.seed(0)  # the sampler's draws
    algo = config.create(device="cpu")
    build_for_training(algo, dataset)
    return algo, Sampler(dataset)


def trained_with_threads(config: Any, schedule: list[int]) -> Any:
    """A d3rlpy config built on a Hopper-sized random dataset and installed, after one update of
    batch 256 per entry of `schedule`, run with that many torch threads (seeds fixed). For the
    tests that switch thread counts as `train.threads: auto` does."""
    algo, sampler = _built_on_hopper(config)
    install(algo)
    for threads in schedule:
        torch.set_num_threads(threads)
        algo.update(sampler.transition_batch(256))
    return algo


def two_threads_change_training(config: Any, steps: int, one_thread: Any = None) -> bool:
    """Measured here, not assumed: whether `steps` updates run with 2 threads leave other bits
    than with 1 (`one_thread`: that run, if already trained). Whether they do depends on the
    CPU and MKL's code path (samrl/run/threads.py), so tests that need the answer ask it. This is
    independent of samrl's own check (fresh builds rather than copies, every tensor compared
    rather than saved bytes), so a test can hold the check to it."""
    one = one_thread if one_thread is not None else trained_with_threads(config, [1] * steps)
    return state_differences(one, trained_with_threads(config, [2] * steps)) != []


def auto_adapts(config: Any, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether `train.threads: auto` on 2 cores adapts for `config`; where it does not, that it
    keeps one fixed thread and says why (asserted here)."""
    from samrl.run.threads import threads_for_run

    algo, sampler = _built_on_hopper(config)
    monkeypatch.setattr("samrl.run.threads.available_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with threads_for_run("auto") as run_threads:
        adaptive = run_threads.decide(algo, lambda: sampler.transition_batch(256), install)
        if adaptive is None:
            assert torch.get_num_threads() == 1
            assert "differ in the last bits between 1 and 2 threads" in run_threads.description
        return adaptive is not None


def sample_batch(dataset: Any, facts: AlgoFacts) -> Any:
    if facts.transformer:
        return dataset.sample_trajectory_batch(16, length=4)
    return dataset.sample_transition_batch(16)


def train(algo: Any, dataset: Any, name: str, n: int = 20, seed: int = 1) -> list[dict[str, float]]:
    """n updates on minibatches and random draws that depend only on `seed`."""
    facts = facts_of(name)
    torch.manual_seed(seed)
    np.random.seed(seed)
    return [algo.update(sample_batch(dataset, facts)) for _ in range(n)]


def optimizers(algo: Any) -> dict[str, OptimizerWrapper]:
    modules = algo.impl.modules
    return {
        f.name: getattr(modules, f.name)
        for f in dataclasses.fields(modules)
        if isinstance(getattr(modules, f.name), OptimizerWrapper)
    }


def _differences(a: Any, b: Any, where: str) -> Iterator[str]:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.equal(a, b)
        ):
            yield where
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            yield f"{where} (keys {sorted(map(str, a))} != {sorted(map(str, b))})"
        for key in a:
            if key in b:
                yield from _differences(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            yield f"{where} (length)"
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            yield from _differences(x, y, f"{where}[{i}]")
    elif a != b:
        yield f"{where} ({a!r} != {b!r})"


def state_differences(a: Any, b: Any) -> list[str]:
    """Everything that differs bitwise between two algorithms: every tensor in every module's
    state_dict (target networks, BatchNorm statistics included) and every optimizer's state
    (moments, step counts, learning rate, scheduler)."""
    ma, mb = a.impl.modules, b.impl.modules
    out: list[str] = []
    for field in dataclasses.fields(ma):
        x, y = getattr(ma, field.name), getattr(mb, field.name)
        if isinstance(x, nn.Module):
            out.extend(_differences(x.state_dict(), y.state_dict(), field.name))
        elif isinstance(x, OptimizerWrapper):
            # d3rlpy's own entries; a SAM wrapper may add bookkeeping of its own
            sx, sy = x.state_dict(), y.state_dict()
            for key in ("optim", "lr_scheduler"):
                out.extend(_differences(sx[key], sy[key], f"{field.name}.{key}"))
    return out


def sam_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if is_sam_metric(k)}


def own_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The algorithm's own metrics (losses), without the ones the SAM engine adds."""
    sam = sam_metrics(metrics)
    return {k: v for k, v in metrics.items() if k not in sam}


def count_base_steps(algo: Any) -> dict[str, list[int]]:
    """Optimizer field -> a one-element list counting its torch optimizer's step() calls."""
    counts: dict[str, list[int]] = {}
    for name, optimizer in optimizers(algo).items():
        counter = counts.setdefault(name, [0])

        def hook(*_: Any, counter: list[int] = counter) -> None:
            counter[0] += 1

        optimizer.optim.register_step_post_hook(hook)
    return counts


class Toy:
    """A 3-4-1 tanh MLP with an MSE loss on 8 random points; `make_optimizer(model)` gives its
    optimizer, attached to a tape as install() does: `compute_grad` is the recorded gradient
    call and the engine's evaluate is pass 2."""

    def __init__(self, make_optimizer: Callable[[nn.Module], Any]) -> None:
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        self.x = torch.randn(8, 3)
        self.y = torch.randn(8, 1)
        self.optim = make_optimizer(self.model)
        self.tape = Tape()
        self.compute_grad = self.tape.record(self._compute_grad)
        self.optim.attach(self.tape, "toy", _make_evaluate(self.tape, []))

    def _compute_grad(self) -> torch.Tensor:
        self.optim.zero_grad()
        loss = F.mse_loss(self.model(self.x), self.y)
        loss.backward()
        return loss

    def update(self) -> dict[str, float]:
        self.compute_grad()
        self.optim.step()
        return self.tape.pop_metrics()

    def loss_at(self, weights: list[torch.Tensor]) -> torch.Tensor:
        names = [n for n, _ in self.model.named_parameters()]
        out = functional_call(self.model, dict(zip(names, weights, strict=True)), (self.x,))
        return F.mse_loss(out, self.y)

    def grad_at(self, weights: list[torch.Tensor]) -> list[torch.Tensor]:
        leaves = [w.detach().clone().requires_grad_(True) for w in weights]
        return list(torch.autograd.grad(self.loss_at(leaves), leaves))

    def weights(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.model.parameters()]


def tiny_config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A tiny CQL+SAM training config (pendulum-random, 30 steps in 3 epochs) writing its runs
    under tmp_path/runs; each keyword replaces a section, or updates it when both are dicts."""
    config: dict[str, Any] = {
        "name": "tiny",
        "algo": {
            "name": "cql",
            "params": {
                "batch_size": 16,
                "actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
                "critic_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
                "n_action_samples": 2,
            },
        },
        "dataset": {"name": "pendulum-random", "size": 1000},
        "optim": {"name": "sam", "rho": 0.05},
        "train": {"n_steps": 30, "n_steps_per_epoch": 10, "eval_episodes": 0},
        "output": {"dir": str(tmp_path / "runs")},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    return config


def write_config(tmp_path: Path, config: dict[str, Any], name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`samrl ARGS` in this process: (exit status, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# The base config of the tiny sweeps (local, Slurm): TD3+BC with SAM, 8-unit networks, 20 steps.
TINY_SWEEP_BASE: dict[str, Any] = {
    "algo": {
        "name": "td3_plus_bc",
        "params": {
            "batch_size": 32,
            "actor_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
            "critic_encoder_factory": {"type": "vector", "params": {"hidden_units": [8]}},
        },
    },
    "dataset": {"name": "pendulum-random", "size": 2000},
    "optim": {"name": "sam", "rho": 0.05},
    "train": {"n_steps": 20, "n_steps_per_epoch": 10, "eval_episodes": 0, "device": "cpu"},
}


def crash_before_checkpoint(monkeypatch: pytest.MonkeyPatch, epoch_to_crash: int) -> None:
    """Simulate a crash after epoch N's rows were written but before its checkpoint."""
    from samrl.rundir import RunDir

    real = RunDir.save_checkpoint

    def save_or_crash(run: RunDir, algo: Any, epoch: int, step: int, extra: Any) -> None:
        if epoch == epoch_to_crash:
            raise RuntimeError("simulated crash")
        real(run, algo, epoch, step, extra)

    monkeypatch.setattr(RunDir, "save_checkpoint", save_or_crash)
