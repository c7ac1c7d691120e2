"""The FetchReach tasks: the fixed-goal task, its reward on tensors, and the scripted expert.

Observation layout (flat ``FetchReach-v4`` and the fixed-goal variant, 13-d): ``desired_goal``
(3, m) then the robot ``observation`` (10): gripper position (3, m), finger widths (2), gripper
velocity (3), finger velocities (2). Reward and success are computed from the gripper position
``obs[3:6]`` and the goal ``obs[0:3]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym
import numpy as np
import torch

from ..errors import ConfigError
from ..tasks import get_task

if TYPE_CHECKING:
    from gymnasium_robotics.envs.fetch.reach import MujocoFetchReachEnv

__all__ = [
    "FIXED_GOAL",
    "SUCCESS_DISTANCE",
    "FixedGoalFetchReach",
    "make_fixed_goal_env",
    "FIXED_GOAL_ENV_ID",
    "fetch_reward_success",
    "ReachExpert",
]

FIXED_GOAL = (1.486, 0.73, 0.681)
"""The goal of the fixed-goal task, metres in the world frame."""
SUCCESS_DISTANCE = 0.05
"""FetchReach success threshold on the gripper-goal distance, metres."""


class FixedGoalFetchReach(gym.Wrapper):
    """The fixed-goal FetchReach task: fixed goal, shaped reward, terminate on success.

    Wraps the flat 13-d ``FetchReach-v4`` task env. Reward per step is
    ``10 * (previous distance - current distance)`` (distances in m); ``terminated`` is
    ``info["is_success"]`` unless ``terminate_on_success`` is off.

    Args:
        env: the flat FetchReach env (``get_task("FetchReach-v4").make_env()``).
        goal: goal position ``(3,)`` in metres; ``None`` keeps the env's own random goal of each
            reset (same shaped reward).
        terminate_on_success: end the episode when the gripper is within
            :data:`SUCCESS_DISTANCE` (the fixed-goal task). ``False``: the standard FetchReach
            episode, 50 steps, whose success is ``is_success`` at its last step, so the policy
            must stay at the goal.
    """

    def __init__(
        self,
        env: gym.Env,
        goal: tuple[float, float, float] | None = FIXED_GOAL,
        terminate_on_success: bool = True,
    ) -> None:
        super().__init__(env)
        self.terminate_on_success = terminate_on_success
        self.goal = None if goal is None else np.asarray(goal, dtype=np.float64)
        if self.goal is not None and self.goal.shape != (3,):
            raise ConfigError(
                f"goal={goal!r}; expected 3 coordinates in metres or None (random goals)"
            )
        self._goal = np.zeros(3)
        self._distance = 0.0

    def _fixed(self, obs: np.ndarray) -> np.ndarray:
        obs = np.array(obs, dtype=np.float64)
        obs[:3] = self._goal
        return obs

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self._goal = np.array(obs[:3], dtype=np.float64) if self.goal is None else self.goal.copy()
        cast("MujocoFetchReachEnv", self.env.unwrapped).goal = self._goal.copy()
        obs = self._fixed(obs)
        self._distance = float(np.linalg.norm(obs[3:6] - self._goal))
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, _, terminated, truncated, info = self.env.step(action)
        obs = self._fixed(obs)
        distance = float(np.linalg.norm(obs[3:6] - self._goal))
        reward, self._distance = 10.0 * (self._distance - distance), distance
        info["is_success"] = float(distance < SUCCESS_DISTANCE)
        terminated = bool(terminated or (self.terminate_on_success and info["is_success"]))
        return obs, reward, terminated, truncated, info


def make_fixed_goal_env(
    goal: tuple[float, float, float] | None = FIXED_GOAL,
    terminate_on_success: bool = True,
    **overrides: Any,
) -> gym.Env:
    """The fixed-goal FetchReach env (flat 13-d observation, 4-d action in [-1, 1]).

    ``goal=None``: the env's random goals with the same shaped reward;
    ``terminate_on_success``: see :class:`FixedGoalFetchReach`.
    """
    return FixedGoalFetchReach(
        get_task("FetchReach-v4").make_env(**overrides), goal, terminate_on_success
    )


FIXED_GOAL_ENV_ID = "LearnedControl/FetchReachFixedGoal-v4"
"""Gymnasium id of :func:`make_fixed_goal_env` (``gym.make`` it after importing this module)."""
if FIXED_GOAL_ENV_ID not in gym.registry:
    gym.register(
        FIXED_GOAL_ENV_ID, entry_point="learned_control.envs.fetch_reach:make_fixed_goal_env"
    )


def fetch_reward_success(
    obs: torch.Tensor, next_obs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shaped reward ``(B,)`` and success flags ``(B,)`` (bool) of FetchReach transitions.

    Args:
        obs: observations ``(B, 13)`` before the step.
        next_obs: observations ``(B, 13)`` after the step (real or predicted).
    """
    goal = obs[:, :3]
    before = torch.linalg.vector_norm(obs[:, 3:6] - goal, dim=-1)
    after = torch.linalg.vector_norm(next_obs[:, 3:6] - goal, dim=-1)
    return 10.0 * (before - after), after < SUCCESS_DISTANCE


class ReachExpert:
    """Moves the gripper straight at ``desired_goal``: ``a_xyz = clip(gain * (goal - grip), -1,
    1)``, gripper action 0.

    Works on the flat observation of the ``FetchReach-v4`` task: ``desired_goal`` (m) in
    ``obs[0:3]``, the gripper position (m) in ``obs[3:6]``; an action of 1 moves the gripper
    about 5 cm in one step. On 100 random goals it succeeds in every episode.

    Args:
        gain: proportional gain (1/m).
    """

    def __init__(self, gain: float = 10.0) -> None:
        self.gain = gain

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Action ``(4,)`` for the observation ``(13,)``."""
        action = np.zeros(4)
        action[:3] = np.clip(self.gain * (obs[:3] - obs[3:6]), -1.0, 1.0)
        return action
