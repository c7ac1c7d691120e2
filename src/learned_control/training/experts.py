"""Experts without a network: train stable-baselines3 agents, and record datasets with an actor.

Loading an expert (an SB3 zip without unpickling, a policy or a planner) is
:func:`learned_control.actors.load_actor`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..actors import Actor, NoisyActor, algorithm_class
from ..data.episodes import Episode
from ..data.minari_io import check_new_dataset_id, rollout_episodes, save_episodes
from ..errors import ConfigError
from ..tasks import Task

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["train_expert", "collect_dataset"]


def train_expert(
    task: Task,
    algo: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    tensorboard_log: str | os.PathLike | None = None,
) -> BaseAlgorithm:
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
    cls = algorithm_class(algo or task.expert_algo)
    steps = task.expert_steps if steps is None else steps
    if steps < 1:
        raise ConfigError(f"steps={steps!r}; expected a training budget >= 1 env step")
    model = cls(
        "MlpPolicy",
        task.make_env(),
        seed=seed,
        device=device,
        verbose=0,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
    )
    model.learn(total_timesteps=steps, progress_bar=progress)
    return model


def collect_dataset(
    actor: Actor,
    task: Task,
    dataset_id: str,
    episodes: int,
    seed: int = 0,
    noise_std: float = 0.0,
    algorithm_name: str = "expert",
    progress: bool = True,
) -> list[Episode]:
    """Roll ``actor`` out in ``task`` and store the episodes as a new local Minari dataset.

    Args:
        actor: the expert (e.g. from :func:`~learned_control.actors.load_actor`).
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
        actor = NoisyActor(actor, task.action_low, task.action_high, noise_std, seed)
    recorded = rollout_episodes(actor, env, episodes, seed, progress)
    save_episodes(
        dataset_id,
        recorded,
        env,
        algorithm_name=algorithm_name,
        description=f"{episodes} episodes of {algorithm_name} on {task.name}, action "
        f"noise std {noise_std} x half-range, reset seeds from {seed}",
    )
    env.close()
    return recorded
