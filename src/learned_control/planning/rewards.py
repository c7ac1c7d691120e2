"""Reward and termination of each task in torch, on (predicted) states, batched over any
leading shape.

A :data:`RewardFn` maps ``(obs, act, next_obs)`` of shapes ``(..., obs_dim)``, ``(..., act_dim)``,
``(..., obs_dim)`` to rewards ``(...)``; a :data:`TerminationFn` maps ``next_obs (..., obs_dim)``
to a bool tensor ``(...)``. They reproduce gymnasium's v5 envs (all of which compute the reward
after the simulation step, from the new state):

- ``InvertedPendulum-v5``: +1 per step while alive; terminated when ``|angle| > 0.2`` rad.
- ``InvertedPendulum-v5/shaped``: ``-x^2/5 - theta^2 + 1``, minus 2 when
  ``|theta| > 0.2`` or ``|x| > 1``; never terminates (the penalty does the work).
- ``InvertedPendulum-v5/centered``: ``1 - x^2 - theta^2`` while alive; terminated when
  ``|theta| > 0.2`` or ``|x| > 0.9`` (keeps the cart off the rail ends, which the env's own
  reward only notices once the pole falls). The planner default.
- ``Reacher-v5``: ``-|fingertip - target| - |a|^2`` (exact: obs[8:10] is that vector, z = 0).
- ``Pusher-v5``: ``-0.5 |object - tip| - |object - goal| - 0.1 |a|^2`` (exact).
- ``HalfCheetah-v5``: ``x_velocity - 0.1 |a|^2`` where the env's ``x_velocity`` is the root x
  displacement over ``dt``; x is not observed, so we use the mean of the root x velocity
  (obs[8]) at the start and end of the step (trapezoid rule): on random-action transitions
  the error is 0.14 per step on average and below 1.0 at most (0.69 seen over 2000 steps;
  checked in ``test/core/test_rewards.py``). The control cost is exact.

Any other task plans with the reward and termination heads its dynamics model learned
(:data:`LEARNED`, ``reward_heads``); so can a task above, by naming ``learned`` as its reward.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from ..errors import ConfigError

__all__ = [
    "RewardFn",
    "TerminationFn",
    "REWARDS",
    "LEARNED",
    "get_reward_fns",
    "has_reward",
    "never",
]

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TerminationFn = Callable[[torch.Tensor], torch.Tensor]


@functools.cache
def _strict_bounds(
    limits: tuple[float, ...], obs_dim: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``(obs_dim,)`` bounds with ``|v| < bound`` exactly when ``|v| <= limit`` (the limit in
    ``dtype``) for the first ``len(limits)`` components and ``v`` is finite: the next value above
    each limit, then +inf. NaN compares False."""
    bounds = torch.full((obs_dim,), math.inf, dtype=dtype)
    bounds[: len(limits)] = torch.nextafter(
        torch.tensor(limits, dtype=dtype), bounds[: len(limits)]
    )
    return bounds.to(device)


def _beyond(next_obs: torch.Tensor, limits: tuple[float, ...]) -> torch.Tensor:
    """True where a leading component's ``|v|`` exceeds its limit or any component is not
    finite, in four tensor operations: the planner calls this every horizon step."""
    bounds = _strict_bounds(limits, next_obs.shape[-1], next_obs.dtype, next_obs.device)
    return ~(next_obs.abs() < bounds).all(-1)


def _pendulum_alive(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return (~_pendulum_done(next_obs)).to(next_obs.dtype)


def _pendulum_done(next_obs: torch.Tensor) -> torch.Tensor:
    return _beyond(next_obs, (math.inf, 0.2))  # |theta| > 0.2 rad


def _pendulum_shaped(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    x, theta = next_obs[..., 0], next_obs[..., 1]
    fallen = (theta.abs() > 0.2) | (x.abs() > 1.0)
    return -(x**2) / 5 - theta**2 + 1 - 2.0 * fallen.to(next_obs.dtype)


def _pendulum_centered(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    x, theta = next_obs[..., 0], next_obs[..., 1]
    return 1.0 - x * x - theta * theta  # x * x: the same value as x ** 2, one cheaper operation


def _pendulum_off_rail(next_obs: torch.Tensor) -> torch.Tensor:
    return _beyond(next_obs, (0.9, 0.2))  # |x| > 0.9 m or |theta| > 0.2 rad


def never(next_obs: torch.Tensor) -> torch.Tensor:
    """The termination of tasks that never terminate (the planner skips it by identity)."""
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


def _reacher(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return -next_obs[..., 8:10].norm(dim=-1) - (act**2).sum(-1)


def _pusher(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    tip, obj, goal = next_obs[..., 14:17], next_obs[..., 17:20], next_obs[..., 20:23]
    return -0.5 * (obj - tip).norm(dim=-1) - (obj - goal).norm(dim=-1) - 0.1 * (act**2).sum(-1)


def _half_cheetah(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return 0.5 * (obs[..., 8] + next_obs[..., 8]) - 0.1 * (act**2).sum(-1)


REWARDS: dict[str, tuple[RewardFn, TerminationFn]] = {
    "InvertedPendulum-v5": (_pendulum_alive, _pendulum_done),
    "InvertedPendulum-v5/shaped": (_pendulum_shaped, never),
    "InvertedPendulum-v5/centered": (_pendulum_centered, _pendulum_off_rail),
    "Reacher-v5": (_reacher, never),
    "Pusher-v5": (_pusher, never),
    "HalfCheetah-v5": (_half_cheetah, never),
}
"""Reward name -> (reward, termination). Names are task names, plus ``<task>/<variant>``."""


LEARNED = "learned"
"""The reward name of the dynamics model's own reward and termination heads."""


def has_reward(task: str) -> bool:
    """Whether :data:`REWARDS` has a torch reward for the task named ``task``."""
    return task in REWARDS


def get_reward_fns(name: str) -> tuple[RewardFn, TerminationFn]:
    """``(reward, termination)`` registered as ``name``; :class:`ConfigError` listing the known
    ones."""
    try:
        return REWARDS[name]
    except KeyError:
        raise ConfigError(
            f"no torch reward for {name!r}; known: {', '.join(REWARDS)}, or {LEARNED!r} (the "
            "dynamics model's reward heads)"
        ) from None
