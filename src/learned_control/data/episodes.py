"""Episodes and flat transition sets: the one in-memory form every data source converts to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError

__all__ = ["Episode", "Transitions"]


@dataclass
class Episode:
    """One episode as Minari stores it.

    Attributes:
        observations: ``(T+1, obs_dim)``: every observation including the final one.
        actions: ``(T, act_dim)``: the action applied after each observation.
        rewards: ``(T,)``.
        terminations: ``(T,)`` bool, true at a terminal step.
        truncations: ``(T,)`` bool, true where the episode was cut (time limit).
        seed: the reset seed, if known.
        expert_actions: ``(T, act_dim)`` expert relabels of the visited observations (DAgger),
            or ``None``.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    seed: int | None = None
    expert_actions: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.observations = np.asarray(self.observations, dtype=np.float64)
        self.actions = np.asarray(self.actions, dtype=np.float64)
        self.rewards = np.asarray(self.rewards, dtype=np.float64).reshape(-1)
        self.terminations = np.asarray(self.terminations, dtype=bool).reshape(-1)
        self.truncations = np.asarray(self.truncations, dtype=bool).reshape(-1)
        steps = len(self.actions)
        if self.observations.ndim != 2 or self.actions.ndim != 2:
            raise DatasetError(
                f"episode arrays must be 2-D, got observations "
                f"{self.observations.shape} and actions {self.actions.shape}"
            )
        if len(self.observations) != steps + 1 or not (
            len(self.rewards) == len(self.terminations) == len(self.truncations) == steps
        ):
            raise DatasetError(
                f"episode sizes disagree: {len(self.observations)} observations (need T+1), "
                f"{steps} actions, {len(self.rewards)} rewards, {len(self.terminations)} "
                f"terminations, {len(self.truncations)} truncations"
            )
        if self.expert_actions is not None:
            self.expert_actions = np.asarray(self.expert_actions, dtype=np.float64)
            if self.expert_actions.shape != self.actions.shape:
                raise DatasetError(
                    f"expert_actions {self.expert_actions.shape} != actions {self.actions.shape}"
                )

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())


@dataclass
class Transitions:
    """A flat set of ``N`` transitions ``(s, a, r, s', terminated)``.

    Attributes:
        observations: ``(N, obs_dim)``.
        actions: ``(N, act_dim)``.
        rewards: ``(N,)``.
        next_observations: ``(N, obs_dim)``.
        terminations: ``(N,)`` bool.
        last_steps: ``(N,)`` bool, the transition ends its episode (terminated, truncated or the
            end of the recording); ``None`` where episodes are unknown. Action chunks need it.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminations: np.ndarray
    last_steps: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    @classmethod
    def from_episodes(
        cls, episodes: Sequence[Episode], use_expert_actions: bool = False
    ) -> Transitions:
        """Flatten episodes; with ``use_expert_actions`` the labels are the expert relabels."""
        if not episodes:
            raise DatasetError("no episodes to flatten")
        if use_expert_actions and any(ep.expert_actions is None for ep in episodes):
            raise DatasetError("use_expert_actions=True but some episodes carry no expert actions")
        return cls(
            observations=np.concatenate([ep.observations[:-1] for ep in episodes]),
            actions=np.concatenate(
                [ep.expert_actions if use_expert_actions else ep.actions for ep in episodes]
            ),
            rewards=np.concatenate([ep.rewards for ep in episodes]),
            next_observations=np.concatenate([ep.observations[1:] for ep in episodes]),
            terminations=np.concatenate([ep.terminations for ep in episodes]),
            last_steps=np.concatenate([np.arange(len(ep)) == len(ep) - 1 for ep in episodes]),
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Transitions]) -> Transitions:
        """One set holding all of ``parts`` in order."""
        obs, act, rew, nxt, term = [
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("observations", "actions", "rewards", "next_observations", "terminations")
        ]
        known = all(p.last_steps is not None for p in parts)
        last = np.concatenate([p.last_steps for p in parts]) if known else None
        return cls(obs, act, rew, nxt, term, last)

    def action_chunks(self, horizon: int) -> np.ndarray:
        """``(N, horizon, act_dim)``: each transition's action followed by the next ``horizon - 1``
        of its episode; past the episode's end its last action repeats (as Diffusion Policy pads).

        Raises:
            DatasetError: if the episode boundaries are unknown (``last_steps`` is ``None``).
        """
        if self.last_steps is None:
            raise DatasetError(
                "action chunks need the episode boundaries of the data, which "
                "these transitions do not carry"
            )
        ends = np.flatnonzero(self.last_steps)
        if len(ends) == 0 or ends[-1] != len(self) - 1:
            ends = np.append(ends, len(self) - 1)  # an unfinished last episode ends with the data
        steps = np.arange(len(self))
        episode_end = ends[np.searchsorted(ends, steps)]
        return self.actions[np.minimum(steps[:, None] + np.arange(horizon), episode_end[:, None])]

    def check_fits(self, obs_dim: int, act_dim: int, source: str = "data") -> None:
        """Raise :class:`DatasetError` naming both shapes if the sizes are not the task's."""
        if self.obs_dim != obs_dim or self.act_dim != act_dim:
            raise DatasetError(
                f"{source} has observations of size {self.obs_dim} and actions of "
                f"size {self.act_dim}; the task needs {obs_dim} and {act_dim}"
            )
