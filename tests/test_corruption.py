"""dataset.corruption follows RIQL's protocol (samrl/data/corruption.py), on tiny data.

Each property is checked on the arrays the corruption returns: the share of corrupted
transitions is binomial around the rate (a binomial test, shown able to reject a wrong rate),
noise stays within eps * std and is uniform, rewards are replaced, each field is corrupted
alone, held-out rows stay clean, the adversarial delta stays in bounds and lowers the
attacker's Q, and the same seed writes the same bytes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import run_cli
from scipy import stats

from samrl.config.sections import AttackerSection, CorruptionSection
from samrl.data.corruption import (
    FIELDS,
    changes,
    clean_next_observations,
    corrupt,
    field_std,
)
from samrl.data.provenance import fingerprint
from samrl.data.transitions import Transitions
from samrl.run.sampling import Sampler
from samrl.testing.data import random_dataset

N = 20_000


def _data(n: int = N, episode: int = 50, seed: int = 0) -> Transitions:
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 10.0, 0.1], dtype=np.float32)  # per-dimension stds differ
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    ends = np.arange(episode - 1, n, episode)
    terminals[ends[::2]] = True
    timeouts[ends[1::2]] = True
    return Transitions(
        observations=(rng.normal(size=(n, 3)) * scale + 5).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, 2)).astype(np.float32),
        rewards=rng.normal(2.0, 1.0, size=n).astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
    )


def _spec(fields: tuple[str, ...], **kw: Any) -> CorruptionSection:
    values = {"mode": "random", "fields": fields, "rate": 0.3, "scale": 0.5, "seed": 3, **kw}
    return CorruptionSection(**values)


def _all(data: Transitions) -> np.ndarray:
    return np.ones(len(data), bool)


def _arrays(data: Transitions) -> dict[str, np.ndarray]:
    nxt = data.next_observations
    return {
        "observations": data.observations,
        "actions": data.actions,
        "rewards": data.rewards,
        "next_observations": clean_next_observations(data) if nxt is None else nxt,
    }


def _changed_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b).reshape(len(a), -1).any(axis=1)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_corrupted_share_is_binomial_around_the_rate(field: str, rate: float) -> None:
    data = _data()
    out = corrupt(data, _spec((field,), rate=rate), _all(data))
    k = int(_changed_rows(_arrays(data)[field], _arrays(out)[field]).sum())
    assert stats.binomtest(k, N, rate).pvalue > 1e-3
    # the same test rejects a rate off by a fifth: it can fail
    assert stats.binomtest(k, N, rate * 1.2).pvalue < 1e-3


@pytest.mark.parametrize("field", ["observations", "actions", "next_observations"])
def test_random_noise_is_uniform_within_eps_std_per_dimension(field: str) -> None:
    data = _data()
    eps = 0.5
    out = corrupt(data, _spec((field,), rate=1.0, scale=eps), _all(data))
    before, after = _arrays(data)[field], _arrays(out)[field]
    std = field_std(before)
    units = (after.astype(np.float64) - before) / std  # noise in std units, per dimension
    # float32 rounding of x + noise: a relative tolerance of the values' size
    slack = 1e-6 * np.abs(before).max(axis=0) / std
    assert np.all(np.abs(units) <= eps + slack)
    for d in range(units.shape[1]):
        # uniform on [-eps, eps] (Kolmogorov-Smirnov), not Gaussian
        assert stats.kstest(units[:, d], stats.uniform(-eps, 2 * eps).cdf).pvalue > 1e-3
        assert stats.kstest(units[:, d], stats.norm(0, eps / np.sqrt(3)).cdf).pvalue < 1e-3


def test_random_rewards_are_replaced_not_perturbed() -> None:
    data = _data()
    data.rewards[:] = 1000.0  # far outside U(-30 eps, 30 eps)
    eps = 0.5
    out = corrupt(data, _spec(("rewards",), rate=1.0, scale=eps), _all(data))
    assert np.all(np.abs(out.rewards) <= 30 * eps)
    assert stats.kstest(out.rewards, stats.uniform(-15, 30).cdf).pvalue > 1e-3


def test_adversarial_rewards_are_minus_eps_times_r() -> None:
    data = _data()
    out = corrupt(data, _spec(("rewards",), mode="adversarial", scale=0.7), _all(data))
    hit = out.rewards != data.rewards
    assert 0.25 < hit.mean() < 0.35
    expected = (data.rewards.astype(np.float64) * -0.7).astype(np.float32)
    assert np.array_equal(out.rewards[hit], expected[hit])


@pytest.mark.parametrize("field", FIELDS)
def test_each_field_is_corrupted_alone(field: str) -> None:
    data = _data()
    out = corrupt(data, _spec((field,)), _all(data))
    before, after = _arrays(data), _arrays(out)
    for other in FIELDS:
        same = np.array_equal(before[other], after[other])
        assert same == (other != field), other
    assert np.array_equal(out.terminals, data.terminals)
    assert np.array_equal(out.timeouts, data.timeouts)


def test_mixed_corruption_hits_each_field_in_its_own_rows() -> None:
    data = _data()
    mixed = corrupt(data, _spec(FIELDS), _all(data))
    before, after = _arrays(data), _arrays(mixed)
    rows = {f: _changed_rows(before[f], after[f]) for f in FIELDS}
    for field in FIELDS:
        alone = corrupt(data, _spec((field,)), _all(data))
        # a field's corruption under mixed corruption is its corruption alone
        assert np.array_equal(_arrays(alone)[field], after[field])
    # independent index sets: the overlap of two fields is about rate**2 of the rows
    both = int((rows["observations"] & rows["next_observations"]).sum())
    assert stats.binomtest(both, N, 0.09).pvalue > 1e-3


def test_held_out_rows_stay_clean() -> None:
    data = _data()
    eligible = np.arange(N) < N // 2
    out = corrupt(data, _spec(FIELDS, rate=1.0), eligible)
    before, after = _arrays(data), _arrays(out)
    for f in FIELDS:
        assert np.array_equal(before[f][~eligible], after[f][~eligible])
        assert _changed_rows(before[f][eligible], after[f][eligible]).all()


def test_changes_reports_share_and_size_in_std_units() -> None:
    data = _data()
    out = corrupt(data, _spec(("actions",), rate=0.3, scale=0.5), _all(data))
    report = {c.field: c for c in changes(data, out)}
    assert report["observations"].fraction == 0.0
    # mean |U(-eps, eps)| = eps / 2
    assert report["actions"].mean_abs_std == pytest.approx(0.25, rel=0.03)
    k = _changed_rows(data.actions, out.actions).sum()
    assert report["actions"].fraction == k / N


def _mdp_next(dataset: Any) -> np.ndarray:
    """Each row's next observation as d3rlpy's picker derives it (the last row: itself)."""
    parts = [np.concatenate([e.observations[1:], e.observations[-1:]]) for e in dataset.episodes]
    return np.concatenate(parts)


def test_sampler_with_d3rlpys_own_next_observations_is_bitwise_unchanged() -> None:
    dataset = random_dataset(discrete=False, n_episodes=6, episode_length=9)
    separate = Sampler(dataset, next_observations=_mdp_next(dataset))
    plain = Sampler(dataset)
    for seed in range(4):
        np.random.seed(seed)
        a = plain.transition_batch(32)
        np.random.seed(seed)
        b = separate.transition_batch(32)
        for f in ("observations", "actions", "rewards", "next_observations", "terminals"):
            assert getattr(a, f).tobytes() == getattr(b, f).tobytes(), f


def test_sampler_serves_the_separate_next_observations() -> None:
    dataset = random_dataset(discrete=False, n_episodes=6, episode_length=9)
    nxt = _mdp_next(dataset) + 100.0  # recognisably not the next row
    sampler = Sampler(dataset, next_observations=nxt)
    np.random.seed(0)
    plain = Sampler(dataset).transition_batch(64)
    np.random.seed(0)
    batch = sampler.transition_batch(64)
    assert np.array_equal(batch.observations, plain.observations)
    assert np.allclose(batch.next_observations, plain.next_observations + 100.0)


# ---- adversarial ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attacked() -> dict[str, Any]:
    from samrl.data.attacker import trained_attacker
    from samrl.data.corruption import cache_dir, digest

    data = _data(n=600, episode=50)
    attacker_settings = AttackerSection(n_critics=3, n_steps=30, hidden_units=(16,), batch_size=32)
    spec = _spec(
        ("observations", "actions", "next_observations"),
        mode="adversarial",
        rate=0.5,
        scale=0.3,
        attacker=attacker_settings,
        attack_steps=20,
    )
    attacker, record = trained_attacker(data, spec, digest(data), cache_dir())
    return {"data": data, "spec": spec, "attacker": attacker, "record": record}


def _mean_q(attacker: Any, field: str, data: dict[str, np.ndarray], rows: np.ndarray) -> float:
    from samrl.data.attacker import attack_loss

    obs, act, nxt = (
        torch.as_tensor(data[k][rows]) for k in ("observations", "actions", "next_observations")
    )
    zero = torch.zeros(())
    with torch.no_grad():
        return float(attack_loss(attacker, field, zero, obs, act, nxt).mean())


@pytest.mark.parametrize("field", ["observations", "actions", "next_observations"])
def test_adversarial_delta_stays_in_bounds_and_lowers_the_attackers_q(
    attacked: dict[str, Any], field: str
) -> None:
    data, spec, attacker = attacked["data"], attacked["spec"], attacked["attacker"]
    out = corrupt(data, dataclasses.replace(spec, fields=(field,)), _all(data), attacker=attacker)
    before, after = _arrays(data), _arrays(out)
    rows = _changed_rows(before[field], after[field])
    assert 0.4 < rows.mean() < 0.6
    std = field_std(before[field])
    delta = (after[field].astype(np.float64) - before[field]) / std
    assert np.all(np.abs(delta) <= spec.scale * (1 + 1e-5) + 1e-5)
    # the attack's start point: the same uniform draw a random corruption makes
    random = corrupt(data, dataclasses.replace(spec, fields=(field,), mode="random"), _all(data))
    q_attacked = _mean_q(attacker, field, after, rows)
    assert q_attacked < _mean_q(attacker, field, _arrays(random), rows)
    assert q_attacked < _mean_q(attacker, field, before, rows)


def test_attacker_is_cached_and_recorded(attacked: dict[str, Any]) -> None:
    record = attacked["record"]
    assert record["algo"] == "sac" and record["n_critics"] == 3 and record["n_steps"] == 30
    path = Path(record["file"])
    assert path.is_file() and path.with_suffix(".json").is_file()


# ---- through the CLI: cache, info, export ----------------------------------------------------


def _config(tmp_path: Path, corruption: dict[str, Any], name: str = "c.yaml") -> Path:
    import yaml

    config = {
        "algo": {"name": "iql"},
        "dataset": {
            "name": "pendulum-random",
            "size": 1000,
            "test_fraction": 0.2,
            "corruption": corruption,
        },
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def test_same_seed_same_file_bytes_and_export_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import h5py

    path = _config(tmp_path, {"fields": ["observations", "rewards"], "rate": 0.3, "scale": 0.5})
    files = []
    for i in range(2):  # the second export is made from a fresh cache: made again, not read
        monkeypatch.setenv("SAMRL_DATA_DIR", str(tmp_path / f"cache{i}"))
        out = tmp_path / f"e{i}.hdf5"
        code, _, err = run_cli(["data", "export", "--config", str(path), "--out", str(out)], capsys)
        assert code == 0, err
        files.append(out.read_bytes())
    assert files[0] == files[1]
    other = _config(tmp_path, {"fields": ["observations", "rewards"], "seed": 1}, "o.yaml")
    code, _, err = run_cli(
        ["data", "export", "--config", str(other), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 0, err
    assert (tmp_path / "o").read_bytes() != files[0]
    with h5py.File(tmp_path / "e0.hdf5") as f:
        keys = set(f)
        assert {"observations", "actions", "rewards", "next_observations", "terminals"} <= keys
        assert "timeouts" in keys and len(f["rewards"]) == 800  # 4 of the 5 episodes: training


def test_data_info_shows_the_corruption(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, {"fields": ["actions", "next_observations"], "rate": 0.5})
    code, out, err = run_cli(["data", "info", "--config", str(path)], capsys)
    assert code == 0, err
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["observations"][1:] == ["0.0000", "-"]
    assert lines["rewards"][1:] == ["0.0000", "-"]
    assert 0.35 < float(lines["actions"][1]) < 0.65
    assert 0.35 < float(lines["next_observations"][1]) < 0.65
    assert "random actions, next_observations, rate 0.5, scale 1" in out
    assert lines["sha256:"][1] == fingerprint(Path(lines["file:"][1]))["sha256"]  # provenance


def test_loaded_training_data_keep_next_observations_clean_under_observation_corruption() -> None:
    from samrl.data import load_dataset, load_transitions
    from samrl.data.split import held_out_mask

    spec = _spec(("observations",), rate=0.5)
    ds = load_dataset("pendulum-random", size=1000, test_fraction=0.2, corruption=spec)
    _, clean, _, _ = load_transitions("pendulum-random", size=1000)
    train = ~held_out_mask(clean, 0.2, 0)
    assert np.array_equal(ds.next_observations, clean_next_observations(clean)[train])
    stacked = np.concatenate([e.observations for e in ds.train.episodes])
    assert _changed_rows(clean.observations[train], stacked).mean() > 0.4
    assert ds.test_episodes  # held out, clean
    for episode in ds.test_episodes:
        rows = np.flatnonzero(~train)[: len(episode.observations)]
        assert np.array_equal(episode.observations, clean.observations[rows])


def test_training_on_corrupted_data_records_the_corruption(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    path = _config(
        tmp_path, {"fields": ["observations", "next_observations", "rewards"], "rate": 0.3}
    )
    config = yaml.safe_load(path.read_text())
    config["algo"]["params"] = {"batch_size": 16}
    config["train"] = {"n_steps": 4, "n_steps_per_epoch": 2, "eval_episodes": 0}
    config["output"] = {"dir": str(tmp_path / "runs")}
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["train", "--config", str(path), "--quiet"], capsys)
    assert code == 0, err
    run_dir = next((tmp_path / "runs").glob("*/*"))
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["dataset"]["corruption"]["fields"] == [
        "observations",
        "rewards",
        "next_observations",
    ]
    record = written["samrl"]["corruption"]
    assert Path(record["file"]).is_file() and record["key"] in record["file"]
