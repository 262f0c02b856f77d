"""MuJoCo datasets the D4RL way: SAC behaviour policies trained online, then rolled out.

Stages, each cached so a dataset can be regenerated or resumed:
1. `train_behaviour_policies`: d3rlpy SAC trained online on the gymnasium v5 env; checkpoints
   saved and evaluated along the way. expert = best-evaluated checkpoint, medium = the earlier
   checkpoint whose return is closest to a third of the expert's, random = the freshly
   initialised policy. Every training step is logged (D4RL layout) for medium-replay.
2. `collect`: roll a saved policy out in chunks; each chunk is seeded from (seed, stream,
   chunk index) alone and written to disk when done, so a killed collection continues at the
   first missing chunk and produces exactly the same data as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from samrl.data.actor import Actor
from samrl.data.hdf5 import read_d4rl_hdf5, write_d4rl_hdf5
from samrl.data.rollout import episode_returns
from samrl.data.transitions import Transitions, concatenate
from samrl.envvars import env_number
from samrl.progress import step_bar
from samrl.safeload import load_learnable

GENERATOR_VERSION = 2  # 2: SAC trained in resumable segments; float64 numpy rollouts
POLICY_STEPS_ENV = "SAMRL_POLICY_STEPS"
DEFAULT_POLICY_STEPS = 1_000_000  # D4RL trained its SAC behaviour policies for 1M steps
MAX_CHECKPOINTS = 20
PARALLEL_ENVS = 8  # episodes stepped side by side so the policy runs on batches
DEFAULT_CHUNK_SIZE = 50_000

StepCallback = Callable[[int], None]


@contextlib.contextmanager
def _single_torch_thread() -> Iterator[None]:
    """SAC's small MLPs gain nothing from intra-op threads, and on a shared few-core machine
    extra threads make every update many times slower; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_policy_steps() -> int:
    return int(env_number(POLICY_STEPS_ENV, DEFAULT_POLICY_STEPS, integer=True, minimum=1))


@dataclass(frozen=True)
class BehaviourPolicies:
    directory: pathlib.Path
    manifest: dict[str, Any]

    def path(self, level: str) -> pathlib.Path:
        return self.directory / f"{level}.d3"

    @property
    def training_log(self) -> pathlib.Path:
        return self.directory / "training_log.hdf5"


def policy_directory(
    cache: pathlib.Path, env_name: str, seed: int, policy_steps: int
) -> pathlib.Path:
    return cache / "policies" / f"{env_name}_sac_s{seed}_p{policy_steps}_g{GENERATOR_VERSION}"


# The D4RL arrays of a transition table, in file order.
_CHUNK_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")


class _StepLogger(gym.Wrapper):
    """Records every step SAC takes, in order: that is the replay buffer D4RL calls
    medium-replay (the training data up to the medium checkpoint). Training runs in segments
    (`train_behaviour_policies`); a segment's rows are saved for a resume and replayed from
    disk into the logger and d3rlpy's buffer by `replay_segment`."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.rows: dict[str, list[Any]] = {k: [] for k in _CHUNK_KEYS}
        self._obs: np.ndarray | None = None
        self._segment_start = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.rows["observations"].append(self._obs)
        self.rows["actions"].append(np.asarray(action, dtype=np.float32))
        self.rows["rewards"].append(float(reward))
        self.rows["terminals"].append(bool(terminated))
        self.rows["timeouts"].append(bool(truncated and not terminated))
        self.rows["next_observations"].append(obs)
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def end_segment(self) -> dict[str, np.ndarray]:
        """fit_online ended and clipped the episode in progress (a timeout): the rows of the
        segment just ended, as the env returned them."""
        if self.rows["terminals"] and not self.rows["terminals"][-1]:
            self.rows["timeouts"][-1] = True
        start, self._segment_start = self._segment_start, len(self.rows["rewards"])
        return {k: np.asarray(v[start:]) for k, v in self.rows.items()}

    def replay_segment(self, rows: dict[str, np.ndarray], buffer: Any) -> None:
        """Puts a saved segment back: into these rows, and into d3rlpy's `buffer` through the
        same append / clip_episode calls fit_online made when it took those steps."""
        for i in range(len(rows["rewards"])):
            for key in _CHUNK_KEYS:
                self.rows[key].append(rows[key][i])
            buffer.append(rows["observations"][i], rows["actions"][i], float(rows["rewards"][i]))
            if rows["terminals"][i] or rows["timeouts"][i]:
                buffer.clip_episode(bool(rows["terminals"][i]))
        buffer.clip_episode(False)  # as fit_online does at its end
        self.end_segment()

    def transitions(self, n: int | None = None) -> Transitions:
        rows = {k: np.asarray(v[:n]) for k, v in self.rows.items()}
        data = Transitions(
            observations=rows["observations"].astype(np.float32),
            actions=rows["actions"].astype(np.float32),
            rewards=rows["rewards"].astype(np.float32),
            terminals=rows["terminals"].astype(bool),
            timeouts=rows["timeouts"].astype(bool),
            next_observations=rows["next_observations"].astype(np.float32),
        )
        if not (data.terminals[-1] or data.timeouts[-1]):
            data.timeouts[-1] = True
        return data


def evaluate_policy(algo: Any, env_id: str, episodes: int, seed: int) -> float:
    """Mean return of the greedy policy."""
    env = gym.make(env_id)

    def greedy(obs: Any, reward: float) -> Any:
        return algo.predict(np.asarray(obs, dtype=np.float32)[None])[0]

    totals = episode_returns(env, lambda: greedy, episodes, seed)
    env.close()
    return float(np.mean(totals))


def random_policy(cache: pathlib.Path, env_name: str, env_id: str, seed: int) -> pathlib.Path:
    """D4RL's random level: a randomly initialised SAC policy, no training (seconds)."""
    path = cache / "policies" / f"{env_name}_random_s{seed}_g{GENERATOR_VERSION}.d3"
    if path.exists():
        return path
    import d3rlpy

    d3rlpy.seed(seed)
    env = gym.make(env_id)
    sac = _sac_config(d3rlpy).create(device="cpu:0")
    sac.build_with_env(env)
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sac.save(str(tmp))
    os.replace(tmp, path)
    return path


def _sac_config(d3rlpy: Any) -> Any:
    return d3rlpy.algos.SACConfig(
        batch_size=256,
        actor_learning_rate=3e-4,
        critic_learning_rate=3e-4,
        temp_learning_rate=3e-4,
    )


def train_behaviour_policies(
    env_name: str,
    env_id: str,
    *,
    seed: int,
    policy_steps: int,
    cache: pathlib.Path,
    progress: bool = False,
) -> BehaviourPolicies:
    """SAC trained online on `env_id`, in segments of one checkpoint interval each.

    Each segment is one `fit_online` call that starts a fresh episode. After a segment the
    complete training state is written (`_ResumeState`): the model with its optimizer states,
    the segment's steps, the RNG streams of numpy, torch and the env, the checkpoint list. A
    training killed at any moment continues from its last finished segment and ends with the
    same bytes as one that was never interrupted (tests/test_data_mujoco.py kills one with -9).
    """
    directory = policy_directory(cache, env_name, seed, policy_steps)
    manifest_path = directory / "policies.json"
    if manifest_path.exists():
        return BehaviourPolicies(directory, json.loads(manifest_path.read_text()))
    training = _SegmentedTraining(env_name, env_id, seed, policy_steps, directory)
    # d3rlpy's own bar counts epochs without saying what is trained; this one says it and
    # shows the remaining time of the whole training.
    description = f"training the SAC behaviour policy for {env_name} (medium/expert levels)"
    with step_bar(policy_steps, description, "step", progress) as bar:
        training.run(bar)
    manifest = training.finish()
    _write_atomic(manifest_path, json.dumps(manifest, indent=2))  # last: training finished
    shutil.rmtree(training.resume.directory, ignore_errors=True)
    return BehaviourPolicies(directory, manifest)


class _SegmentedTraining:
    """One behaviour-policy training: built or restored from its last segment (`__init__`),
    run segment by segment (`run`), then its levels chosen and its log written (`finish`)."""

    def __init__(
        self, env_name: str, env_id: str, seed: int, policy_steps: int, directory: pathlib.Path
    ):
        import d3rlpy  # heavy import, only when training

        self.d3rlpy, self.env_id, self.seed, self.policy_steps = d3rlpy, env_id, seed, policy_steps
        self.directory = directory
        self.checkpoint_dir = directory / "checkpoints"
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.interval, self.eval_episodes = _checkpoint_schedule(policy_steps)
        self.random_steps = min(10_000, policy_steps // 10)
        self.resume = _ResumeState(directory / "resume")
        self.env = _StepLogger(gym.make(env_id))
        self.sac = _sac_config(d3rlpy).create(device="cpu:0")
        limit = max(policy_steps, 1000)
        self.buffer = d3rlpy.dataset.create_fifo_replay_buffer(limit=limit, env=self.env)
        self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        if self.resume.segments_done:
            self.sac.build_with_env(self.env)
            self.resume.restore(self.sac, self.env, self.buffer)
        else:
            d3rlpy.seed(seed)
        self.checkpoints = self.resume.checkpoints

    def run(self, bar: Any) -> None:
        bar.update(min(self.policy_steps, self.resume.segments_done * self.interval))
        n_segments = -(-self.policy_steps // self.interval)
        with _single_torch_thread():
            for segment in range(self.resume.segments_done, n_segments):
                offset = segment * self.interval
                length = min(self.interval, self.policy_steps - offset)

                def callback(algo: Any, epoch: int, step: int, offset: int = offset) -> None:
                    bar.update(offset + step - bar.n)
                    self._checkpoint(algo, offset + step)

                self.sac.fit_online(
                    self.env,
                    buffer=self.buffer,
                    n_steps=length,
                    n_steps_per_epoch=length,
                    # fit_online counts steps from 1 in every call: the thresholds move with it
                    random_steps=max(0, self.random_steps - offset),
                    update_start_step=max(0, self.random_steps - offset),
                    logger_adapter=self.d3rlpy.logging.NoopAdapterFactory(),
                    show_progress=False,
                    callback=callback,
                )
                self.resume.save(segment, self.env.end_segment(), self.sac, self.env)

    def _checkpoint(self, algo: Any, total_step: int) -> None:
        """Saves and evaluates the policy at each checkpoint step; the first call comes before
        any update: the randomly initialised policy."""
        first = not self.checkpoints
        if first or total_step % self.interval == 0 or total_step == self.policy_steps:
            step = 0 if first else total_step
            path = self.checkpoint_dir / f"sac_{step}.d3"
            algo.save(str(path))
            score = evaluate_policy(algo, self.env_id, self.eval_episodes, seed=10_000 + self.seed)
            self.checkpoints.append({"step": step, "path": path.name, "return": score})

    def finish(self) -> dict[str, Any]:
        """The levels copied out of the checkpoints, the training log written; the manifest."""
        levels = _levels(self.checkpoints)
        for level, chosen in levels.items():
            # copied, not moved: one checkpoint may serve two levels in a very short training
            shutil.copyfile(self.checkpoint_dir / chosen["path"], self.directory / f"{level}.d3")
        about = {"env_id": self.env_id, "seed": self.seed, "policy_steps": self.policy_steps}
        write_d4rl_hdf5(self.directory / "training_log.hdf5", self.env.transitions(), about)
        return {
            **about,
            "algorithm": "d3rlpy SAC (online)",
            "generator_version": GENERATOR_VERSION,
            "checkpoints": self.checkpoints,
            **levels,
        }


def _write_atomic(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _ResumeState:
    """The state of a behaviour-policy training between two segments, in `directory`:

    - `segment_<k>.npz`: the steps taken in segment k, as the env returned them;
    - `model_<k>.pt`: the SAC modules and their optimizers after segment k (d3rlpy's
      `save_model`, read back by its weights-only `load_model`);
    - `resume.json`, replaced atomically last: segments done, d3rlpy's update counter, the
      checkpoint list and every RNG stream the training draws from (numpy's global one for
      minibatches, torch's for sampled actions, the env's for resets and random actions).
    A kill before `resume.json` is replaced leaves the previous segment's state in force.
    """

    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        path = directory / "resume.json"
        self.record: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.segments_done: int = self.record.get("segments_done", 0)
        self.checkpoints: list[dict[str, Any]] = self.record.get("checkpoints", [])

    def save(self, segment: int, rows: dict[str, np.ndarray], sac: Any, env: _StepLogger) -> None:
        import torch

        self.directory.mkdir(parents=True, exist_ok=True)
        steps = self.directory / f"segment_{segment:04d}.npz"
        tmp = steps.with_name(f".{steps.stem}.tmp.npz")
        np.savez(tmp, **rows)
        os.replace(tmp, steps)
        model = self.directory / f"model_{segment:04d}.pt"
        tmp = model.with_name(f".{model.name}.tmp")
        sac.save_model(str(tmp))
        os.replace(tmp, model)
        legacy = np.random.get_state()
        record = {
            "segments_done": segment + 1,
            "grad_step": int(sac.grad_step),
            "checkpoints": self.checkpoints,
            "numpy": [legacy[0], legacy[1].tolist(), *legacy[2:]],
            "torch": torch.get_rng_state().tolist(),
            "env": env.unwrapped.np_random.bit_generator.state,
            "action_space": env.action_space.np_random.bit_generator.state,
        }
        _write_atomic(self.directory / "resume.json", json.dumps(record))
        old = self.directory / f"model_{segment - 1:04d}.pt"
        old.unlink(missing_ok=True)
        self.segments_done = segment + 1

    def restore(self, sac: Any, env: _StepLogger, buffer: Any) -> None:
        import torch

        last = self.segments_done - 1
        sac.load_model(str(self.directory / f"model_{last:04d}.pt"))
        sac.set_grad_step(self.record["grad_step"])  # kept outside the modules
        for segment in range(self.segments_done):
            with np.load(self.directory / f"segment_{segment:04d}.npz") as rows:
                env.replay_segment({k: rows[k] for k in rows.files}, buffer)
        numpy_state = self.record["numpy"]
        np.random.set_state(
            (numpy_state[0], np.asarray(numpy_state[1], np.uint32), *numpy_state[2:])
        )
        torch.set_rng_state(torch.tensor(self.record["torch"], dtype=torch.uint8))
        env.unwrapped.np_random.bit_generator.state = self.record["env"]
        env.action_space.np_random.bit_generator.state = self.record["action_space"]


def _checkpoint_schedule(policy_steps: int) -> tuple[int, int]:
    """(steps between checkpoints, evaluation episodes at each). Checkpoint evaluations can
    cost 1000 env steps per episode: few for the tiny trainings tests use, D4RL-like (20
    checkpoints, 5 episodes) for real ones."""
    n_checkpoints = min(MAX_CHECKPOINTS, max(3, policy_steps // 1000))
    eval_episodes = 5 if policy_steps >= 10_000 else 1
    return max(1, policy_steps // n_checkpoints), eval_episodes


def _levels(checkpoints: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """random: the untrained policy; expert: the best trained checkpoint; medium: the one up
    to the expert's whose return is closest to a third of the expert's (D4RL's levels)."""
    trained = [c for c in checkpoints if c["step"] > 0] or checkpoints
    expert = max(trained, key=lambda c: c["return"])
    earlier = [c for c in trained if c["step"] <= expert["step"]]
    target = expert["return"] / 3.0
    medium = min(earlier, key=lambda c: (abs(c["return"] - target), c["step"]))
    return {"random": checkpoints[0], "medium": medium, "expert": expert}


def medium_replay(policies: BehaviourPolicies, size: int) -> tuple[Transitions, np.ndarray]:
    """The training steps up to the medium checkpoint (at most `size` of them)."""
    log, _ = read_d4rl_hdf5(policies.training_log)
    steps = max(1, int(policies.manifest["medium"]["step"]))
    data = log.head(min(steps, size))
    returns = data.episode_returns()
    # only complete episodes count as behaviour returns; the cut last one does not
    complete = returns[:-1] if data.timeouts[-1] and not data.terminals[-1] else returns
    return data, complete


def _collect_chunk(
    actor: Actor, env_id: str, n_steps: int, seed_words: list[int], on_steps: StepCallback | None
) -> tuple[Transitions, np.ndarray]:
    """`n_steps` steps from PARALLEL_ENVS envs; unfinished episodes end as timeouts."""
    seeds = np.random.SeedSequence(seed_words).generate_state(PARALLEL_ENVS + 1)
    envs = [gym.make(env_id) for _ in range(PARALLEL_ENVS)]
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds[:-1], strict=True)])
    episodes: list[dict[str, list[Any]]] = [_empty_episode() for _ in envs]
    finished: list[dict[str, list[Any]]] = []
    returns: list[float] = []
    collected = 0
    rng = np.random.default_rng(int(seeds[-1]))  # the actor's sampling noise
    while collected < n_steps:
        before = collected
        actions = actor.sample(obs, rng)
        for i, env in enumerate(envs):
            if collected >= n_steps:
                break
            next_obs, reward, terminated, truncated, _ = env.step(actions[i])
            ep = episodes[i]
            ep["observations"].append(obs[i].copy())
            ep["actions"].append(actions[i])
            ep["rewards"].append(float(reward))
            ep["terminals"].append(bool(terminated))
            ep["timeouts"].append(bool(truncated and not terminated))
            ep["next_observations"].append(next_obs)
            collected += 1
            if terminated or truncated:
                finished.append(ep)
                returns.append(float(np.sum(ep["rewards"])))
                episodes[i] = _empty_episode()
                next_obs, _ = env.reset()
            obs[i] = next_obs
        if on_steps is not None:
            on_steps(collected - before)
    for ep in episodes:
        if ep["rewards"]:
            ep["timeouts"][-1] = True
            finished.append(ep)
    for env in envs:
        env.close()
    parts = [
        Transitions(
            observations=np.asarray(ep["observations"], np.float32),
            actions=np.asarray(ep["actions"], np.float32),
            rewards=np.asarray(ep["rewards"], np.float32),
            terminals=np.asarray(ep["terminals"], bool),
            timeouts=np.asarray(ep["timeouts"], bool),
            next_observations=np.asarray(ep["next_observations"], np.float32),
        )
        for ep in finished
    ]
    return concatenate(parts), np.asarray(returns, np.float64)


def _empty_episode() -> dict[str, list[Any]]:
    return {k: [] for k in _CHUNK_KEYS}


def actor_of(policy_path: pathlib.Path) -> Actor:
    """The actor of a SAC checkpoint samrl trained (`.d3`, read without unpickling)."""
    return Actor.from_algo(load_learnable(policy_path, device="cpu:0"))


def collect(
    actor: Actor,
    env_id: str,
    *,
    size: int,
    seed: int,
    stream: str,
    work_dir: pathlib.Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_steps: StepCallback | None = None,
) -> tuple[Transitions, np.ndarray]:
    """Roll `actor` out for `size` steps, resuming from chunks already in `work_dir`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    state_path = work_dir / "state.json"
    wanted = {
        "policy": actor.digest(),
        "env_id": env_id,
        "size": size,
        "seed": seed,
        "stream": stream,
        "chunk_size": chunk_size,
        "generator_version": GENERATOR_VERSION,
    }
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("params") != wanted:  # stale chunks from other settings: start over
            for old in work_dir.glob("chunk_*.npz"):
                old.unlink()
            state = {"params": wanted, "chunks_done": 0}
    else:
        state = {"params": wanted, "chunks_done": 0}
    n_chunks = -(-size // chunk_size)
    stream_word = int.from_bytes(stream.encode()[:8].ljust(8, b"\0"), "little")
    parts: list[Transitions] = []
    returns: list[np.ndarray] = []
    for index in range(n_chunks):
        path = work_dir / f"chunk_{index:05d}.npz"
        steps = min(chunk_size, size - index * chunk_size)
        if index < state["chunks_done"] and path.exists():
            with np.load(path, allow_pickle=False) as saved:
                parts.append(Transitions(*(saved[k] for k in _CHUNK_KEYS)))
                returns.append(saved["episode_returns"])
            if on_steps is not None:
                on_steps(steps)
            continue
        chunk, chunk_returns = _collect_chunk(
            actor, env_id, steps, [seed, stream_word, index], on_steps
        )
        tmp = work_dir / f".chunk_{index:05d}.tmp.npz"
        np.savez(tmp, episode_returns=chunk_returns, **{k: getattr(chunk, k) for k in _CHUNK_KEYS})
        os.replace(tmp, path)
        state["chunks_done"] = index + 1
        state_tmp = state_path.with_suffix(".tmp")
        state_tmp.write_text(json.dumps(state))
        os.replace(state_tmp, state_path)
        parts.append(chunk)
        returns.append(chunk_returns)
    return concatenate(parts), np.concatenate(returns) if returns else np.zeros(0)
