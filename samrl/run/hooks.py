"""What an algorithm samrl adds itself (COMBO today) may ask of samrl's trainer.

d3rlpy's algorithms need nothing beyond d3rlpy's API: samrl's trainer (samrl/run/train.py) builds
them, calls `update` and saves them with `save_model`. An algorithm samrl adds may need two
things more, and declares them by inheriting `TrainingHooks` beside its d3rlpy base class:

- statistics of the training data before the algorithm is built (RIQL's observation
  normalisation): `samrl_prepare`;
- a stage before the first update, run once per run (COMBO trains its dynamics model):
  `samrl_pretrain`;
- state outside its torch modules that `--resume` must restore for a resumed run to equal an
  uninterrupted one (COMBO's buffer of model rollouts): `samrl_checkpoint_state` and
  `samrl_restore_checkpoint_state`.

Every hook has a do-nothing default, so an algorithm overrides only what it needs. The trainer
calls the hooks of `training_hooks(algo)` unconditionally: the algorithm itself when it
inherits `TrainingHooks`, otherwise `NO_HOOKS` (d3rlpy's algorithms). docs/extending.md says
how a new algorithm joins samrl (this class, plus one line in samrl/algos.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from d3rlpy.dataset import ReplayBufferBase


class TrainingHooks:
    """Mixin of samrl's own algorithms: `class COMBO(QLearningAlgoBase[...], TrainingHooks)`.

    The method names carry a `samrl_` prefix so they cannot collide with d3rlpy's own. A
    subclass defining any other `samrl_*` method is refused when the class is created (a
    misspelt hook would otherwise be silently ignored).
    """

    HOOKS = frozenset(
        {
            "samrl_prepare",
            "samrl_pretrain",
            "samrl_checkpoint_state",
            "samrl_restore_checkpoint_state",
        }
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = sorted(
            name for name in vars(cls) if name.startswith("samrl_") and name not in cls.HOOKS
        )
        if unknown:
            raise TypeError(
                f"{cls.__name__} defines {', '.join(unknown)}, which is not a samrl training "
                f"hook; the hooks are {', '.join(sorted(cls.HOOKS))}"
            )

    def samrl_prepare(self, dataset: ReplayBufferBase, next_observations: Any = None) -> None:
        """Called by the trainer before the algorithm is built (new and resumed runs alike),
        with the training dataset and, where corrupted data keep them apart, the training
        rows' next observations (samrl/data/corruption.py). RIQL sets its observation scaler
        from both here. Must depend on the data only (a resumed run calls it again)."""

    def samrl_pretrain(
        self,
        dataset: ReplayBufferBase,
        *,
        run_dir: Path | str | None = None,
        progress: bool = False,
        stream: IO[str] | None = None,
    ) -> list[dict[str, float]]:
        """Train whatever must exist before the first update, on the training dataset.

        Called once by the trainer for a new run, after the algorithm is built and the SAM
        engine installed (so SAM and probes apply to this stage too), before the first update.
        Not called when a run resumes from a checkpoint: what this stage trained is in the
        checkpoint (modules through d3rlpy's save_model, anything else through
        `samrl_checkpoint_state`). Files it writes go in `run_dir` (docs/run-directory.md names
        them); `progress` asks for a progress bar on `stream`. Returns one row of metrics per
        epoch of the stage (the default stage does nothing and returns []).
        """
        return []

    def samrl_checkpoint_state(self) -> dict[str, Any]:
        """Extra state for samrl's resume checkpoint; {} for none.

        Called at every checkpoint; modules and optimizers are saved by d3rlpy's save_model
        already, so this holds only what lives outside them. Only tensors, numpy arrays and
        scalars (not of object dtype) and plain containers (dict with str or int keys, list,
        tuple, str, int, float, bool, None): checkpoints are read with torch's
        weights-only unpickler, so resuming a run someone else wrote runs no code
        (samrl/safeload.py). Saving refuses anything else (StateTypeError, a TypeError naming
        the value's place).
        """
        return {}

    def samrl_restore_checkpoint_state(self, state: dict[str, Any]) -> None:
        """Put back what `samrl_checkpoint_state` returned, after the checkpoint's modules are
        loaded into the built algorithm. Not called when that state was empty."""


#: The hooks of algorithms that declare none (every d3rlpy algorithm): they do nothing.
NO_HOOKS = TrainingHooks()


def training_hooks(algo: object) -> TrainingHooks:
    """The algorithm itself when it inherits TrainingHooks, else the do-nothing NO_HOOKS."""
    return algo if isinstance(algo, TrainingHooks) else NO_HOOKS
