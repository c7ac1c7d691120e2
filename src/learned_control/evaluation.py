"""Seeded, reproducible evaluation of any policy (ours, an SB3 model, a planner) in an env."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .actors import Actor

__all__ = ["EvalResult", "evaluate", "run_episode"]


@dataclass
class EvalResult:
    """Returns and success of seeded episodes.

    Attributes:
        returns: summed reward per episode, in episode order.
        lengths: steps per episode.
        successes: ``info["is_success"]`` at each episode's end, or ``None`` per episode when the
            env does not report it.
        seeds: the reset seed of each episode.
    """

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool | None] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def success_rate(self) -> float | None:
        """Fraction of successful episodes; ``None`` where the env reports no success."""
        known = [s for s in self.successes if s is not None]
        return float(np.mean(known)) if known else None

    def summary(self) -> dict[str, float | None]:
        return {
            "mean": self.mean,
            "std": self.std,
            "success": self.success_rate,
            "episodes": len(self.returns),
            "mean_length": float(np.mean(self.lengths)),
        }


def run_episode(
    actor: Actor,
    env: gym.Env,
    seed: int,
    on_step: Callable[[np.ndarray, np.ndarray, float], None] | None = None,
) -> tuple[float, int, bool | None]:
    """One episode from ``env.reset(seed=seed)`` until terminated or truncated.

    Returns:
        (return, length, success) with success ``None`` if the env reports none.
    """
    if hasattr(actor, "reset"):
        actor.reset()
    obs, info = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        action = actor.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        if on_step is not None:
            on_step(obs, action, float(reward))
        obs, total, steps, done = (
            next_obs,
            total + float(reward),
            steps + 1,
            terminated or truncated,
        )
    success = info.get("is_success")
    return total, steps, None if success is None else bool(success)


def evaluate(
    actor: Actor, env: gym.Env, episodes: int = 10, seed: int = 0, progress: bool = False
) -> EvalResult:
    """Run ``episodes`` episodes with reset seeds ``seed, seed+1, ...``.

    Args:
        actor: the policy (``act(obs)``), deterministic for reproducible results.
        env: the environment (flat observations).
        episodes: number of episodes.
        seed: seed of the first episode.
        progress: show a progress bar.
    """
    result = EvalResult()
    for i in tqdm(range(episodes), desc="evaluate", disable=not progress, leave=False):
        ret, length, success = run_episode(actor, env, seed + i)
        result.returns.append(ret)
        result.lengths.append(length)
        result.successes.append(success)
        result.seeds.append(seed + i)
    return result
