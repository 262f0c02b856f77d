"""train.threads: validation, what `auto` chooses and when, that the thread count never changes
what is computed, and the count put back after a run."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import (
    auto_adapts,
    run_cli,
    state_differences,
    tiny_config,
    trained_with_threads,
    two_threads_change_training,
    write_config,
)

from samrl.run.threads import (
    AdaptiveThreads,
    available_cores,
    numerics_record,
    resolve_threads,
    threads_for_run,
)


def test_auto_is_the_launchers_choice_else_one_adaptive_else_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert resolve_threads("auto") == 1
    assert resolve_threads("adaptive") == available_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_threads("auto") == resolve_threads("adaptive") == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not-a-number")
    assert resolve_threads("auto") == 1
    assert resolve_threads("adaptive") == available_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", str(10**6))
    # capped to this process's cores
    assert resolve_threads("auto") == resolve_threads("adaptive") == available_cores()
    assert resolve_threads(10**6) == available_cores()
    assert resolve_threads(1) == 1


class Machine:
    """A fake clock: each step costs `cost(threads)` seconds for the thread count last set."""

    def __init__(self, cost: Callable[[int], float]):
        self.cost = cost
        self.now = 0.0
        self.threads = 0
        self.history: list[int] = []  # the thread count of every step

    def set_threads(self, n: int) -> None:
        self.threads = n

    def run(self, tuner: AdaptiveThreads, steps: int) -> None:
        for _ in range(steps):
            self.history.append(self.threads)
            self.now += self.cost(self.threads)
            tuner.step_done()


def _tuner(machine: Machine, most: int = 2, **kwargs: float) -> AdaptiveThreads:
    return AdaptiveThreads(
        most, clock=lambda: machine.now, set_threads=machine.set_threads, **kwargs
    )


@pytest.mark.parametrize(("faster", "costs"), [(2, {1: 1.0, 2: 0.6}), (1, {1: 1.0, 2: 1.3})])
def test_auto_keeps_the_faster_count(faster: int, costs: dict[int, float]) -> None:
    machine = Machine(lambda n: costs[n])
    tuner = _tuner(machine)
    machine.run(tuner, 1 + 4 * tuner.block)  # an untimed first step, then the trial
    assert tuner.chosen == faster and machine.threads == faster
    # the trial alternated 1, 2, 1, 2 in blocks
    assert machine.history[1:] == [t for t in (1, 2, 1, 2) for _ in range(tuner.block)]
    machine.run(tuner, 20)
    assert set(machine.history[-20:]) == {faster}


def test_a_collapsing_count_costs_a_step_not_a_block() -> None:
    machine = Machine(lambda n: {1: 1.0, 2: 10.0}[n])
    tuner = _tuner(machine)
    machine.run(tuner, 1 + 2 * tuner.block + 2)
    assert machine.history.count(2) == 2  # one step in each of the two 2-thread blocks
    assert tuner.chosen == 1


def test_auto_measures_again_when_steps_get_slower_and_every_recheck_interval() -> None:
    load = {"busy": False}
    machine = Machine(lambda n: (8.0 if load["busy"] else 0.5) if n == 2 else 1.0)
    tuner = _tuner(machine, recheck_s=1000.0)
    machine.run(tuner, 1 + 4 * tuner.block + 10)
    assert tuner.chosen == 2 and tuner.trials == 1
    load["busy"] = True  # another job takes a core: two threads collapse
    machine.run(tuner, tuner.block + 4 * tuner.block)
    assert tuner.trials == 2 and tuner.chosen == 1
    load["busy"] = False  # the other job ended: the next periodic trial finds it out
    machine.run(tuner, 1100)
    assert tuner.chosen == 2 and tuner.trials >= 3


def test_a_decisive_stable_choice_is_checked_less_often() -> None:
    machine = Machine(lambda n: {1: 1.0, 2: 5.0}[n])
    tuner = _tuner(machine, recheck_s=10.0, max_recheck_s=40.0)
    machine.run(tuner, 400)
    assert tuner.chosen == 1
    assert tuner.recheck_s == 40.0  # doubled after each decisive trial, capped


def test_one_core_means_one_thread_and_no_trials() -> None:
    machine = Machine(lambda n: 1.0)
    tuner = _tuner(machine, most=1)
    machine.run(tuner, 50)
    assert tuner.trials == 0 and set(machine.history) == {1}


def test_threads_for_run_restores_the_previous_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(1)
    with threads_for_run(available_cores()) as run_threads:
        assert torch.get_num_threads() == available_cores()
        assert run_threads.decide(None, _unchecked, _unchecked) is None
        assert run_threads.description == f"{available_cores()} (train.threads)"
    torch.set_num_threads(available_cores())
    with threads_for_run("auto"):
        assert torch.get_num_threads() == 1  # until decided
    assert torch.get_num_threads() == available_cores()
    torch.set_num_threads(1)
    with threads_for_run("adaptive") as run_threads:
        adaptive = run_threads.decide(None, _unchecked, _unchecked)
        if available_cores() > 1:
            assert isinstance(adaptive, AdaptiveThreads)
            assert adaptive.candidates == [1, available_cores()]
            assert run_threads.description.startswith("adaptive, 1 or ")
        else:
            assert adaptive is None
    assert torch.get_num_threads() == 1


def _unchecked(*args: object) -> None:
    """draw_batch, prepare and announce of a run that must not check its algorithm."""
    raise AssertionError("a fixed count, `adaptive` or a GPU never checks the algorithm")


def _built(name: str, hidden: int, batch_size: int) -> tuple[object, object, object]:
    """A built algorithm (engine not installed), with SAM on every network, and a draw of
    its minibatches from a Hopper-sized random dataset."""
    from d3rlpy.optimizers import AdamFactory, CosineAnnealingLRFactory

    from samrl.algos import algorithm_table, build_for_training
    from samrl.run.loop import next_batch
    from samrl.run.sampling import Sampler
    from samrl.sam import SAMFactory
    from samrl.testing.data import random_dataset, tiny_params

    scheduled = name.endswith("_scheduled")  # every network's rate on a cosine schedule
    facts = algorithm_table()[name.removesuffix("_scheduled")]
    dataset = random_dataset(
        discrete=facts.discrete, n_episodes=4, episode_length=100, observation_size=11
    )
    params = tiny_params(facts, hidden=hidden, batch_size=batch_size)
    base = AdamFactory(
        lr_scheduler_factory=CosineAnnealingLRFactory(T_max=3) if scheduled else None
    )
    for field in facts.networks.values():
        params[field] = SAMFactory(base=base, rho=0.05)
    torch.manual_seed(0)
    algo = facts.config_class(**params).create(device="cpu")
    build_for_training(algo, dataset)
    sampler = Sampler(dataset)
    return algo, lambda: next_batch(algo, sampler, facts.transformer), dataset


def _updates_differ(name: str, hidden: int, batch_size: int, updates: int = 2) -> bool:
    """Measured directly, independently of samrl's check: whether `updates` updates of `name`
    (as `_built` makes it, engine installed) leave other losses or other bits in any module or
    optimizer with 2 threads than with 1. On some CPUs they do for an MLP, on others not."""
    from samrl.sam import install

    results = []
    for threads in (1, 2):
        algo, draw, _ = _built(name, hidden, batch_size)
        install(algo)
        torch.manual_seed(0)
        np.random.seed(0)
        torch.set_num_threads(threads)
        results.append((algo, [algo.update(draw()) for _ in range(updates)]))
    torch.set_num_threads(1)
    (one, one_losses), (two, two_losses) = results
    return one_losses != two_losses or state_differences(one, two) != []


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores to run 2 threads")
@pytest.mark.parametrize(
    ("name", "hidden", "batch_size"),
    [
        # MLPs big enough that torch splits their work between threads
        ("cql", 64, 256),
        ("td3_plus_bc", 64, 256),
        ("combo", 8, 16),  # samrl's own algorithm, which holds the dataset
        # learning-rate schedulers in the copies: torch's warning about them is kept quiet
        ("iql_scheduled", 8, 16),
        # a transformer (its update differed in the last bits on every CPU tried so far)
        ("decision_transformer", 8, 16),
    ],
)
def test_the_check_tells_which_updates_the_thread_count_changes(
    name: str, hidden: int, batch_size: int, recwarn: pytest.WarningsRecorder
) -> None:
    """The check's answer is what a direct measurement finds on this CPU (whichever it is);
    the checked algorithm, the RNG states and the thread count are left as they were."""
    import copy

    from samrl.run.threads import thread_count_changes_updates
    from samrl.sam import install

    differs = _updates_differ(name, hidden, batch_size)
    algo, draw, dataset = _built(name, hidden, batch_size)
    before = copy.deepcopy(algo)
    torch.set_num_threads(1)
    np.random.seed(5)
    torch.manual_seed(5)
    rng = (np.random.get_state()[1].copy(), torch.get_rng_state())
    replicas: list[object] = []
    prepare = lambda replica: (replicas.append(replica), install(replica))  # noqa: E731
    changes = thread_count_changes_updates(algo, draw, 2, prepare, shared=(dataset,))
    assert changes is differs
    assert len(replicas) == 2 and all(r is not algo for r in replicas)
    if name == "combo":  # the dataset it holds is shared with the copies, not copied
        assert all(r._rollout_dataset is dataset for r in replicas)
    assert torch.get_num_threads() == 1
    assert (np.random.get_state()[1] == rng[0]).all() and torch.equal(torch.get_rng_state(), rng[1])
    assert algo.grad_step == 0 and state_differences(before, algo) == []
    assert [str(w.message) for w in recwarn if "optimizer.step()" in str(w.message)] == []


@pytest.mark.parametrize("changes", [False, True])
def test_auto_adapts_exactly_when_the_check_finds_no_difference(
    changes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both of `auto`'s outcomes on any CPU: the check's answer is given here (the real check is
    held to a direct measurement above)."""
    monkeypatch.setattr("samrl.run.threads.available_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    asked: list[int] = []
    fake = lambda algo, draw, most, prepare, shared: asked.append(most) or changes  # noqa: E731
    monkeypatch.setattr("samrl.run.threads.thread_count_changes_updates", fake)
    with threads_for_run("auto") as run_threads:
        adaptive = run_threads.decide(object(), _unchecked, _unchecked)
        assert asked == [2]
        assert (adaptive is None) is changes
        if changes:
            assert torch.get_num_threads() == 1
            assert run_threads.description == (
                "1 (this algorithm's updates differ in the last bits between 1 and 2 threads "
                "on this CPU)"
            )
        else:
            assert isinstance(adaptive, AdaptiveThreads) and adaptive.candidates == [1, 2]
            assert run_threads.description == (
                "adaptive, 1 or 2 (this algorithm's updates are bitwise the same with 1 and 2 "
                "threads)"
            )


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores to run 2 threads")
def test_auto_adapts_where_the_check_allows_and_keeps_one_thread_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real algorithms through `decide`: adapting exactly where 1 and 2 threads give the same
    bits on this CPU (measured), the fixed count where they may not be compared."""
    from samrl.sam import install

    monkeypatch.setattr("samrl.run.threads.available_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for name, hidden, batch_size in [("cql", 64, 256), ("decision_transformer", 8, 16)]:
        adapts = not _updates_differ(name, hidden, batch_size)
        algo, draw, _ = _built(name, hidden, batch_size)
        said: list[str] = []
        with threads_for_run("auto") as run_threads:
            adaptive = run_threads.decide(algo, draw, install, announce=said.append)
            # the check takes seconds for a transformer: the user is told what is going on
            assert said == [
                "samrl: train.threads auto: checking that 1 and 2 threads give the same updates"
            ]
            assert (adaptive is not None) is adapts
            assert run_threads.description.startswith("adaptive, 1 or 2 (" if adapts else "1 (")
            assert torch.get_num_threads() == 1  # until the first step; for good if fixed
        # an algorithm that cannot be copied: the fixed count, and why
        algo.uncopyable = threading.Lock()  # type: ignore[attr-defined]
        with threads_for_run("auto") as run_threads:
            assert run_threads.decide(algo, draw, install) is None
            assert torch.get_num_threads() == 1
            assert run_threads.description.startswith(
                "1 (the algorithm could not be copied to check threads: TypeError: "
            )
        # off the CPU: the fixed count, unchecked
        with threads_for_run("auto") as run_threads:
            unsaid = run_threads.decide(
                None, _unchecked, _unchecked, on_cpu=False, announce=_unchecked
            )
            assert unsaid is None
            assert run_threads.description == "1 (train.threads: auto, not on the CPU)"


@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores to run 2 threads")
@pytest.mark.parametrize("name", ["cql", "td3_plus_bc"])
def test_switching_threads_every_few_steps_changes_nothing(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `auto` promises for MLP algorithms of these sizes: where 1 and 2 threads give the
    same bits on this CPU (measured), it adapts, and the parameters after steps run with the
    count switched between 1 and 2 (as AdaptiveThreads does) are a one-thread run's, bitwise;
    where they do not, it keeps one count. Networks and batch are big enough (64-64, batch
    256) that torch really splits the work between threads."""
    from d3rlpy.models.encoders import VectorEncoderFactory

    from samrl.algos import algorithm_table
    from samrl.sam import SAMFactory

    params = {
        "batch_size": 256,
        "actor_encoder_factory": VectorEncoderFactory([64, 64]),
        "critic_encoder_factory": VectorEncoderFactory([64, 64]),
        "actor_optim_factory": SAMFactory(rho=0.05),
        "critic_optim_factory": SAMFactory(rho=0.05),
    }
    config = algorithm_table()[name].config_class(**params)
    steps = 8
    fixed = trained_with_threads(config, [1] * steps)
    differs = two_threads_change_training(config, steps, fixed)
    assert auto_adapts(config, monkeypatch) is not differs
    if not differs:
        switched = trained_with_threads(config, [1 + (i // 2) % 2 for i in range(steps)])
        assert state_differences(fixed, switched) == []


@pytest.mark.parametrize("value", ["many", 0, True, 1.5, "Adaptive"])
def test_bad_threads_is_one_line_exit_2(
    value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path, train={"n_steps": 10, "n_steps_per_epoch": 10, "threads": value})
    code, _, err = run_cli(["train", "--config", str(write_config(tmp_path, config))], capsys)
    assert code == 2
    assert "train.threads" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_numerics_record_names_the_cpu_blas_and_mkl_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MKL_CBWR", "AUTO,STRICT")
    record = numerics_record()
    assert record["mkl_cbwr"] == "AUTO,STRICT"
    assert record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["cpu"] and record["blas"]
    if torch.backends.mkl.is_available():
        assert record["blas"].startswith("MKL 20")
    monkeypatch.delenv("MKL_CBWR")
    assert numerics_record()["mkl_cbwr"] == "unset"


def test_threads_do_not_change_the_config_hash(tmp_path: Path) -> None:
    from samrl.config import load_config

    hashes = set()
    for threads in ("auto", "adaptive", 1, 2):
        config = tiny_config(tmp_path, train={"threads": threads})
        hashes.add(load_config(write_config(tmp_path, config, f"{threads}.yaml")).result_hash())
    assert len(hashes) == 1


@pytest.mark.parametrize("mode", ["adaptive", "auto"])
def test_train_with_adaptive_threads_gives_the_one_thread_run(
    mode: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`train.threads: adaptive` and `auto` through samrl train: status.json says how threads
    were chosen, the count is put back after the run, and the loop reports every step where it
    adapts. `auto`'s CSVs are always a one-thread run's (it adapts only where its check finds
    1 and 2 threads alike, else it keeps 1); `adaptive`'s are wherever a fixed 2-thread run's
    are too (this CPU may make them differ: it is not assumed)."""
    from samrl.run import threads

    monkeypatch.setattr("samrl.run.threads.available_cores", lambda: 2)  # adapting needs 2
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    reported = []
    step_done = AdaptiveThreads.step_done
    monkeypatch.setattr(
        AdaptiveThreads, "step_done", lambda self: (reported.append(1), step_done(self))
    )
    answers: list[bool] = []
    check = threads.thread_count_changes_updates
    monkeypatch.setattr(
        threads,
        "thread_count_changes_updates",
        lambda *args, **kwargs: answers.append(check(*args, **kwargs)) or answers[-1],
    )
    tables, described = {}, {}
    for count in (1, 2, mode):
        config = tiny_config(tmp_path, train={"threads": count}, name=f"t{count}")
        torch.set_num_threads(1)
        code, _, err = run_cli(["train", "--config", str(write_config(tmp_path, config))], capsys)
        assert code == 0, err
        assert torch.get_num_threads() == 1
        (run_dir,) = (tmp_path / "runs" / f"t{count}").iterdir()
        tables[count] = [(run_dir / f).read_bytes() for f in ("loss.csv", "sharpness.csv")]
        described[count] = json.loads((run_dir / "status.json").read_text())["threads"]
        record = yaml.safe_load((run_dir / "config.yaml").read_text())["samrl"]["numerics"]
        assert record == numerics_record()  # what decides the last bits, beside the count
    assert described[1] == "1 (train.threads)" and described[2] == "2 (train.threads)"
    adapted = mode == "adaptive" or answers == [False]
    assert len(answers) == (0 if mode == "adaptive" else 1)  # auto checked once
    assert described[mode].startswith("adaptive, 1 or 2 (" if adapted else "1 (")
    assert len(reported) == (30 if adapted else 0)  # every step of an adapting run
    if mode == "auto" or tables[2] == tables[1]:
        assert tables[mode] == tables[1]
