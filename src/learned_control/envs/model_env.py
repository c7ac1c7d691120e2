"""FetchReach envs whose step is a learned dynamics model, and real-env rollouts to fit one.

Observations are the 13-d FetchReach layout of :mod:`learned_control.envs.fetch_reach`; reward
and success of a predicted step are :func:`~learned_control.envs.fetch_reach.fetch_reward_success`,
so the learned-model envs score their predicted states exactly as the real env.

Any dynamics model plugs in through :data:`Predict`: a callable mapping observations
``(B, obs_dim)`` and actions ``(B, act_dim)`` tensors to next observations ``(B, obs_dim)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv
from tqdm import tqdm

from ..checkpoint import load_dynamics
from ..data.episodes import Episode, Transitions
from ..errors import ConfigError
from ..models.dynamics import EnsembleDynamics
from .fetch_reach import FIXED_GOAL, fetch_reward_success, make_fixed_goal_env

__all__ = [
    "Predict",
    "model_step",
    "ensemble_predict",
    "Dynamics",
    "as_predict",
    "rollout_steps",
    "collect_transitions",
    "ModelVecEnv",
    "ModelFetchReach",
    "MODEL_ENV_ID",
]

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""Dynamics callable: observations ``(B, obs_dim)``, actions ``(B, act_dim)`` -> next
observations ``(B, obs_dim)``."""


def model_step(
    predict: Predict, obs: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One learned-model FetchReach step of a batch: ``(next_obs, reward, success)``.

    Args:
        predict: dynamics callable, see :data:`Predict`.
        obs: observations ``(B, 13)``.
        actions: actions ``(B, 4)``, already clipped to [-1, 1].

    Returns:
        next observations ``(B, 13)`` float32 on ``obs``'s device, their goal part held at
        ``obs[:, :3]`` as in the real env; reward ``(B,)`` and success ``(B,)`` of
        :func:`fetch_reward_success`.
    """
    next_obs = predict(obs, actions).to(obs.device, torch.float32)
    next_obs[:, :3] = obs[:, :3]
    return next_obs, *fetch_reward_success(obs, next_obs)


def ensemble_predict(model: EnsembleDynamics) -> Predict:
    """:data:`Predict` from an ensemble: the members' mean next observation ``(B, obs_dim)``."""
    return lambda obs, act: model.predict(obs, act).mean(0)


Dynamics = str | os.PathLike | EnsembleDynamics | Predict
"""What the model envs step with: a dynamics checkpoint path, an ensemble, or a :data:`Predict`."""


def as_predict(dynamics: Dynamics, device: str | torch.device = "cpu") -> Predict:
    """The :data:`Predict` of ``dynamics`` on ``device`` (an ensemble is moved there, a
    checkpoint loaded there; a :data:`Predict` is returned as it is).

    Raises:
        CheckpointError: a checkpoint that is missing, unreadable, not a dynamics model, or not
            for 13-d FetchReach observations and 4-d actions.
    """
    if isinstance(dynamics, str | os.PathLike):
        dynamics = load_dynamics(dynamics, 13, 4, map_location=device)
    if isinstance(dynamics, EnsembleDynamics):
        return ensemble_predict(dynamics.to(device))
    return dynamics


def _start_states(start_obs: np.ndarray) -> np.ndarray:
    """``start_obs`` as float32 ``(N, 13)``, or :class:`ConfigError`."""
    start_obs = np.asarray(start_obs, dtype=np.float32)
    if start_obs.ndim != 2 or start_obs.shape[1] != 13 or len(start_obs) == 0:
        raise ConfigError(
            f"start_obs has shape {start_obs.shape}; expected (N>0, 13) FetchReach observations"
        )
    return start_obs


def rollout_steps(
    env: gym.Env,
    act: Callable[[np.ndarray], np.ndarray],
    steps: int,
    seed: int = 0,
    progress: bool = False,
) -> list[Episode]:
    """Exactly ``steps`` real steps of ``env`` under ``act`` (observation ``(obs_dim,)`` -> action).

    Episodes reset with seeds ``seed, seed+1, ...`` on termination or truncation; the last one is
    cut at the budget (marked truncated).
    """
    if steps < 1:
        raise ConfigError(f"steps={steps}; expected >= 1")
    episodes: list[Episode] = []
    taken = 0
    bar = tqdm(total=steps, desc="rollout", unit="step", disable=not progress, leave=False)
    while taken < steps:
        obs0, _ = env.reset(seed=seed + len(episodes))
        obs, rows = obs0, []
        done = False
        while not done:
            action = np.asarray(act(obs), dtype=np.float64)
            obs, rew, term, trunc, _ = env.step(action)
            taken += 1
            bar.update()
            rows.append((obs, action, rew, term, trunc or taken >= steps))
            done = rows[-1][3] or rows[-1][4]
        nxt, a, r, t, tr = (np.asarray(x) for x in zip(*rows, strict=True))
        episodes.append(Episode(np.vstack([obs0, nxt]), a, r, t, tr, seed=seed + len(episodes)))
    bar.close()
    return episodes


def collect_transitions(
    env: gym.Env, act: Callable[[np.ndarray], np.ndarray], steps: int, seed: int = 0
) -> Transitions:
    """``steps`` real transitions of ``env`` under ``act`` (float32); see :func:`rollout_steps`."""
    data = Transitions.from_episodes(rollout_steps(env, act, steps, seed))
    obs, actions, rewards, next_obs = (
        x.astype(np.float32)
        for x in (data.observations, data.actions, data.rewards, data.next_observations)
    )
    return Transitions(obs, actions, rewards, next_obs, data.terminations, data.last_steps)


class ModelVecEnv(VecEnv):
    """An SB3 VecEnv whose step is a learned model: all envs advance in one forward pass.

    Episodes start from real start states (``start_obs`` rows, drawn with the env's seed), end on
    success (``terminated``; unless ``terminate_on_success`` is off) or after ``max_steps``
    (``truncated``); reward and ``info["is_success"]`` of each step are
    :func:`fetch_reward_success`, as the fixed-goal task gives them. The goal part
    ``obs[:, :3]`` is held fixed, as in the real env.

    Args:
        dynamics: the model, see :data:`Dynamics`.
        start_obs: real initial observations ``(N, 13)`` to reset from.
        num_envs: parallel episodes.
        max_steps: episode length cap (FetchReach: 50).
        device: where the model runs.
        seed: start-state sampling seed.
        terminate_on_success: the fixed-goal task's episode (``True``) or the standard 50-step
            episode whose success is that of its last step (``False``).
    """

    render_mode = None  # nothing to render

    def __init__(
        self,
        dynamics: Dynamics,
        start_obs: np.ndarray,
        num_envs: int = 16,
        max_steps: int = 50,
        device: str | torch.device = "cpu",
        seed: int = 0,
        terminate_on_success: bool = True,
    ) -> None:
        start_obs = _start_states(start_obs)
        if num_envs < 1 or max_steps < 1:
            raise ConfigError(f"num_envs={num_envs}, max_steps={max_steps}; both must be >= 1")
        obs_space = gym.spaces.Box(-np.inf, np.inf, (13,), np.float32)
        super().__init__(num_envs, obs_space, gym.spaces.Box(-1.0, 1.0, (4,), np.float32))
        self.max_steps, self.device = max_steps, torch.device(device)
        self.predict = as_predict(dynamics, self.device)
        self.terminate_on_success = terminate_on_success
        self.start_obs = torch.as_tensor(start_obs, device=self.device)
        self._rng = torch.Generator(device="cpu").manual_seed(seed)
        self._obs = self._sample_starts(num_envs)
        self._t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._actions: torch.Tensor | None = None

    def _sample_starts(self, n: int) -> torch.Tensor:
        idx = torch.randint(len(self.start_obs), (n,), generator=self._rng)
        return self.start_obs[idx.to(self.device)].clone()

    def reset(self) -> np.ndarray:
        self._obs, self._t = self._sample_starts(self.num_envs), torch.zeros_like(self._t)
        return self._obs.cpu().numpy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = torch.as_tensor(
            np.clip(actions, -1.0, 1.0), dtype=torch.float32, device=self.device
        )

    @torch.no_grad()
    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        if self._actions is None:
            raise RuntimeError("step_wait called without step_async")
        next_obs, reward, success = model_step(self.predict, self._obs, self._actions)
        self._t += 1
        terminated = success if self.terminate_on_success else torch.zeros_like(success)
        truncated = (self._t >= self.max_steps) & ~terminated
        done = terminated | truncated
        out_obs = next_obs.cpu().numpy()
        infos: list[dict] = [{"is_success": bool(s)} for s in success.tolist()]
        if bool(done.any()):
            ended = done.nonzero().squeeze(-1)
            for i, tr in zip(ended.tolist(), truncated[ended].tolist(), strict=True):
                infos[i]["terminal_observation"] = out_obs[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(tr)
            next_obs[ended] = self._sample_starts(len(ended))
            self._t[ended] = 0
        self._obs, self._actions = next_obs, None
        return (
            next_obs.cpu().numpy(),
            reward.cpu().numpy().astype(np.float32),
            done.cpu().numpy(),
            infos,
        )

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any
    ) -> list[Any]:
        raise NotImplementedError(f"ModelVecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))

    def seed(self, seed: int | None = None) -> list[int | None]:
        if seed is not None:
            self._rng.manual_seed(seed)
        return [seed] * self.num_envs


class ModelFetchReach(gym.Env):
    """A Gymnasium FetchReach env whose step is a learned model, for one episode at a time.

    Registered as :data:`MODEL_ENV_ID` with FetchReach's 50-step time limit, for any SB3
    algorithm (:class:`ModelVecEnv` steps many episodes in one forward pass instead)::

        env = gym.make(MODEL_ENV_ID, dynamics="runs/world-model-.../round0/dynamics.pt")

    Each step is :func:`model_step`: reward and ``info["is_success"]`` as
    :class:`~learned_control.envs.fetch_reach.FixedGoalFetchReach` computes them on the real
    env, the goal held fixed.

    Args:
        dynamics: the model, see :data:`Dynamics`.
        start_obs: real initial observations ``(N, 13)``, drawn with the env's ``np_random``;
            ``None``: every reset is a reset of the real env (:func:`make_fixed_goal_env` with
            ``goal``) with the same seed, so episodes start exactly where real ones do.
        goal: the real env's goal when ``start_obs`` is ``None``: :data:`FIXED_GOAL` (the
            fixed-goal task) or ``None`` (the env's random goals).
        terminate_on_success: end the episode on success (the fixed-goal task), or run it to the
            time limit (the standard episode, scored at its last step).
        device: where the model runs.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        dynamics: Dynamics,
        start_obs: np.ndarray | None = None,
        goal: tuple[float, float, float] | None = FIXED_GOAL,
        terminate_on_success: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.predict = as_predict(dynamics, self.device)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (13,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.terminate_on_success = terminate_on_success
        self.start_obs = None if start_obs is None else _start_states(start_obs)
        self._real = make_fixed_goal_env(goal) if start_obs is None else None
        self._obs: torch.Tensor | None = None

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._real is not None:
            obs = self._real.reset(seed=seed)[0]
        else:
            assert self.start_obs is not None  # set exactly when there is no real env
            obs = self.start_obs[self.np_random.integers(len(self.start_obs))]
        self._obs = torch.as_tensor(np.asarray(obs, np.float32)[None], device=self.device)
        return self._obs[0].cpu().numpy(), {}

    @torch.no_grad()
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._obs is None:
            raise gym.error.ResetNeeded("ModelFetchReach: call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,) or not np.isfinite(action).all():
            raise ValueError(f"action {action!r}: expected 4 finite numbers")
        actions = torch.as_tensor(np.clip(action, -1.0, 1.0)[None], device=self.device)
        self._obs, reward, success = model_step(self.predict, self._obs, actions)
        done = bool(success[0]) and self.terminate_on_success
        info = {"is_success": float(success[0])}
        return self._obs[0].cpu().numpy(), float(reward[0]), done, False, info

    def close(self) -> None:
        if self._real is not None:
            self._real.close()


MODEL_ENV_ID = "LearnedControl/FetchReachModel-v0"
"""Gymnasium id of :class:`ModelFetchReach` (``gym.make`` it after importing this module)."""
if MODEL_ENV_ID not in gym.registry:
    gym.register(
        MODEL_ENV_ID,
        entry_point="learned_control.envs.model_env:ModelFetchReach",
        max_episode_steps=50,
    )
