"""Cross-entropy method over action sequences; knows nothing of models or tasks.

It ranks a population ``(samples, horizon, act_dim)`` through an objective callable that
returns one score per sequence (higher is better), refits a diagonal Gaussian to the elites,
and keeps the solution to warm-start the next call shifted by one step. With a ``deadline`` it is
an anytime optimizer: it stops refitting when the next iteration would end past the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["CEMConfig", "CEMOptimizer", "Objective"]

Objective = Callable[[torch.Tensor], torch.Tensor]
"""``(samples, horizon, act_dim)`` action sequences -> ``(samples,)`` scores, higher is better."""


@dataclass
class CEMConfig:
    """CEM settings (defaults: H=10, N=1000, K=200, I=20, no smoothing, std 1.0 with a floor of
    0.5, warm start; each task's own settings are in ``config/<task>.yaml``).

    Attributes:
        horizon: planned steps ``H`` (default 10).
        samples: population ``N`` per iteration (default 1000).
        elites: ``K`` best sequences the Gaussian is refitted to (default 200).
        iterations: refits ``I`` per plan (default 20).
        alpha: smoothing, ``mean = alpha * old + (1 - alpha) * elite mean`` (same for std);
            0 = no smoothing (default 0.0).
        init_std: std of the first iteration's Gaussian, in action units (default 1.0).
        std_floor: lower bound of the std after each refit, in action units (default 0.5).
        warm_start: start from the previous solution shifted one step (the new last step
            at mean 0) instead of mean 0 (default True).
    """

    horizon: int = 10
    samples: int = 1000
    elites: int = 200
    iterations: int = 20
    alpha: float = 0.0
    init_std: float = 1.0
    std_floor: float = 0.5
    warm_start: bool = True

    def __post_init__(self) -> None:
        for name in ("horizon", "samples", "elites", "iterations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}; expected >= 1")
        if self.elites > self.samples:
            raise ConfigError(f"elites={self.elites} must be <= samples={self.samples}")
        if not 0.0 <= self.alpha < 1.0:
            raise ConfigError(f"alpha={self.alpha}; expected in [0, 1)")
        if self.init_std <= 0 or self.std_floor < 0:
            raise ConfigError(
                f"init_std={self.init_std} (> 0) and std_floor={self.std_floor} (>= 0)"
            )


class CEMOptimizer:
    """CEM over ``(horizon, act_dim)`` sequences clamped to the action bounds.

    Args:
        config: the settings.
        action_low, action_high: bounds ``(act_dim,)``; samples are clamped to them.
        device: where the population lives.
        seed: seed of the sampling generator (``reset()`` does not reseed).
    """

    def __init__(
        self,
        config: CEMConfig,
        action_low: np.ndarray,
        action_high: np.ndarray,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.low = torch.as_tensor(np.asarray(action_low), dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(
            np.asarray(action_high), dtype=torch.float32, device=self.device
        )
        if (
            self.low.ndim != 1
            or self.low.shape != self.high.shape
            or bool((self.low > self.high).any())
        ):
            raise ConfigError(
                f"action bounds low={action_low!r} high={action_high!r}: expected two "
                "(act_dim,) vectors with low <= high"
            )
        self.act_dim = self.low.shape[0]
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.best_score = float("-inf")
        self.best_sequence: torch.Tensor | None = None
        self.iterations_done = 0
        self._previous: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the previous solution (call at episode start)."""
        self._previous = None
        self.best_sequence, self.best_score = None, float("-inf")

    def initial_mean(self, shift: int = 1) -> torch.Tensor:
        """``(horizon, act_dim)``: the previous solution shifted ``shift`` steps, the new last
        steps at 0 (warm start), else zeros."""
        mean = torch.zeros(self.config.horizon, self.act_dim, device=self.device)
        if self.config.warm_start and self._previous is not None and shift < self.config.horizon:
            mean[: self.config.horizon - shift] = self._previous[shift:]
        return mean

    def optimize(
        self, objective: Objective, deadline: float | None = None, shift: int = 1
    ) -> torch.Tensor:
        """Run ``iterations`` CEM refits; returns the final mean sequence ``(horizon, act_dim)``.

        Args:
            objective: scores of a population (see :data:`Objective`).
            deadline: ``time.perf_counter()`` value (s) to finish by, or ``None``. At least one
                iteration always runs; after each, the refits stop if one more (timed like the
                last) would end past the deadline, and the mean refitted so far is returned.
                ``iterations_done`` tells how many ran.
            shift: control steps since the previous plan's observation (the warm start's shift).

        ``best_sequence``/``best_score`` hold the best single sample seen.
        """
        cfg = self.config
        mean = self.initial_mean(shift)
        std = torch.full_like(mean, cfg.init_std)
        self.best_score, self.best_sequence = float("-inf"), None
        self.iterations_done = 0
        started = time.perf_counter()  # start of the latest iteration
        for _ in range(cfg.iterations):
            if deadline is not None and self.iterations_done:
                now = time.perf_counter()
                if now + (now - started) > deadline:
                    break
            started = time.perf_counter()
            noise = torch.randn(
                (cfg.samples, *mean.shape), generator=self.generator, device=self.device
            )
            population = torch.maximum(torch.minimum(mean + std * noise, self.high), self.low)
            scores = objective(population)
            top, idx = torch.topk(scores, cfg.elites, sorted=True)
            elites = population[idx]
            if float(top[0]) > self.best_score:
                self.best_score, self.best_sequence = float(top[0]), elites[0]
            mean = cfg.alpha * mean + (1 - cfg.alpha) * elites.mean(0)
            std = (cfg.alpha * std + (1 - cfg.alpha) * elites.std(0)).clamp_min(cfg.std_floor)
            self.iterations_done += 1
        self._previous = mean
        return mean
