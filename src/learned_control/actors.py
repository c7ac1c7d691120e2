"""Everything that acts: the :class:`Actor` protocol, and one loader for every kind of actor.

:func:`load_actor` turns a spec into an actor for a task:

- ``cem:<dynamics checkpoint>``: the CEM-MPC planner (:class:`MPCController`) over the dynamics
  ensemble, with the task's default planner settings or given ones (:func:`planner_for_task`),
  scoring plans with the task's torch reward or else the model's learned reward heads;
- ``random``: uniform random actions within the task's bounds (:class:`RandomActor`, seeded);
- ``<path>.zip``: a stable-baselines3 (or sb3-contrib TQC) model, loaded without unpickling;
- any other path: one of our policy checkpoints, or the seed-format MLP checkpoint.

An SB3 zip stores some of its attributes cloudpickled (the ``:serialized:`` entries of its
``data`` JSON); ``BaseAlgorithm.load`` unpickles every one that ``custom_objects`` does not
override, which runs arbitrary code from the file. :func:`load_sb3_model` reads the JSON
itself and overrides every such entry with an object built here (policy class from the
algorithm, the task's spaces, constant schedules, ...), so nothing is unpickled; the weights are
read by SB3 with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Protocol, cast

import gymnasium as gym
import numpy as np
import torch

from .checkpoint import load_checkpoint, load_dynamics
from .errors import CheckpointError, ConfigError
from .models.dynamics import EnsembleDynamics
from .params import node_parameters
from .planning.mpc import PLANNER_PARAMETERS, MPCConfig, MPCController, mpc_config_from_parameters
from .planning.rewards import LEARNED, RewardFn, TerminationFn, get_reward_fns, has_reward
from .tasks import Task
from .utils import resolve_device

__all__ = [
    "Actor",
    "ALGORITHMS",
    "algorithm_class",
    "detect_algorithm",
    "SB3Actor",
    "NoisyActor",
    "RandomActor",
    "load_sb3_model",
    "load_sb3_expert",
    "default_mpc_config",
    "planner_for_task",
    "load_actor",
]


class Actor(Protocol):
    """Anything with ``act(obs) -> action`` (numpy in, numpy out). ``reset()`` at episode start
    is optional; policies take ``reset(seed=None)``, the seed reseeding their own sampling."""

    def act(self, obs: np.ndarray) -> np.ndarray: ...


ALGORITHMS: dict[str, tuple[str, str]] = {
    "ppo": ("stable_baselines3:PPO", "stable_baselines3.common.policies:ActorCriticPolicy"),
    "sac": ("stable_baselines3:SAC", "stable_baselines3.sac.policies:SACPolicy"),
    "td3": ("stable_baselines3:TD3", "stable_baselines3.td3.policies:TD3Policy"),
    "tqc": ("sb3_contrib:TQC", "sb3_contrib.tqc.policies:TQCPolicy"),
}
"""Algorithm name -> (``module:class`` of the algorithm, ``module:class`` of its MLP policy)."""

# data keys only one algorithm family writes, checked in this order
_SIGNATURE_KEYS = (
    ("top_quantiles_to_drop_per_net", "tqc"),
    ("policy_delay", "td3"),
    ("target_entropy", "sac"),
    ("n_epochs", "ppo"),
)


def _import(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _algo_name(algo: str) -> str:
    name = algo.lower()
    if name not in ALGORITHMS:
        raise ConfigError(
            f"algorithm {algo!r} is not supported; expected one of {sorted(ALGORITHMS)}"
        )
    return name


def algorithm_class(algo: str) -> type:
    """The SB3 algorithm class of ``algo`` (``ppo``, ``sac``, ``td3``, ``tqc``; any case).

    Raises:
        ConfigError: an algorithm not in :data:`ALGORITHMS`.
    """
    return _import(ALGORITHMS[_algo_name(algo)][0])


class SB3Actor:
    """An SB3 model as an :class:`Actor`: deterministic actions.

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

    def __init__(
        self, actor: Actor, low: np.ndarray, high: np.ndarray, noise_std: float, seed: int = 0
    ) -> None:
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


def _read_data(path: Path) -> dict[str, Any]:
    """The ``data`` JSON of an SB3 zip, without unpickling anything."""
    if not path.is_file():
        raise CheckpointError(f"no SB3 model file at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{str(path)!r} is not a stable-baselines3 zip (expected a zip with "
            f"a JSON 'data' member): {err}"
        ) from err


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
    raise CheckpointError(
        f"cannot tell which algorithm wrote this SB3 model (policy module "
        f"{module!r}, keys {sorted(data)[:12]}...); pass the algorithm "
        f"explicitly"
    )


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


def _custom_objects(
    data: dict[str, Any], algo: str, observation_space: gym.spaces.Box, action_space: gym.spaces.Box
) -> dict[str, Any]:
    """An override for every ``:serialized:`` entry of ``data``, so SB3 unpickles none."""
    from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
    from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
    from stable_baselines3.common.utils import FloatSchedule

    lr = data.get("learning_rate")
    known: dict[str, Any] = {
        "policy_class": _import(ALGORITHMS[algo][1]),
        "observation_space": observation_space,
        "action_space": action_space,
        # schedules and buffers only matter for further training, not for acting
        "lr_schedule": FloatSchedule(float(lr) if isinstance(lr, (int, float)) else 3e-4),
        "clip_range": FloatSchedule(0.2),
        "replay_buffer_class": ReplayBuffer,
        "rollout_buffer_class": RolloutBuffer,
        "train_freq": TrainFreq(1, TrainFrequencyUnit.STEP),
        "target_entropy": -float(np.prod(action_space.shape)),
    }
    if isinstance(data.get("policy_kwargs"), dict) and ":serialized:" in data["policy_kwargs"]:
        known["policy_kwargs"] = _policy_kwargs(data["policy_kwargs"])
    return {
        key: known.get(key)
        for key, value in data.items()
        if isinstance(value, dict) and ":serialized:" in value
    }


def load_sb3_model(
    path: str | os.PathLike,
    task: Task,
    algo: str | None = None,
    device: str = "cpu",
    env: gym.Env | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Any, str]:
    """Load an SB3 (or sb3-contrib TQC) zip for ``task`` without unpickling anything.

    Args:
        path: the ``.zip`` written by ``model.save``.
        task: the task it acts in; it supplies the observation and action spaces.
        algo: ``ppo``, ``sac``, ``td3`` or ``tqc``; ``None`` detects it from the file.
        device: torch device of the loaded model.
        env: the env to go on training in (``None``: acting only).
        overrides: values for serialized entries that further training needs as they were
            (e.g. ``train_freq``), instead of the defaults built here.

    Returns:
        The SB3 model and its algorithm name.

    Raises:
        CheckpointError: missing or foreign file, unknown algorithm, or spaces that do not fit
            the task (both shapes named).
    """
    path = Path(path)
    data = _read_data(path)
    name = _algo_name(algo) if algo else detect_algorithm(data)
    observation_space, action_space = task.observation_space, task.action_space
    for key, space in (("observation_space", observation_space), ("action_space", action_space)):
        saved = _saved_shape(data.get(key))
        if saved is not None and saved != space.shape:
            raise CheckpointError(
                f"{str(path)!r}: the model's {key.replace('_', ' ')} has shape "
                f"{saved}; task {task.name} has {space.shape}"
            )
    cls = _import(ALGORITHMS[name][0])
    objects = _custom_objects(data, name, observation_space, action_space)
    objects.update({k: v for k, v in (overrides or {}).items() if k in objects})
    try:
        model = cls.load(path, env=env, device=device, custom_objects=objects)
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{str(path)!r} does not load as a {name.upper()} model for task {task.name}: {err}"
        ) from err
    return model, name


def load_sb3_expert(
    path: str | os.PathLike, task: Task, algo: str | None = None, device: str = "cpu"
) -> SB3Actor:
    """The deterministic actor of an SB3 zip, loaded by :func:`load_sb3_model` (same errors)."""
    return SB3Actor(*load_sb3_model(path, task, algo, device))


def default_mpc_config(task: str, **overrides: Any) -> MPCConfig:
    """The task's default planner settings, with ``overrides`` (:data:`PLANNER_PARAMETERS`).

    The single source of the defaults is the controller section of the task's parameter file
    (:func:`~learned_control.params.parameter_file`, the file the launch file gives the
    controller node); settings it does not name take the ``CEMConfig`` / :class:`MPCConfig`
    defaults.
    """
    section = node_parameters(task, "controller")
    params = {k: v for k, v in section.items() if k in PLANNER_PARAMETERS}
    return mpc_config_from_parameters({**params, **overrides})


def planner_for_task(
    model: EnsembleDynamics,
    task: Task,
    config: MPCConfig | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> MPCController:
    """The CEM-MPC planner for ``task`` through ``model``: the task's action bounds and torch
    reward/termination (or ``config.reward``'s); for a task without a torch reward (or
    ``config.reward`` ``learned``), the model's learned reward and termination heads.

    Args:
        model: the dynamics ensemble; its sizes must be the task's.
        task: the task acted in.
        config: planner settings; ``None``: the task's defaults (:func:`default_mpc_config`).
        device: torch device for planning.
        seed: seed of the planner's sampling.

    Raises:
        ConfigError: model sizes that do not fit the task, an unknown reward, a model without
            reward heads where they are needed, or settings the model cannot take (ts1/tsinf
            divisibility).
    """
    if model.obs_dim != task.obs_dim or model.act_dim != task.act_dim:
        raise ConfigError(
            f"dynamics model sizes obs={model.obs_dim} act={model.act_dim} do "
            f"not fit task {task.name} (obs={task.obs_dim} act={task.act_dim})"
        )
    config = config or default_mpc_config(task.name)
    return MPCController(
        model,
        *_reward_fns(model, task, config.reward),
        task.action_low,
        task.action_high,
        config,
        device,
        seed,
    )


def _reward_fns(
    model: EnsembleDynamics, task: Task, reward: str | None
) -> tuple[RewardFn | None, TerminationFn | None]:
    """The planner's ``(reward_fn, done_fn)``: the torch functions named ``reward`` (``None``:
    the task's), or ``(None, None)`` for the model's heads (``learned``, or a task without a
    torch reward). ConfigError when the heads are needed and the model has none."""
    if reward is None and not has_reward(task.name):
        needs = f"task {task.name} has no torch reward, so the planner needs"
    elif reward == LEARNED:
        needs = f"reward {LEARNED!r} names"
    else:
        return get_reward_fns(reward or task.name)
    if not model.reward_heads:
        raise ConfigError(
            f"{needs} the dynamics model's learned reward and termination heads, and this model "
            "has none: retrain it with them (learned-control train-dynamics --reward-heads on, "
            "or the learner's reward_heads parameter)"
        )
    return None, None


def load_actor(
    spec: str | os.PathLike,
    task: Task,
    device: str = "cpu",
    planner: MPCConfig | None = None,
    seed: int = 0,
    algo: str | None = None,
) -> Actor:
    """The actor ``spec`` describes, checked against ``task``.

    Args:
        spec: ``cem:<dynamics checkpoint>`` (the CEM-MPC planner), ``random``, an SB3 ``.zip``,
            or one of our policy checkpoints (or the seed-format MLP checkpoint).
        task: the task it acts in.
        device: torch device (``cpu``, ``cuda``, ``auto``).
        planner: ``cem:`` only: the planner settings (``None``: the task's defaults).
        seed: ``cem:`` and ``random`` only: the planner's or the random actions' seed.
        algo: ``.zip`` only: the SB3 algorithm (``None``: detected from the file).

    Raises:
        CheckpointError: missing/corrupt file, a checkpoint of the other kind (a dynamics model
            as a policy, or the reverse), or sizes that do not fit the task.
        ConfigError: planner settings given for a spec that is no planner, or settings the
            model cannot take (e.g. ts1 divisibility).
    """
    spec = str(spec)
    dev = resolve_device(device)
    if spec.startswith("cem:"):
        model = load_dynamics(spec[4:], task.obs_dim, task.act_dim, task, map_location=dev)
        return planner_for_task(model, task, planner, dev, seed)
    if planner is not None:
        raise ConfigError(
            f"planner settings given for {spec!r}; they apply to a cem:<dynamics checkpoint> spec"
        )
    if spec == "random":
        return RandomActor(task.action_low, task.action_high, seed)
    if Path(spec).suffix == ".zip":
        return load_sb3_expert(spec, task, algo, str(dev))
    ckpt = load_checkpoint(
        spec, map_location=str(dev), action_low=task.action_low, action_high=task.action_high
    )
    ckpt.check_fits(task.obs_dim, task.act_dim, task)
    if ckpt.model.kind != "policy":
        raise CheckpointError(
            f"{spec!r} holds a {ckpt.model.kind} model, not a policy (a "
            "dynamics model plans: the controller's actor=cem, an expert "
            "cem:<path>)"
        )
    ckpt.model.eval()
    return cast(Actor, ckpt.model)
