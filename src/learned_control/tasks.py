"""The task registry: one entry per supported environment.

A :class:`Task` says how to build the env (id, kwargs, wrappers), what its flat observation and
action look like (its spaces, action bounds and step duration, read from one env built once per
task and process), and the defaults that other parts use per task (expert algorithm and budget).
Reward and termination functions in torch live in :mod:`learned_control.planning.rewards`;
observation/command specs for real robots live in :mod:`learned_control.specs`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
import numpy as np

from .errors import ConfigError

__all__ = ["Task", "TASKS", "get_task", "make_env", "register_task"]


@dataclass(frozen=True)
class _EnvFacts:
    """What a task's env says about itself, read once."""

    observation_space: gym.spaces.Box
    action_space: gym.spaces.Box
    dt: float | None


@dataclass(frozen=True)
class Task:
    """One supported environment.

    Attributes:
        name: registry key (what users type: ``--task Pusher-v5``).
        env_id: Gymnasium id passed to ``gym.make``.
        obs_dim: size of the flat observation the policy sees.
        act_dim: size of the action.
        env_kwargs: extra keyword arguments for ``gym.make``.
        dict_obs_keys: for dict-observation envs, the keys concatenated (in this order) into the
            flat observation; ``None`` for envs with a Box observation.
        obs_labels: a name per observation element (the layout published with each observation).
        has_success: whether ``info["is_success"]`` is reported.
        goal_dim: size of the goal a goal-conditioned env takes (``env.unwrapped.goal``, seen in
            the observation as ``desired_goal``); 0 for other envs.
        expert_algo: stable-baselines3 algorithm used by ``learned-control expert`` by default.
        expert_steps: default training budget of that expert, in env steps.
    """

    name: str
    env_id: str
    obs_dim: int
    act_dim: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    dict_obs_keys: tuple[str, ...] | None = None
    obs_labels: tuple[str, ...] = ()
    has_success: bool = False
    goal_dim: int = 0
    expert_algo: str = "sac"
    expert_steps: int = 100_000

    def __post_init__(self) -> None:
        if self.obs_labels and len(self.obs_labels) != self.obs_dim:
            raise ConfigError(
                f"task {self.name}: {len(self.obs_labels)} obs_labels for obs_dim {self.obs_dim}"
            )

    @property
    def labels(self) -> tuple[str, ...]:
        """Observation element names (generic ``obs_<i>`` where no layout is documented)."""
        return self.obs_labels or tuple(f"obs_{i}" for i in range(self.obs_dim))

    def _env_facts(self) -> _EnvFacts:
        """The spaces and ``dt`` of one env built on first use, kept on this instance."""
        facts = self.__dict__.get("_facts")
        if facts is None:
            env = self.make_env()
            dt = getattr(env.unwrapped, "dt", None)
            facts = _EnvFacts(
                cast(gym.spaces.Box, env.observation_space),
                cast(gym.spaces.Box, env.action_space),
                None if dt is None else float(dt),
            )
            env.close()
            object.__setattr__(self, "_facts", facts)  # frozen: a cache, not a field
        return facts

    @property
    def observation_space(self) -> gym.spaces.Box:
        """The env's flat ``Box(obs_dim)`` observation space (a copy: its RNG is the caller's)."""
        return copy.deepcopy(self._env_facts().observation_space)

    @property
    def action_space(self) -> gym.spaces.Box:
        """The env's ``Box(act_dim)`` action space (a copy: its RNG is the caller's)."""
        return copy.deepcopy(self._env_facts().action_space)

    @property
    def action_low(self) -> np.ndarray:
        """Lower action bound ``(act_dim,)``, float64 (a fresh array)."""
        return np.array(self._env_facts().action_space.low, np.float64)

    @property
    def action_high(self) -> np.ndarray:
        """Upper action bound ``(act_dim,)``, float64 (a fresh array)."""
        return np.array(self._env_facts().action_space.high, np.float64)

    @property
    def dt(self) -> float:
        """Simulated seconds per env step (``env.unwrapped.dt``)."""
        dt = self._env_facts().dt
        if dt is None:
            raise ConfigError(f"task {self.name}: env {self.env_id} has no dt (step duration)")
        return dt

    def make_env(self, **overrides: Any) -> gym.Env:
        """Build the env with a flat ``Box(obs_dim)`` observation; ``overrides`` go to
        ``gym.make``."""
        if self.env_id.startswith(("Fetch", "PointMaze", "AntMaze")):
            import gymnasium_robotics

            gym.register_envs(gymnasium_robotics)
        env = gym.make(self.env_id, **{**self.env_kwargs, **overrides})
        if self.dict_obs_keys is not None:
            env = gym.wrappers.FlattenObservation(
                gym.wrappers.FilterObservation(env, list(self.dict_obs_keys))
            )
        if env.observation_space.shape != (self.obs_dim,) or env.action_space.shape != (
            self.act_dim,
        ):
            raise ConfigError(
                f"task {self.name}: env {self.env_id} gives observation "
                f"{env.observation_space.shape} and action {env.action_space.shape}, "
                f"the registry says ({self.obs_dim},) and ({self.act_dim},)"
            )
        return env


def _joint_labels(
    root: list[str], joints: list[str], with_root_x_vel: bool = True
) -> tuple[str, ...]:
    """Labels of the MuJoCo locomotion layout: qpos (minus root x) then qvel."""
    pos = [f"{n}_pos" for n in root + joints]
    vel = [f"{n}_vel" for n in (["rootx"] if with_root_x_vel else []) + root + joints]
    return tuple(pos + vel)


_LEGS = ["thigh", "leg", "foot"]
TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` to :data:`TASKS` (users may register their own envs)."""
    TASKS[task.name] = task
    return task


for _task in (
    Task(
        "InvertedPendulum-v5",
        "InvertedPendulum-v5",
        4,
        1,
        obs_labels=("cart_x", "pole_angle", "cart_vel", "pole_angvel"),
        expert_algo="ppo",
        expert_steps=30_000,
    ),
    Task("Pusher-v5", "Pusher-v5", 23, 7, expert_steps=300_000),
    Task(
        "Reacher-v5",
        "Reacher-v5",
        10,
        2,
        obs_labels=(
            "cos_joint0",
            "cos_joint1",
            "sin_joint0",
            "sin_joint1",
            "target_x",
            "target_y",
            "joint0_vel",
            "joint1_vel",
            "fingertip_to_target_x",
            "fingertip_to_target_y",
        ),
        expert_steps=200_000,
    ),
    Task(
        "HalfCheetah-v5",
        "HalfCheetah-v5",
        17,
        6,
        obs_labels=_joint_labels(
            ["rootz", "rooty"], [f"{s}{j}" for s in "bf" for j in ("thigh", "shin", "foot")]
        ),
    ),
    Task(
        "Hopper-v5",
        "Hopper-v5",
        11,
        3,
        obs_labels=_joint_labels(["rootz", "rooty"], ["thigh", "leg", "foot"]),
    ),
    Task(
        "Walker2d-v5",
        "Walker2d-v5",
        17,
        6,
        obs_labels=_joint_labels(["rootz", "rooty"], _LEGS + [f"{j}_left" for j in _LEGS]),
    ),
    Task("Ant-v5", "Ant-v5", 105, 8),
    # Goal-conditioned reach: observation = desired_goal (3) + robot observation (10).
    Task(
        "FetchReach-v4",
        "FetchReach-v4",
        13,
        4,
        dict_obs_keys=("desired_goal", "observation"),
        obs_labels=(
            "goal_x",
            "goal_y",
            "goal_z",
            "grip_x",
            "grip_y",
            "grip_z",
            "finger_r",
            "finger_l",
            "grip_vx",
            "grip_vy",
            "grip_vz",
            "finger_vr",
            "finger_vl",
        ),
        has_success=True,
        goal_dim=3,
        expert_algo="ppo",
        expert_steps=40_960,
    ),
):
    register_task(_task)


def get_task(name: str) -> Task:
    """The registered task ``name``; :class:`ConfigError` listing the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def make_env(task: str | Task, **overrides: Any) -> gym.Env:
    """Shortcut for ``get_task(task).make_env(**overrides)``."""
    return (get_task(task) if isinstance(task, str) else task).make_env(**overrides)
