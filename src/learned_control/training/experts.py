"""Experts without a network: train stable-baselines3 agents, and load SB3 zips safely.

An SB3 zip stores some of its attributes cloudpickled (the ``:serialized:`` entries of its
``data`` JSON); ``BaseAlgorithm.load`` unpickles every one that ``custom_objects`` does not
override, which runs arbitrary code from the file. :func:`load_sb3_expert` reads the JSON
itself and overrides every such entry with an object built here (policy class from the
algorithm, the task env's spaces, constant schedules, ...), so nothing is unpickled; the
weights are read by SB3 with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checkpoint import load_checkpoint
from ..data.episodes import Episode
from ..data.minari_io import check_new_dataset_id, rollout_episodes, save_episodes
from ..errors import CheckpointError, ConfigError
from ..evaluation import Actor
from ..tasks import Task, action_bounds

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["ALGORITHMS", "train_expert", "load_sb3_expert", "load_actor", "load_expert",
           "detect_algorithm", "SB3Actor", "NoisyActor", "RandomActor", "collect_dataset"]

ALGORITHMS: dict[str, tuple[str, str]] = {
    "ppo": ("stable_baselines3:PPO", "stable_baselines3.common.policies:ActorCriticPolicy"),
    "sac": ("stable_baselines3:SAC", "stable_baselines3.sac.policies:SACPolicy"),
    "td3": ("stable_baselines3:TD3", "stable_baselines3.td3.policies:TD3Policy"),
    "tqc": ("sb3_contrib:TQC", "sb3_contrib.tqc.policies:TQCPolicy"),
}
"""Algorithm name -> (``module:class`` of the algorithm, ``module:class`` of its MLP policy)."""

# data keys only one algorithm family writes, checked in this order
_SIGNATURE_KEYS = (("top_quantiles_to_drop_per_net", "tqc"), ("policy_delay", "td3"),
                   ("target_entropy", "sac"), ("n_epochs", "ppo"))


def _import(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _algo_name(algo: str) -> str:
    name = algo.lower()
    if name not in ALGORITHMS:
        raise ConfigError(f"algorithm {algo!r} is not supported; expected one of "
                          f"{sorted(ALGORITHMS)}")
    return name


def train_expert(task: Task, algo: str | None = None, steps: int | None = None, seed: int = 0,
                 device: str = "cpu", progress: bool = True,
                 tensorboard_log: str | os.PathLike | None = None) -> BaseAlgorithm:
    """Train a stable-baselines3 expert on ``task`` with the algorithm's default hyperparameters.

    Args:
        task: the task; its ``expert_algo``/``expert_steps`` are the defaults.
        algo: ``ppo``, ``sac``, ``td3`` or ``tqc`` (``None``: the task's default).
        steps: env steps of training (``None``: the task's default).
        seed: seed of the agent and its env.
        device: torch device of the agent.
        progress: show SB3's progress bar.
        tensorboard_log: folder for SB3's TensorBoard curves (``None``: none).

    Returns:
        The trained SB3 model (``model.save(path)`` writes its zip).
    """
    name = _algo_name(algo or task.expert_algo)
    steps = task.expert_steps if steps is None else steps
    if steps < 1:
        raise ConfigError(f"steps={steps!r}; expected a training budget >= 1 env step")
    cls = _import(ALGORITHMS[name][0])
    model = cls("MlpPolicy", task.make_env(), seed=seed, device=device, verbose=0,
                tensorboard_log=None if tensorboard_log is None else str(tensorboard_log))
    model.learn(total_timesteps=steps, progress_bar=progress)
    return model


class SB3Actor:
    """An SB3 model as an :class:`~learned_control.evaluation.Actor`: deterministic actions.

    Attributes:
        model: the SB3 model.
        algo: its algorithm name.
    """

    def __init__(self, model: Any, algo: str) -> None:
        self.model, self.algo = model, algo

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Action ``(act_dim,)`` or ``(B, act_dim)`` for ``(obs_dim,)`` or ``(B, obs_dim)``."""
        action, _ = self.model.predict(np.asarray(obs, dtype=np.float32), deterministic=True)
        return np.asarray(action, dtype=np.float64)


class NoisyActor:
    """Adds Gaussian noise to another actor's actions, clipped to the action bounds.

    Args:
        actor: the wrapped actor.
        low, high: action bounds ``(act_dim,)``.
        noise_std: noise standard deviation as a fraction of the half-range ``(high - low) / 2``
            (0 disables it).
        seed: seed of the noise generator.
    """

    def __init__(self, actor: Actor, low: np.ndarray, high: np.ndarray, noise_std: float,
                 seed: int = 0) -> None:
        if noise_std < 0:
            raise ConfigError(f"noise_std={noise_std!r}; expected >= 0")
        self.actor, self.low, self.high = actor, np.asarray(low), np.asarray(high)
        self.scale = noise_std * (self.high - self.low) / 2
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        if hasattr(self.actor, "reset"):
            self.actor.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        action = np.asarray(self.actor.act(obs), dtype=np.float64)
        noise = self.rng.normal(size=action.shape) * self.scale
        return np.clip(action + noise, self.low, self.high)


class RandomActor:
    """Uniform random actions in a Box action space (the baseline of normalized scores).

    Args:
        low, high: action bounds ``(act_dim,)``.
        seed: seed of the generator.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int = 0) -> None:
        self.low, self.high = np.asarray(low), np.asarray(high)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        shape = np.shape(obs)[:-1] + self.low.shape
        return self.rng.uniform(self.low, self.high, size=shape)


def collect_dataset(actor: Actor, task: Task, dataset_id: str, episodes: int, seed: int = 0,
                    noise_std: float = 0.0, algorithm_name: str = "expert",
                    progress: bool = True) -> list[Episode]:
    """Roll ``actor`` out in ``task`` and store the episodes as a new local Minari dataset.

    Args:
        actor: the expert (e.g. from :func:`load_actor`).
        task: the task to act in.
        dataset_id: id of the new dataset (must not exist).
        episodes: number of episodes, reset seeds ``seed, seed+1, ...``.
        seed: first reset seed; also seeds the action noise.
        noise_std: Gaussian action noise as a fraction of the action half-range (0: none);
            the noisy action is the one applied and recorded.
        algorithm_name: stored in the dataset metadata.
        progress: show a progress bar.

    Returns:
        The recorded episodes.

    Raises:
        DatasetError: if ``dataset_id`` is malformed or exists (checked before any rollout).
    """
    check_new_dataset_id(dataset_id)  # fail before spending time on rollouts
    env = task.make_env()
    if noise_std > 0:
        low, high = action_bounds(env)
        actor = NoisyActor(actor, low, high, noise_std, seed)
    recorded = rollout_episodes(actor, env, episodes, seed, progress)
    save_episodes(dataset_id, recorded, env, algorithm_name=algorithm_name,
                  description=f"{episodes} episodes of {algorithm_name} on {task.name}, action "
                              f"noise std {noise_std} x half-range, reset seeds from {seed}")
    env.close()
    return recorded


def _read_data(path: Path) -> dict[str, Any]:
    """The ``data`` JSON of an SB3 zip, without unpickling anything."""
    if not path.is_file():
        raise CheckpointError(f"no SB3 model file at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{str(path)!r} is not a stable-baselines3 zip (expected a zip with "
                              f"a JSON 'data' member): {err}") from err


def detect_algorithm(data: dict[str, Any]) -> str:
    """The algorithm (``ppo``/``sac``/``td3``/``tqc``) that wrote an SB3 zip's ``data`` JSON.

    Read from the policy class's module name, else from keys only one algorithm writes.
    """
    module = str((data.get("policy_class") or {}).get("__module__", ""))
    for name, (_, policy) in ALGORITHMS.items():
        if name != "ppo" and module == policy.split(":")[0]:
            return name
    for key, name in _SIGNATURE_KEYS:
        if key in data:
            return name
    raise CheckpointError(f"cannot tell which algorithm wrote this SB3 model (policy module "
                          f"{module!r}, keys {sorted(data)[:12]}...); pass the algorithm "
                          f"explicitly")


def _saved_shape(entry: Any) -> tuple[int, ...] | None:
    """The shape an SB3 ``data`` entry records for a Box space (readable, not unpickled)."""
    if isinstance(entry, dict):
        shape = entry.get("_shape", entry.get("shape"))
        if isinstance(shape, list):
            return tuple(int(s) for s in shape)
    return None


def _policy_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """A serialized ``policy_kwargs`` rebuilt from its readable JSON entries; activation
    classes are resolved by name in ``torch.nn``."""
    from torch import nn

    kwargs = {}
    for key, value in entry.items():
        if key.startswith(":"):
            continue
        match = re.fullmatch(r"<class 'torch\.nn\.modules\.\w+\.(\w+)'>", str(value))
        kwargs[key] = getattr(nn, match.group(1)) if match else value
    return kwargs


def _custom_objects(data: dict[str, Any], algo: str, env) -> dict[str, Any]:
    """An override for every ``:serialized:`` entry of ``data``, so SB3 unpickles none."""
    from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
    from stable_baselines3.common.utils import FloatSchedule

    lr = data.get("learning_rate")
    known: dict[str, Any] = {
        "policy_class": _import(ALGORITHMS[algo][1]),
        "observation_space": env.observation_space,
        "action_space": env.action_space,
        # schedules and buffers only matter for further training, not for acting
        "lr_schedule": FloatSchedule(float(lr) if isinstance(lr, (int, float)) else 3e-4),
        "clip_range": FloatSchedule(0.2),
        "replay_buffer_class": ReplayBuffer,
        "rollout_buffer_class": RolloutBuffer,
        "train_freq": TrainFreq(1, TrainFrequencyUnit.STEP),
        "target_entropy": -float(np.prod(env.action_space.shape)),
    }
    if isinstance(data.get("policy_kwargs"), dict) and ":serialized:" in data["policy_kwargs"]:
        known["policy_kwargs"] = _policy_kwargs(data["policy_kwargs"])
    return {key: known.get(key) for key, value in data.items()
            if isinstance(value, dict) and ":serialized:" in value}


def load_sb3_expert(path: str | os.PathLike, task: Task, algo: str | None = None,
                    device: str = "cpu") -> SB3Actor:
    """Load an SB3 (or sb3-contrib TQC) zip for ``task`` without unpickling anything.

    Args:
        path: the ``.zip`` written by ``model.save``.
        task: the task it acts in; its env supplies the observation and action spaces.
        algo: ``ppo``, ``sac``, ``td3`` or ``tqc``; ``None`` detects it from the file.
        device: torch device of the loaded model.

    Returns:
        An actor whose ``act(obs)`` gives the model's deterministic action.

    Raises:
        CheckpointError: missing or foreign file, unknown algorithm, or spaces that do not fit
            the task (both shapes named).
    """
    path = Path(path)
    data = _read_data(path)
    name = _algo_name(algo) if algo else detect_algorithm(data)
    env = task.make_env()
    for key, space in (("observation_space", env.observation_space),
                       ("action_space", env.action_space)):
        saved = _saved_shape(data.get(key))
        if saved is not None and saved != space.shape:
            raise CheckpointError(f"{str(path)!r}: the model's {key.replace('_', ' ')} has shape "
                                  f"{saved}; task {task.name} has {space.shape}")
    cls = _import(ALGORITHMS[name][0])
    try:
        model = cls.load(path, device=device, custom_objects=_custom_objects(data, name, env))
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{str(path)!r} does not load as a {name.upper()} model for task "
                              f"{task.name}: {err}") from err
    env.close()
    return SB3Actor(model, name)


def load_expert(spec: str, task: Task, device: str = "cpu") -> Actor:
    """An expert for DAgger: ``cem:<dynamics checkpoint>`` (the CEM-MPC planner with the task's
    default settings, ``config/<task>.yaml``), an SB3 ``.zip`` or one of our policy checkpoints.

    Raises:
        CheckpointError: unreadable file, or one that does not fit the task.
    """
    if spec.startswith("cem:"):
        from ..planning.mpc import MPCController

        return MPCController.from_checkpoint(spec[4:], task.name, device=device)
    return load_actor(spec, task, device)


def load_actor(path: str | os.PathLike, task: Task, device: str = "cpu") -> Actor:
    """An SB3 zip (``.zip``) or one of our checkpoints, as an actor for ``task``.

    Raises:
        CheckpointError: unreadable file, or one that does not fit the task.
    """
    if Path(path).suffix == ".zip":
        return load_sb3_expert(path, task, device=device)
    env = task.make_env()
    low, high = action_bounds(env)
    env.close()
    ckpt = load_checkpoint(path, map_location=device, action_low=low, action_high=high)
    ckpt.check_fits(task.obs_dim, task.act_dim, task.name)
    if ckpt.model.kind != "policy":
        raise CheckpointError(f"{str(path)!r} holds a {ckpt.model.kind} model, not a policy (a "
                              "dynamics model plans: the controller's actor=cem, an expert "
                              "cem:<path>)")
    ckpt.model.eval()
    return ckpt.model
