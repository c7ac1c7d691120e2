"""CEM-MPC: a dynamics ensemble plus a reward bound into the objective of a sampling optimizer
(CEM, iCEM or MPPI, :class:`~learned_control.planning.cem.CEMOptimizer`).

:class:`MPCController` has the policies' Actor interface (``act(obs)``, ``reset()``), so
:func:`~learned_control.evaluation.evaluate` and the controller node run it unchanged. It is a plain
planner: it is given the model, the reward and termination functions, the action bounds and its
settings, and knows nothing of tasks or parameter files
(:func:`~learned_control.actors.planner_for_task` builds one for a task).

Scoring a population of ``N`` sequences with ``P`` particles each through ``E`` members is one
batched tensor program per horizon step (the only Python loops are over the horizon and the CEM
iterations):

- ``expectation``: every member propagates every particle, states ``(E, N*P, obs_dim)``; the
  score is the mean return over members and particles.
- ``ts1``: ``N*P`` particles, each step each particle is propagated by a member drawn anew
  (a random permutation grouped into ``(E, N*P/E)``).
- ``tsinf``: as ``ts1`` but every particle keeps its member for the whole horizon.

A trajectory stops accumulating reward after the task's termination fires on a predicted state
(``alive`` mask), so plans that fall are worth less than plans that stay alive. Without a torch
reward (``reward_fn``/``done_fn`` ``None``), each member's reward and termination heads score the
step its particle takes, from the same forward pass as the next state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError
from ..models.dynamics import EnsembleDynamics, FoldedEnsemble
from .cem import CEMConfig, CEMOptimizer
from .rewards import RewardFn, TerminationFn, never

__all__ = [
    "MPCConfig",
    "MPCController",
    "PROPAGATIONS",
    "PLANNER_PARAMETERS",
    "mpc_config_from_parameters",
]

PROPAGATIONS = ("expectation", "ts1", "tsinf")

PLANNER_PARAMETERS = (
    *(f.name for f in fields(CEMConfig)),
    "particles",
    "propagation",
    "sample",
    "reward",
)
"""The planner's settings as flat names: the controller node's parameters and the keys under
``controller: ros__parameters:`` in a task's parameter file."""


@dataclass
class MPCConfig:
    """Planner settings.

    Attributes:
        cem: the optimizer settings (CEM, iCEM or MPPI).
        particles: ``P`` particles per sequence (default 1).
        propagation: one of :data:`PROPAGATIONS` (default ``"expectation"``).
        sample: draw probabilistic members' deltas from their Gaussian (default False: mean).
        reward: name in :data:`~learned_control.planning.rewards.REWARDS`; ``None`` = the task's
            own (default None).
    """

    cem: CEMConfig = field(default_factory=CEMConfig)
    particles: int = 1
    propagation: Literal["expectation", "ts1", "tsinf"] = "expectation"
    sample: bool = False
    reward: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.cem, dict):
            self.cem = CEMConfig(**self.cem)
        if self.particles < 1:
            raise ConfigError(f"particles={self.particles}; expected >= 1")
        if self.propagation not in PROPAGATIONS:
            raise ConfigError(f"propagation={self.propagation!r}; expected one of {PROPAGATIONS}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mpc_config_from_parameters(params: dict[str, Any]) -> MPCConfig:
    """An :class:`MPCConfig` from flat :data:`PLANNER_PARAMETERS` (absent ones: dataclass defaults;
    ``reward`` ``""`` means the task's own)."""
    unknown = set(params) - set(PLANNER_PARAMETERS)
    if unknown:
        raise ConfigError(
            f"unknown planner settings {sorted(unknown)}; known: {PLANNER_PARAMETERS}"
        )
    cem = {k: v for k, v in params.items() if k in CEMConfig.__dataclass_fields__}
    top = {k: v for k, v in params.items() if k not in cem}
    if "reward" in top:
        top["reward"] = top["reward"] or None
    return MPCConfig(cem=CEMConfig(**cem), **top)


def _ungroup(x: torch.Tensor, total: int, perm: torch.Tensor | None) -> torch.Tensor:
    """A member-grouped ``(E, total / E, ...)`` output back in particle order ``(total, ...)``,
    undoing the permutation ``perm`` (``None``: none)."""
    out = x.transpose(0, 1).reshape(total, *x.shape[2:])
    return out if perm is None else torch.empty_like(out).index_copy_(0, perm, out)


class MPCController:
    """Replans with CEM through a learned ensemble every step; returns the first action.

    Args:
        model: the dynamics ensemble (moved to ``device``, put in eval mode).
        reward_fn: torch reward ``(state, action, next_state) -> (...,)`` of predicted steps;
            ``None``: the model's learned reward head.
        done_fn: torch termination ``next_state -> (...,)`` bool (:func:`never`: no termination);
            ``None``: the model's learned termination head (logit > 0).
        low, high: action bounds ``(act_dim,)``.
        config: planner settings (default: :class:`MPCConfig`'s defaults).
        device: torch device for planning.
        seed: seed of the CEM and particle generators.
    """

    def __init__(
        self,
        model: EnsembleDynamics,
        reward_fn: RewardFn | None,
        done_fn: TerminationFn | None,
        low: np.ndarray,
        high: np.ndarray,
        config: MPCConfig | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        self.config = config or MPCConfig()
        self.device = torch.device(device)
        if (reward_fn is None or done_fn is None) and not model.reward_heads:
            raise ConfigError(
                "the planner was asked for the model's learned reward or termination, but this "
                "dynamics model has no reward heads"
            )
        self.model = model.to(self.device).eval()
        self.reward_fn, self.done_fn = reward_fn, done_fn
        self.optimizer = CEMOptimizer(self.config.cem, low, high, self.device, seed)
        particles = self.config.particles
        uneven = [
            n * particles
            for n in self.optimizer.population_sizes()
            if n * particles % model.members
        ]
        if self.config.propagation != "expectation" and uneven:
            raise ConfigError(
                f"propagation={self.config.propagation!r} needs population (samples) x particles "
                f"({', '.join(map(str, uneven))}) divisible by the ensemble size {model.members}"
            )
        self.generator = torch.Generator(device=self.device).manual_seed(seed + 1)

    def reset(self) -> None:
        """Forget the warm start (episode start)."""
        self.optimizer.reset()

    @torch.no_grad()
    def evaluate_sequences(
        self, obs: torch.Tensor, actions: torch.Tensor, net: FoldedEnsemble | None = None
    ) -> torch.Tensor:
        """Predicted return of each action sequence from ``obs``.

        Args:
            obs: ``(obs_dim,)`` current observation.
            actions: ``(N, H, act_dim)`` sequences.
            net: the model folded for planning (:meth:`EnsembleDynamics.folded`); ``None`` folds
                it here (:meth:`plan` folds once for all its iterations).

        Returns:
            ``(N,)`` mean over members/particles of the summed reward until termination.
        """
        net = net or self.model.folded()
        n = actions.shape[0]
        members, particles, mode = (
            self.model.members,
            self.config.particles,
            self.config.propagation,
        )
        acts = actions if particles == 1 else actions.repeat_interleave(particles, dim=0)
        acts = acts.transpose(0, 1).contiguous()  # (H, N*P, A): each step's actions contiguous
        total = n * particles
        if mode == "expectation":
            state = obs.expand(members, total, -1)  # (E, N*P, obs)
        else:
            state = obs.expand(total, -1)  # (N*P, obs), particle k uses member k % E (tsinf)
        returns = torch.zeros(state.shape[:-1], device=self.device)
        alive = None if self.done_fn is never else torch.ones_like(returns, dtype=torch.bool)
        for act in acts:
            if mode == "expectation":
                nxt, reward, done = net.step(
                    state, act.expand(members, -1, -1), self.config.sample, self.generator
                )
            else:
                perm = (
                    torch.randperm(total, generator=self.generator, device=self.device)
                    if mode == "ts1"
                    else None
                )
                s_in, a_in = (state, act) if perm is None else (state[perm], act[perm])
                grouped_next, grouped_reward, grouped_done = net.step(
                    s_in.view(-1, members, s_in.shape[-1]).transpose(0, 1),
                    a_in.view(-1, members, a_in.shape[-1]).transpose(0, 1),
                    self.config.sample,
                    self.generator,
                )
                nxt = _ungroup(grouped_next, total, perm)
                reward, done = (
                    None if x is None else _ungroup(x, total, perm)
                    for x in (grouped_reward, grouped_done)
                )
            if self.reward_fn is not None:
                reward = self.reward_fn(state, act, nxt)
            assert reward is not None  # reward_fn is None only for a model with reward heads
            if alive is None:
                returns += reward
            else:
                returns += reward.where(alive, 0.0)
                if self.done_fn is not None:
                    done = self.done_fn(nxt)
                assert done is not None  # done_fn is None only for a model with reward heads
                alive &= ~done
            state = nxt
        return (
            returns.reshape(-1, n, particles).mean((0, 2))
            if mode == "expectation"
            else returns.reshape(n, particles).mean(1)
        )

    @property
    def iterations_done(self) -> int:
        """CEM iterations the last plan ran (fewer than configured when a deadline cut it)."""
        return self.optimizer.iterations_done

    @torch.no_grad()
    def plan(self, obs: np.ndarray, deadline: float | None = None, shift: int = 1) -> np.ndarray:
        """The optimized action sequence ``(horizon, act_dim)`` from observation ``(obs_dim,)``;
        ``deadline`` and ``shift``: see :meth:`CEMOptimizer.optimize`."""
        state = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=self.device)
        if state.shape != (self.model.obs_dim,):
            raise ConfigError(
                f"observation of shape {tuple(state.shape)}; the model expects "
                f"({self.model.obs_dim},)"
            )
        net = self.model.folded()
        return (
            self.optimizer.optimize(
                lambda seqs: self.evaluate_sequences(state, seqs, net), deadline, shift
            )
            .cpu()
            .numpy()
        )

    def act(self, obs: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """First action ``(act_dim,)`` of the plan from ``obs`` (``deadline``: see :meth:`plan`)."""
        return self.plan(obs, deadline)[0]
