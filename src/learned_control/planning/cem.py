"""Sampling optimizers over action sequences (CEM, iCEM, MPPI); they know no models or tasks.

Each iteration ranks a population ``(n, horizon, act_dim)`` through an objective callable that
returns one score per sequence (higher is better) and refits a diagonal Gaussian to it:

- ``cem``: white-noise samples; the Gaussian is refitted to the ``elites`` best.
- ``icem`` (Pinneri et al. 2020, "Sample-efficient Cross-Entropy Method for Real-time
  Planning"): colored noise along the horizon (power spectral density ~ 1/f^``noise_beta``), a
  population shrinking by ``population_decay`` per iteration, the best ``keep_elites`` fraction of
  the elites carried into the next iteration and, shifted like the warm start, into the next
  plan; the last iteration also evaluates the mean. Refitted to the elites as ``cem``.
- ``mppi``: white-noise samples; the Gaussian is refitted to the whole population weighted by
  ``softmax(scores / temperature)``.

The plan is the refitted mean (for all three, as the mean averages out the noise of single samples
scored through a model); it warm-starts the next call shifted by the control steps between the two
(one by default). With a ``deadline`` the optimizer is anytime: it stops refitting when the next
iteration would end past the deadline. The iteration loop reads no tensor back to the host: the best
sample is tracked on the device, and the sampling buffers are allocated once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["CEMConfig", "CEMOptimizer", "OPTIMIZERS", "Objective", "colored_noise_scale"]

Objective = Callable[[torch.Tensor], torch.Tensor]
"""``(samples, horizon, act_dim)`` action sequences -> ``(samples,)`` scores, higher is better."""

OPTIMIZERS = ("cem", "icem", "mppi")


@dataclass
class CEMConfig:
    """Optimizer settings (defaults: CEM, H=10, N=1000, K=200, I=20, no smoothing, std 1.0 with
    a floor of 0.5, warm start; each task's own settings are in ``config/<task>.yaml``).

    Attributes:
        horizon: planned steps ``H`` (default 10).
        samples: population ``N`` per iteration (iCEM: of the first iteration) (default 1000).
        elites: ``K`` best sequences the Gaussian is refitted to; MPPI: unused (default 200).
        iterations: refits ``I`` per plan (default 20).
        alpha: smoothing, ``mean = alpha * old + (1 - alpha) * refitted mean`` (same for std);
            0 = no smoothing (default 0.0).
        init_std: std of the first iteration's Gaussian, in action units (default 1.0).
        std_floor: lower bound of the std after each refit, in action units (default 0.5).
        warm_start: start from the previous solution shifted by the steps since it (one by
            default; the new last steps at mean 0) instead of mean 0; iCEM: also carry the kept
            elites into the next plan (default True).
        optimizer: one of :data:`OPTIMIZERS` (default ``"cem"``).
        noise_beta: iCEM: exponent of the noise's power spectral density ``1/f^beta`` along the
            horizon; 0 = white, 2 = smooth (default 2.0).
        keep_elites: iCEM: fraction of the elites carried into the next iteration's population
            and the next plan's first one, in [0, 1] (default 0.3).
        population_decay: iCEM: iteration ``i`` samples
            ``max(2 * elites, round(samples * population_decay**-i))`` (at most ``samples``)
            new sequences; >= 1, 1 = no decay (default 1.25).
        temperature: MPPI: weights are ``softmax(scores / temperature)``, in score units; > 0
            (default 1.0).
    """

    horizon: int = 10
    samples: int = 1000
    elites: int = 200
    iterations: int = 20
    alpha: float = 0.0
    init_std: float = 1.0
    std_floor: float = 0.5
    warm_start: bool = True
    optimizer: Literal["cem", "icem", "mppi"] = "cem"
    noise_beta: float = 2.0
    keep_elites: float = 0.3
    population_decay: float = 1.25
    temperature: float = 1.0

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
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r}; expected one of {OPTIMIZERS}")
        if not (math.isfinite(self.noise_beta) and self.noise_beta >= 0):
            raise ConfigError(f"noise_beta={self.noise_beta}; expected a finite value >= 0")
        if not 0.0 <= self.keep_elites <= 1.0:
            raise ConfigError(f"keep_elites={self.keep_elites}; expected in [0, 1]")
        if not (math.isfinite(self.population_decay) and self.population_decay >= 1.0):
            raise ConfigError(
                f"population_decay={self.population_decay}; expected a finite value >= 1"
            )
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"temperature={self.temperature}; expected a finite value > 0")

    def samples_per_iteration(self) -> tuple[int, ...]:
        """New samples per iteration, ``(iterations,)``: ``samples`` each, iCEM decaying."""
        if self.optimizer != "icem":
            return (self.samples,) * self.iterations
        return tuple(
            min(self.samples, max(2 * self.elites, round(self.samples * self.population_decay**-i)))
            for i in range(self.iterations)
        )


def colored_noise_scale(horizon: int, beta: float) -> torch.Tensor:
    """``(horizon // 2 + 1, 2)`` scales of the real and imaginary parts of i.i.d. standard normal
    frequency components such that their ``torch.fft.irfft(n=horizon)`` is Gaussian noise with
    power spectral density ~ ``1/f^beta`` and unit variance at every step.

    The amplitude is ``f^(-beta/2)`` (the zero frequency takes that of the lowest nonzero one);
    the zero and Nyquist components are real, scaled by sqrt(2) so that ``beta = 0`` is white.
    """
    freqs = torch.fft.rfftfreq(horizon, dtype=torch.float64)
    freqs[0] = freqs[1] if horizon > 1 else 1.0
    amplitude = freqs ** (-beta / 2)
    scale = torch.stack([amplitude, amplitude], dim=-1)
    real_only = [0, horizon // 2] if horizon % 2 == 0 else [0]
    scale[real_only, 0] *= math.sqrt(2.0)
    scale[real_only, 1] = 0.0
    # irfft's step variance: each conjugate pair of nonzero frequencies counts twice, over horizon^2
    pairs = torch.full_like(amplitude, 2.0)
    pairs[real_only] = 1.0
    variance = (pairs * scale.square().sum(-1)).sum() / horizon**2
    return (scale / variance.sqrt()).float()


class CEMOptimizer:
    """CEM, iCEM or MPPI (``config.optimizer``) over ``(horizon, act_dim)`` sequences clamped
    to the action bounds.

    Args:
        config: the settings.
        action_low, action_high: bounds ``(act_dim,)``; samples are clamped to them.
        device: where the population lives.
        seed: seed of the sampling generator (``reset()`` does not reseed).

    Attributes:
        best_score: 0-d tensor, the best score of a single sample in the last ``optimize``
            (``-inf`` before any); reading it (``float``) waits for the device.
        best_sequence: ``(horizon, act_dim)`` tensor, the sample that scored it (``None`` before
            any).
        iterations_done: iterations the last ``optimize`` ran.
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
        self.best_score = torch.full((), float("-inf"), device=self.device)
        self.best_sequence: torch.Tensor | None = None
        self.iterations_done = 0
        self._previous: torch.Tensor | None = None
        self._sizes = config.samples_per_iteration()
        icem = config.optimizer == "icem"
        self._kept = round(config.keep_elites * config.elites) if icem else 0
        self._has_kept_elites = False  # the previous plan left its kept elites in _selected
        horizon, act_dim = config.horizon, self.act_dim
        # new samples, then the kept elites, then (iCEM's last iteration) the mean
        self._population = torch.empty(
            config.samples + self._kept + int(icem), horizon, act_dim, device=self.device
        )
        # the ranked elites (MPPI: the best sample), sorted best first
        self._selected = torch.empty(
            1 if config.optimizer == "mppi" else config.elites, horizon, act_dim, device=self.device
        )
        if icem:  # colored noise is generated along the horizon, the last axis
            self._noise_scale = colored_noise_scale(horizon, config.noise_beta).to(self.device)
            self._spectrum = torch.empty(
                config.samples, act_dim, horizon // 2 + 1, 2, device=self.device
            )
            self._noise = torch.empty(config.samples, act_dim, horizon, device=self.device)
        else:
            self._noise = torch.empty(config.samples, horizon, act_dim, device=self.device)

    def reset(self) -> None:
        """Forget the previous solution (call at episode start)."""
        self._previous = None
        self._has_kept_elites = False
        self.best_sequence = None
        self.best_score = torch.full((), float("-inf"), device=self.device)

    def initial_mean(self, shift: int = 1) -> torch.Tensor:
        """``(horizon, act_dim)``: the previous solution shifted ``shift`` steps, the new last
        steps at 0 (warm start), else zeros."""
        mean = torch.zeros(self.config.horizon, self.act_dim, device=self.device)
        if self.config.warm_start and self._previous is not None and shift < self.config.horizon:
            mean[: self.config.horizon - shift] = self._previous[shift:]
        return mean

    def noise(self, n: int) -> torch.Tensor:
        """``(n, horizon, act_dim)`` standard normal samples (iCEM: colored along the horizon),
        a view of a buffer the next call overwrites; ``n <= samples``."""
        if self.config.optimizer != "icem":
            return self._noise[:n].normal_(generator=self.generator)
        spectrum = self._spectrum[:n].normal_(generator=self.generator).mul_(self._noise_scale)
        noise = self._noise[:n]
        torch.fft.irfft(torch.view_as_complex(spectrum), n=self.config.horizon, out=noise)
        return noise.transpose(1, 2)

    def _evaluates_mean(self, iteration: int) -> bool:
        """Whether ``iteration``'s population ends with the mean (iCEM's last iteration)."""
        return self.config.optimizer == "icem" and iteration == self.config.iterations - 1

    def population_sizes(self) -> tuple[int, ...]:
        """The distinct sizes of the populations ``optimize`` hands the objective, ascending."""
        sizes = set()
        for iteration, n in enumerate(self._sizes):
            for kept in (self._kept,) if iteration else (0, self._kept):
                sizes.add(n + kept + int(self._evaluates_mean(iteration)))
        return tuple(sorted(sizes))

    def _sample(
        self, iteration: int, mean: torch.Tensor, std: torch.Tensor, shift: int
    ) -> torch.Tensor:
        """The population of ``iteration`` (a view of the population buffer), clamped; the
        first one carries the previous plan's kept elites shifted ``shift`` steps."""
        cfg = self.config
        n, h = self._sizes[iteration], cfg.horizon
        carried = cfg.warm_start and self._has_kept_elites and shift < h
        kept = self._kept if iteration or carried else 0
        evaluate_mean = self._evaluates_mean(iteration)
        population = self._population[: n + kept + int(evaluate_mean)]
        torch.mul(std, self.noise(n), out=population[:n]).add_(mean)
        if kept and iteration:
            population[n : n + kept] = self._selected[:kept]
        elif kept:  # the previous plan's, shifted like the warm start
            population[n : n + kept, : h - shift] = self._selected[:kept, shift:]
            population[n : n + kept, h - shift :] = mean[h - shift :]
        if evaluate_mean:
            population[-1] = mean
        return population.clamp_(self.low, self.high)

    def _refit(
        self, population: torch.Tensor, scores: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(mean, std)``; ranks the best into ``_selected`` and tracks the best."""
        cfg = self.config
        top, idx = torch.topk(scores, self._selected.shape[0], sorted=True)
        selected = torch.index_select(population, 0, idx, out=self._selected)
        better = top[0] > self.best_score
        self.best_score = torch.where(better, top[0], self.best_score)
        self.best_sequence = (
            selected[0].clone()
            if self.best_sequence is None
            else torch.where(better, selected[0], self.best_sequence)
        )
        if cfg.optimizer == "mppi":
            weights = torch.softmax(scores / cfg.temperature, 0)
            fitted_mean = torch.tensordot(weights, population, dims=1)
            # the noise buffer is free once the population is built
            deviation = torch.sub(population, fitted_mean, out=self._noise[: len(population)])
            fitted_std = torch.tensordot(weights, deviation.square_(), dims=1).sqrt_()
        else:
            fitted_mean, fitted_std = selected.mean(0), selected.std(0)
        mean = cfg.alpha * mean + (1 - cfg.alpha) * fitted_mean
        std = (cfg.alpha * std + (1 - cfg.alpha) * fitted_std).clamp_min(cfg.std_floor)
        return mean, std

    def optimize(
        self, objective: Objective, deadline: float | None = None, shift: int = 1
    ) -> torch.Tensor:
        """Run ``iterations`` refits; returns the final mean sequence ``(horizon, act_dim)``.

        Args:
            objective: scores of a population (see :data:`Objective`).
            deadline: ``time.perf_counter()`` value (s) to finish by, or ``None``. At least one
                iteration always runs; after each, the refits stop if one more (timed like the
                last) would end past the deadline, and the mean refitted so far is returned.
                ``iterations_done`` tells how many ran. On CUDA, timing an iteration waits for
                it to finish on the device (only with a deadline).
            shift: control steps since the previous plan's observation (the warm start's shift,
                and the kept elites').

        ``best_sequence``/``best_score`` hold the best single sample seen.
        """
        cfg = self.config
        mean = self.initial_mean(shift)
        std = torch.full_like(mean, cfg.init_std)
        self.best_score = torch.full((), float("-inf"), device=self.device)
        self.best_sequence = None
        self.iterations_done = 0
        started = time.perf_counter()  # start of the latest iteration
        for iteration in range(cfg.iterations):
            if deadline is not None and iteration:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                now = time.perf_counter()
                if now + (now - started) > deadline:
                    break
            started = time.perf_counter()
            population = self._sample(iteration, mean, std, shift)
            mean, std = self._refit(population, objective(population), mean, std)
            self.iterations_done += 1
        self._previous = mean
        self._has_kept_elites = self._kept > 0
        return mean
