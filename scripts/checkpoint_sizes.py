"""Bytes of one d3rlpy model_<step>.d3 checkpoint as `samrl train` saves it (networks, target
networks and optimizer states), for TD3+BC, IQL and CQL with SAM on the critic, at pendulum's
shapes with 64-64 networks and Hopper's (11 observations, 3 actions) with 256-256.

    PYTHONPATH=. python scripts/checkpoint_sizes.py

One update on random data (the optimizers' moments exist from the first update on): a
checkpoint's size depends on the shapes only (the README quotes the output).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from samrl.algos import algo_facts, build_for_training
from samrl.config.build import algo_config
from samrl.config.sections import OptimSection
from samrl.sam import install
from samrl.testing.data import random_dataset

SHAPES = {"pendulum 64-64": (3, 1, [64, 64]), "hopper 256-256": (11, 3, [256, 256])}


def checkpoint_bytes(algo_name: str, observations: int, actions: int, hidden: list[int]) -> int:
    """Size of the saved model of a built algorithm with these shapes."""
    facts = algo_facts(algo_name)
    encoder = {"type": "vector", "params": {"hidden_units": hidden}}
    params = {f"{net}_encoder_factory": encoder for net in ("actor", "critic")}
    if algo_name == "iql":
        params["value_encoder_factory"] = encoder
    optim = OptimSection.from_mapping({"name": "sam", "rho": 0.05, "networks": ["critic"]})
    algo = algo_config(facts, params, optim).create(device="cpu")
    data = random_dataset(discrete=False, observation_size=observations, action_size=actions)
    build_for_training(algo, data)
    install(algo)
    algo.update(data.sample_transition_batch(256))  # the optimizers' moments exist from here
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.d3"
        algo.save(str(path))  # what d3rlpy's FileAdapter.save_model writes
        return path.stat().st_size


def main() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    for shape, (observations, actions, hidden) in SHAPES.items():
        for name in ("td3_plus_bc", "iql", "cql"):
            size = checkpoint_bytes(name, observations, actions, hidden)
            print(f"{shape:16s} {name:12s} {size / 1024:8.0f} KiB")


if __name__ == "__main__":
    main()
