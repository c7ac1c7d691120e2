"""Policies: observation in, action out, with normalization and action clipping inside.

Every policy class shares :class:`Policy`'s interface: ``act(obs)`` (numpy, single or batched,
eval mode, no grad, clipped to the action bounds), ``reset(seed=None)`` at episode start, and
``loss(obs_n, act_n) -> (loss, metrics)`` on normalized tensors for the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .base import SavableModel, register_model
from .mlp import MLP, Normalizer

__all__ = ["Policy", "MLPPolicy"]


class Policy(SavableModel):
    """Base policy over flat observations ``(obs_dim,)`` and box actions ``(act_dim,)``.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        action_low: lower action bounds, ``(act_dim,)``; ``None`` for unbounded.
        action_high: upper action bounds, ``(act_dim,)``; ``None`` for unbounded.
    """

    kind = "policy"
    action_low: torch.Tensor  # (act_dim,) buffer
    action_high: torch.Tensor  # (act_dim,) buffer

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        action_low: Sequence[float] | np.ndarray | None = None,
        action_high: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.obs_normalizer = Normalizer(self.obs_dim)
        self.act_normalizer = Normalizer(self.act_dim)
        low = (
            torch.full((act_dim,), -torch.inf)
            if action_low is None
            else torch.as_tensor(action_low, dtype=torch.float32)
        )
        high = (
            torch.full((act_dim,), torch.inf)
            if action_high is None
            else torch.as_tensor(action_high, dtype=torch.float32)
        )
        if low.shape != (act_dim,) or high.shape != (act_dim,):
            raise ValueError(
                f"action bounds must have shape ({act_dim},), got "
                f"{tuple(low.shape)} and {tuple(high.shape)}"
            )
        self.register_buffer("action_low", low, persistent=False)
        self.register_buffer("action_high", high, persistent=False)

    def get_config(self) -> dict[str, Any]:
        bounded = bool(
            torch.isfinite(self.action_low).all() and torch.isfinite(self.action_high).all()
        )
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "action_low": self.action_low.tolist() if bounded else None,
            "action_high": self.action_high.tolist() if bounded else None,
        }

    def fit_normalizers(
        self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> None:
        """Set both normalizers from training data ``(N, obs_dim)`` and ``(N, act_dim)``."""
        for norm, data in ((self.obs_normalizer, obs), (self.act_normalizer, actions)):
            fitted = Normalizer.fit(data, norm.eps)
            norm.set_stats(fitted.mean, fitted.std)

    def loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss on normalized ``(B, obs_dim)`` observations and ``(B, act_dim)`` actions.

        Returns the scalar loss and detached scalar tensors to log (no host sync here).
        """
        raise NotImplementedError

    def sample_normalized(self, obs_n: torch.Tensor) -> torch.Tensor:
        """Normalized actions ``(B, act_dim)`` for normalized observations ``(B, obs_dim)``."""
        raise NotImplementedError

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: clear per-episode state (action chunks); ``seed`` reseeds the
        policy's own sampling where it samples. Stateless and deterministic by default (the
        seed is then unused)."""

    @torch.no_grad()
    def act_tensor(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions ``(B, act_dim)`` in env units, clipped, for raw observations ``(B, obs_dim)``."""
        if self.training:  # acting is evaluation (e.g. no dropout), whatever the caller's mode
            self.eval()
            try:
                return self.act_tensor(obs)
            finally:
                self.train()
        act_n = self.sample_normalized(self.obs_normalizer.normalize(obs))
        return torch.clamp(
            self.act_normalizer.denormalize(act_n), self.action_low, self.action_high
        )

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Action(s) for ``obs`` of shape ``(obs_dim,)`` or ``(B, obs_dim)``; same leading shape
        out.

        Raises:
            ValueError: if the last dimension is not ``obs_dim`` or the input is not finite.
        """
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[-1:] != (self.obs_dim,) or obs.ndim not in (1, 2):
            raise ValueError(
                f"observation shape {obs.shape} does not fit this policy: expected "
                f"({self.obs_dim},) or (batch, {self.obs_dim})"
            )
        if not np.isfinite(obs).all():
            raise ValueError("observation contains NaN or inf")
        batch = torch.as_tensor(obs.reshape(-1, self.obs_dim), device=self.action_low.device)
        out = self.act_tensor(batch).cpu().numpy().astype(np.float64)
        return out[0] if obs.ndim == 1 else out


@register_model
class MLPPolicy(Policy):
    """Deterministic MLP policy trained by MSE (``--policy mse``); also the network of a
    seed-format saved dict (:mod:`learned_control.checkpoint`).

    Args:
        hid_size: hidden width.
        num_layers: hidden layers.
        activation: hidden activation, one of :data:`~learned_control.models.mlp.ACTIVATIONS`
            (``relu`` in a seed-format file).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hid_size: int = 64,
        num_layers: int = 2,
        activation: str = "relu",
        action_low: Sequence[float] | np.ndarray | None = None,
        action_high: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        super().__init__(obs_dim, act_dim, action_low, action_high)
        self.hid_size, self.num_layers, self.activation = hid_size, num_layers, activation
        self.net = MLP(obs_dim, act_dim, hid_size, num_layers, activation)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hid_size": self.hid_size,
            "num_layers": self.num_layers,
            "activation": self.activation,
        }

    def sample_normalized(self, obs_n: torch.Tensor) -> torch.Tensor:
        return self.net(obs_n)

    def loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = torch.nn.functional.mse_loss(self.net(obs_n), act_n)
        return loss, {"mse": loss.detach()}
