"""InvertedPendulum-v5 dynamics data and ensemble shared by the planner tests (core and ROS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from learned_control.checkpoint import save_checkpoint
from learned_control.data.episodes import Episode, Transitions
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.tasks import make_env
from learned_control.training.dynamics import DynamicsTrainConfig, train_dynamics

TASK = "InvertedPendulum-v5"


def noisy_pd_episodes(transitions: int, seed: int) -> list[Episode]:
    """InvertedPendulum driven by a hand PD controller plus N(0, 1) action noise (falls often)."""
    env = make_env(TASK)
    rng = np.random.default_rng(seed)
    episodes, total, reset_seed = [], 0, seed
    while total < transitions:
        obs, _ = env.reset(seed=reset_seed)
        reset_seed += 1
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        for t in range(200):
            action = np.clip([8 * obs[1] + 0.5 * obs[3] + 0.3 * obs[0] + 0.5 * obs[2]
                              + rng.normal()], -3, 3)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated or t == 199)
            if terminated:
                break
        episodes.append(Episode(np.array(observations), np.array(actions), np.array(rewards),
                                np.array(terms), np.array(truncs)))
        total += len(actions)
    return episodes


def train_pendulum_ensemble(path: Path, episodes: list[Episode]) -> Path:
    """An ensemble of 5 deterministic 2x32 ReLU models trained (seed 0) on ``episodes``, saved
    as a dynamics checkpoint at ``path``."""
    torch.manual_seed(0)
    model = EnsembleDynamics(4, 1, members=5, hid_size=32, num_layers=2, activation="relu")
    train_dynamics(model, Transitions.from_episodes(episodes),
                   DynamicsTrainConfig(epochs=100, patience=10), seed=0)
    return save_checkpoint(path, model, task=TASK)
