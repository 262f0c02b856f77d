"""Experiment trackers (TensorBoard, Weights & Biases) through d3rlpy's own logger adapters.

`output.loggers` names them; d3rlpy's FileAdapter (the run directory's `d3rlpy/` folder) is
always on. Each tracker is d3rlpy's adapter, created under the samrl run id (not the file
adapter's folder name) and handed the run's resolved samrl config beside d3rlpy's algorithm
config, so a tracker run can be filtered by rho, network list or seed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samrl.config.rules import (  # noqa: F401 (re-exported: the check lives with the key)
    LOGGERS,
    REQUIRED_MODULE,
    check_loggers,
)
from samrl.config.sections import RUN_RECORD
from samrl.config.yamlio import flatten

if TYPE_CHECKING:  # d3rlpy (and the gym it imports) loads only when a run starts
    from d3rlpy.logging import CombineAdapterFactory, LoggerAdapter, LoggerAdapterFactory
    from d3rlpy.logging.logger import AlgProtocol, SaveProtocol

TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"  # the folder wandb makes inside WANDB_DIR
WANDB_PROJECT = "samrl"


def flat_scalars(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`optim.rho: 0.05`-style keys; lists and None become text (TensorBoard's hparams take
    scalars only)."""
    return {
        name: value if isinstance(value, bool | int | float | str) else str(value)
        for name, value in flatten(data, prefix).items()
        if not (isinstance(value, dict) and not value)  # an empty section has no scalar
    }


class _NamedAdapter:
    """A d3rlpy adapter whose params are the algorithm's config plus samrl's resolved config."""

    def __init__(self, inner: LoggerAdapter, extra_params: dict[str, Any]):
        self._inner = inner
        self._extra = extra_params

    def write_params(self, params: dict[str, Any]) -> None:
        self._inner.write_params({**params, **self._extra})

    def before_write_metric(self, epoch: int, step: int) -> None:
        self._inner.before_write_metric(epoch, step)

    def write_metric(self, epoch: int, step: int, name: str, value: float) -> None:
        self._inner.write_metric(epoch, step, name, value)

    def after_write_metric(self, epoch: int, step: int) -> None:
        self._inner.after_write_metric(epoch, step)

    def save_model(self, epoch: int, algo: SaveProtocol) -> None:
        self._inner.save_model(epoch, algo)

    def close(self) -> None:
        self._inner.close()

    def watch_model(self, epoch: int, step: int) -> None:
        self._inner.watch_model(epoch, step)


class _NamedFactory:
    """Creates a d3rlpy tracker adapter under the samrl run id (d3rlpy passes the file
    adapter's folder name as experiment_name)."""

    def __init__(
        self,
        inner: LoggerAdapterFactory,
        run_name: str,
        extra_params: dict[str, Any],
        env: dict[str, str] | None = None,
    ):
        self._inner = inner
        self._run_name = run_name
        self._extra = extra_params
        self._env = env or {}

    def create(
        self, algo: AlgProtocol, experiment_name: str, n_steps_per_epoch: int
    ) -> LoggerAdapter:
        with _environment(self._env):
            inner = self._inner.create(algo, self._run_name, n_steps_per_epoch)
        return _NamedAdapter(inner, self._extra)  # type: ignore[return-value]


_ENV_LOCK = threading.Lock()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Process-wide: wandb.init reads its group, run id, resume mode and directory only from
    environment variables when d3rlpy's adapter calls it without them. Set for the duration of
    that call, under a lock (threads of one process may start runs), then put back."""
    if not values:
        yield
        return
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def wandb_run_id(resolved: dict[str, Any]) -> str:
    """Stable across resumes of one run directory: the run id plus the config hash."""
    samrl = resolved.get(RUN_RECORD) or {}
    return f"{samrl.get('run_id', 'run')}-{samrl.get('config_hash', '')}"[:128]


def adapter_factory(
    loggers: list[str], run_dir: Path, resolved: dict[str, Any]
) -> CombineAdapterFactory:
    """d3rlpy's FileAdapterFactory (always) combined with the configured trackers."""
    from d3rlpy.logging import (
        CombineAdapterFactory,
        FileAdapterFactory,
        TensorboardAdapterFactory,
        WanDBAdapterFactory,
    )

    run_id = str(resolved[RUN_RECORD]["run_id"])
    group = (resolved.get("sweep") or {}).get("name") or str(resolved.get("name", ""))
    config_params = {k: v for k, v in resolved.items() if k != "samrl"}
    factories: list[LoggerAdapterFactory] = [FileAdapterFactory(root_dir=str(run_dir))]
    if "tensorboard" in loggers:
        # Event files land in <run_dir>/tensorboard/runs/<run_id>/ (d3rlpy's layout), so
        # `tensorboard --logdir <sweep dir>` shows every run of a sweep by its run id.
        factories.append(
            _NamedFactory(
                TensorboardAdapterFactory(root_dir=str(run_dir / TENSORBOARD_DIR)),
                run_id,
                flat_scalars(config_params),
            )
        )
    if "wandb" in loggers:
        # wandb writes its files into <WANDB_DIR>/wandb/: <run_dir>/wandb/<offline-run-...>/.
        env = {
            "WANDB_DIR": str(run_dir),
            "WANDB_RUN_GROUP": group,
            "WANDB_RUN_ID": wandb_run_id(resolved),
            # A resumed samrl run continues its W&B run (same id) instead of starting anew.
            "WANDB_RESUME": "allow",
        }
        factories.append(
            _NamedFactory(
                WanDBAdapterFactory(project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT)),
                run_id,
                {"samrl": config_params, "samrl_versions": resolved["samrl"]},
                env,
            )
        )
    return CombineAdapterFactory(factories)
