"""Multimodal policy classes selectable by name
(``--policy mse|gaussian|mixture|cvae|discrete|diffusion``).

Every class is a :class:`~learned_control.models.policies.Policy`: it trains with the shared
behavior-cloning trainer through ``loss(obs_n, act_n)``, saves and loads with the one checkpoint
format (its constructor arguments are its JSON config), and acts through ``act(obs)`` with the
normalization and clipping of the base class.

Shared options (:class:`GenerativePolicy`):

- **Action chunks.** ``chunk_size`` H > 1 makes the network predict H actions at once; ``act``
  executes the first ``execute_steps`` k of each chunk before predicting again (as Diffusion
  Policy and ACT do). ``loss`` then takes targets ``(B, H, act_dim)``; ``(B, act_dim)`` targets
  are accepted for H = 1.
- **Goals.** A goal-conditioned policy takes the goal as part of its flat input: ``obs_dim``
  counts it, and ``goal_dim`` records its size (FetchReach's registry task puts
  ``desired_goal`` first; the task's labels name every entry).
- **Seeded sampling.** Each policy owns a ``torch.Generator`` seeded by ``seed``; ``reset(seed)``
  reseeds it, ``reset()`` only clears the chunk queue, so successive episodes differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import distributions, nn

from ..errors import ConfigError
from .base import register_model
from .mlp import MLP
from .policies import MLPPolicy, Policy

__all__ = [
    "GenerativePolicy",
    "GaussianPolicy",
    "MixturePolicy",
    "CVAEPolicy",
    "DiscretePolicy",
    "DiffusionPolicy",
    "POLICY_CLASSES",
    "make_policy",
    "Preset",
    "PRESETS",
]


def _check(cls_name: str, name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{cls_name}.{name}={value!r}; expected {expected}")


class GenerativePolicy(Policy):
    """Base of the multimodal classes: network sizes, action chunks, goal size, own generator.

    Subclasses implement :meth:`chunk_loss` on flattened chunks ``(B, H * act_dim)`` and
    :meth:`sample_chunk` returning ``(B, H * act_dim)``, both in normalized units.

    Args:
        obs_dim: flat input size (observation plus goal for goal-conditioned policies).
        act_dim: action size of one step.
        hid_size: hidden width of the networks (default 256).
        num_layers: hidden layers of the networks (default 3).
        activation: hidden activation (default ``relu``).
        chunk_size: actions predicted per call, H >= 1 (default 1).
        execute_steps: actions of a chunk executed before predicting again, 1 <= k <= H
            (default 1).
        goal_dim: entries of the input that are the goal, 0 <= goal_dim < obs_dim
            (default 0: not goal-conditioned).
        seed: seed of the policy's sampling generator (default 0).
        action_low, action_high: action bounds ``(act_dim,)`` or ``None``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hid_size: int = 256,
        num_layers: int = 3,
        activation: str = "relu",
        chunk_size: int = 1,
        execute_steps: int = 1,
        goal_dim: int = 0,
        seed: int = 0,
        action_low: Sequence[float] | np.ndarray | None = None,
        action_high: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        super().__init__(obs_dim, act_dim, action_low, action_high)
        name = type(self).__name__
        _check(name, "hid_size", hid_size, hid_size >= 1, "an integer >= 1")
        _check(name, "num_layers", num_layers, num_layers >= 0, "an integer >= 0")
        _check(name, "chunk_size", chunk_size, chunk_size >= 1, "an integer >= 1")
        _check(
            name,
            "execute_steps",
            execute_steps,
            1 <= execute_steps <= chunk_size,
            f"an integer in [1, chunk_size={chunk_size}]",
        )
        _check(
            name,
            "goal_dim",
            goal_dim,
            0 <= goal_dim < obs_dim,
            f"an integer in [0, obs_dim={obs_dim})",
        )
        self.hid_size, self.num_layers, self.activation = hid_size, num_layers, activation
        self.chunk_size, self.execute_steps, self.goal_dim = chunk_size, execute_steps, goal_dim
        self.seed = int(seed)
        self.out_dim = chunk_size * act_dim
        self._generator: torch.Generator | None = None
        self._queue: torch.Tensor | None = None  # (B, k - 1, act_dim) actions left to execute

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "hid_size": self.hid_size,
            "num_layers": self.num_layers,
            "activation": self.activation,
            "chunk_size": self.chunk_size,
            "execute_steps": self.execute_steps,
            "goal_dim": self.goal_dim,
            "seed": self.seed,
        }

    def mlp(self, input_dim: int, output_dim: int) -> MLP:
        """An :class:`MLP` with this policy's hidden sizes."""
        return MLP(input_dim, output_dim, self.hid_size, self.num_layers, self.activation)

    def generator(self, device: torch.device) -> torch.Generator:
        """The policy's sampling generator on ``device`` (seeded with ``seed`` when created)."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def randn(self, *shape: int, device: torch.device) -> torch.Tensor:
        """Standard normal noise of ``shape`` from the policy's generator."""
        return torch.randn(*shape, device=device, generator=self.generator(device))

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: drop queued chunk actions; reseed the sampler when ``seed`` is
        given."""
        self._queue = None
        if seed is not None:
            self.seed = int(seed)
            self._generator = None

    def loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss on normalized ``(B, obs_dim)`` inputs and ``(B, act_dim)`` or ``(B, H, act_dim)``
        targets."""
        if act_n.ndim == 2 and self.chunk_size == 1:
            flat = act_n
        elif act_n.shape[1:] == (self.chunk_size, self.act_dim):
            flat = act_n.reshape(len(act_n), self.out_dim)
        else:
            raise ValueError(
                f"targets of shape {tuple(act_n.shape)} do not fit chunks of "
                f"({self.chunk_size}, {self.act_dim})"
            )
        return self.chunk_loss(obs_n, flat)

    def sample_normalized(self, obs_n: torch.Tensor) -> torch.Tensor:
        """Next normalized actions ``(B, act_dim)``, from the queued chunk or a fresh one."""
        if self._queue is not None and self._queue.shape[1] > 0 and len(self._queue) == len(obs_n):
            act, self._queue = self._queue[:, 0], self._queue[:, 1:]
            return act
        chunk = self.sample_chunk(obs_n).reshape(len(obs_n), self.chunk_size, self.act_dim)
        self._queue = chunk[:, 1 : self.execute_steps] if self.execute_steps > 1 else None
        return chunk[:, 0]

    def chunk_loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss for normalized inputs ``(B, obs_dim)`` and flattened chunks ``(B, H * act_dim)``."""
        raise NotImplementedError

    def sample_chunk(self, obs_n: torch.Tensor) -> torch.Tensor:
        """Normalized flattened chunks ``(B, H * act_dim)`` for inputs ``(B, obs_dim)``."""
        raise NotImplementedError


@register_model
class GaussianPolicy(GenerativePolicy):
    """``Normal(mean(s), std)`` trained by negative log-likelihood (``--policy gaussian``).

    Args:
        state_dependent_std: the network also outputs the std (default ``False``: one learned
            log-std per action dimension).
        min_std: floor on the std in normalized units (default 1e-3, > 0).
        deterministic: act with the mean (default ``True``) or a sample.
        **kwargs: :class:`GenerativePolicy` arguments.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        state_dependent_std: bool = False,
        min_std: float = 1e-3,
        deterministic: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(obs_dim, act_dim, **kwargs)
        _check("GaussianPolicy", "min_std", min_std, min_std > 0, "a std floor > 0")
        self.state_dependent_std, self.min_std = state_dependent_std, min_std
        self.deterministic = deterministic
        self.net = self.mlp(obs_dim, self.out_dim * (2 if state_dependent_std else 1))
        self.log_std = nn.Parameter(torch.zeros(self.out_dim)) if not state_dependent_std else None

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "state_dependent_std": self.state_dependent_std,
            "min_std": self.min_std,
            "deterministic": self.deterministic,
        }

    def distribution(self, obs_n: torch.Tensor) -> distributions.Independent:
        """Distribution over flattened normalized chunks: batch ``(B,)``, event
        ``(H * act_dim,)``."""
        out = self.net(obs_n)
        if self.state_dependent_std:
            mean, raw = out.chunk(2, dim=-1)
        else:
            assert self.log_std is not None  # set exactly when not state_dependent_std
            mean, raw = out, self.log_std.expand_as(out)
        std = self.min_std + nn.functional.softplus(
            raw + math.log(math.e - 1)
        )  # softplus(x+c)=1 at x=0
        return distributions.Independent(distributions.Normal(mean, std), 1)

    def chunk_loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        dist = self.distribution(obs_n)
        nll = -dist.log_prob(act_n).mean()
        return nll, {"nll": nll.detach(), "std": dist.base_dist.stddev.mean().detach()}

    def sample_chunk(self, obs_n: torch.Tensor) -> torch.Tensor:
        dist = self.distribution(obs_n)
        if self.deterministic:
            return dist.mean
        return dist.mean + dist.stddev * self.randn(*dist.mean.shape, device=obs_n.device)


@register_model
class MixturePolicy(GenerativePolicy):
    """Mixture density network: ``MixtureSameFamily`` of K diagonal Gaussians
    (``--policy mixture``).

    Args:
        num_components: K >= 1 (default 5).
        min_std: floor on each component's std in normalized units (default 1e-3, > 0).
        mode: ``"sample"`` (default) draws from the mixture at act time; ``"mode"`` takes the
            mean of the most likely component (deterministic, one route only at a tie).
        **kwargs: :class:`GenerativePolicy` arguments.
    """

    MODES = ("sample", "mode")

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        num_components: int = 5,
        min_std: float = 1e-3,
        mode: str = "sample",
        **kwargs: Any,
    ) -> None:
        super().__init__(obs_dim, act_dim, **kwargs)
        _check(
            "MixturePolicy",
            "num_components",
            num_components,
            num_components >= 1,
            "an integer >= 1",
        )
        _check("MixturePolicy", "min_std", min_std, min_std > 0, "a std floor > 0")
        _check("MixturePolicy", "mode", mode, mode in self.MODES, f"one of {self.MODES}")
        self.num_components, self.min_std, self.mode = num_components, min_std, mode
        self.net = self.mlp(obs_dim, num_components * (1 + 2 * self.out_dim))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_components": self.num_components,
            "min_std": self.min_std,
            "mode": self.mode,
        }

    def distribution(self, obs_n: torch.Tensor) -> distributions.MixtureSameFamily:
        """Mixture over flattened normalized chunks: batch ``(B,)``, event ``(H * act_dim,)``."""
        k, n = self.num_components, self.out_dim
        out = self.net(obs_n)
        logits = out[..., :k]
        mean, raw = out[..., k:].reshape(*out.shape[:-1], k, 2 * n).chunk(2, dim=-1)
        std = self.min_std + nn.functional.softplus(raw)
        return distributions.MixtureSameFamily(
            distributions.Categorical(logits=logits),
            distributions.Independent(distributions.Normal(mean, std), 1),
        )

    def chunk_loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        nll = -self.distribution(obs_n).log_prob(act_n).mean()
        return nll, {"nll": nll.detach()}

    def sample_chunk(self, obs_n: torch.Tensor) -> torch.Tensor:
        dist = self.distribution(obs_n)
        probs = dist.mixture_distribution.probs  # (B, K)
        if self.mode == "mode":
            idx = probs.argmax(-1)
        else:
            idx = torch.multinomial(probs, 1, generator=self.generator(obs_n.device)).squeeze(-1)
        components = cast(  # as built by distribution()
            distributions.Independent[distributions.Normal], dist.component_distribution
        )
        comp = components.base_dist
        rows = torch.arange(len(obs_n), device=obs_n.device)
        mean, std = comp.loc[rows, idx], comp.scale[rows, idx]  # (B, H * act_dim)
        if self.mode == "mode":
            return mean
        return mean + std * self.randn(*mean.shape, device=obs_n.device)


@register_model
class CVAEPolicy(GenerativePolicy):
    """Conditional VAE: encoder q(z|s,a), decoder p(a|s,z), z ~ N(0, I) at act time
    (``--policy cvae``).

    The decoder is a unit-variance Gaussian (squared-error reconstruction); the loss is
    ``recon + kl_weight * KL(q(z|s,a) || N(0, I))`` per sample.

    Args:
        latent_dim: size of z (default 4, >= 1).
        kl_weight: weight of the KL term (default 0.05, >= 0).
        **kwargs: :class:`GenerativePolicy` arguments.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        latent_dim: int = 4,
        kl_weight: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(obs_dim, act_dim, **kwargs)
        _check("CVAEPolicy", "latent_dim", latent_dim, latent_dim >= 1, "an integer >= 1")
        _check("CVAEPolicy", "kl_weight", kl_weight, kl_weight >= 0, "a weight >= 0")
        self.latent_dim, self.kl_weight = latent_dim, kl_weight
        self.encoder = self.mlp(obs_dim + self.out_dim, 2 * latent_dim)
        self.decoder = self.mlp(obs_dim + latent_dim, self.out_dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_dim": self.latent_dim, "kl_weight": self.kl_weight}

    def posterior(self, obs_n: torch.Tensor, act_n: torch.Tensor) -> distributions.Independent:
        """q(z|s,a): batch ``(B,)``, event ``(latent_dim,)``."""
        mean, log_std = self.encoder(torch.cat([obs_n, act_n], -1)).chunk(2, dim=-1)
        return distributions.Independent(
            distributions.Normal(mean, log_std.clamp(-8.0, 4.0).exp()), 1
        )

    def prior(self, obs_n: torch.Tensor) -> distributions.Independent:
        """p(z) = N(0, I): batch ``(B,)``, event ``(latent_dim,)``."""
        zeros = obs_n.new_zeros(len(obs_n), self.latent_dim)
        return distributions.Independent(distributions.Normal(zeros, torch.ones_like(zeros)), 1)

    def chunk_loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        q = self.posterior(obs_n, act_n)
        recon = (self.decoder(torch.cat([obs_n, q.rsample()], -1)) - act_n).pow(2).sum(-1).mean()
        kl = distributions.kl_divergence(q, self.prior(obs_n)).mean()
        return recon + self.kl_weight * kl, {"recon": recon.detach(), "kl": kl.detach()}

    def sample_chunk(self, obs_n: torch.Tensor) -> torch.Tensor:
        z = self.randn(len(obs_n), self.latent_dim, device=obs_n.device)
        return self.decoder(torch.cat([obs_n, z], -1))


@register_model
class DiscretePolicy(GenerativePolicy):
    """Autoregressive discretization: one action dimension after another (``--policy discrete``).

    Dimension i of the flattened chunk gets a categorical over ``num_bins`` bins, conditioned on
    the input and on dimensions ``< i`` (teacher-forced in training, sampled at act time). Bins
    are uniform over the normalized action range: the normalized action bounds when both are
    finite, else ``[-bin_range, bin_range]``; an action is the centre of its bin.

    Args:
        num_bins: bins per dimension (default 64, >= 51).
        bin_range: half-width of the bin range in normalized units for unbounded actions
            (default 3.0, > 0).
        **kwargs: :class:`GenerativePolicy` arguments.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, num_bins: int = 64, bin_range: float = 3.0, **kwargs: Any
    ) -> None:
        super().__init__(obs_dim, act_dim, **kwargs)
        _check("DiscretePolicy", "num_bins", num_bins, num_bins >= 51, "an integer >= 51")
        _check("DiscretePolicy", "bin_range", bin_range, bin_range > 0, "a range > 0")
        self.num_bins, self.bin_range = num_bins, bin_range
        # input: obs, previous dims (zero where not yet known), one-hot of the current dim
        self.net = self.mlp(obs_dim + 2 * self.out_dim, num_bins)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_bins": self.num_bins, "bin_range": self.bin_range}

    def bin_edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized lower and upper ends of the bin range, each ``(H * act_dim,)``."""
        low = self.act_normalizer.normalize(self.action_low)
        high = self.act_normalizer.normalize(self.action_high)
        bounded = torch.isfinite(low) & torch.isfinite(high)
        low = torch.where(bounded, low, torch.full_like(low, -self.bin_range))
        high = torch.where(bounded, high, torch.full_like(high, self.bin_range))
        return low.repeat(self.chunk_size), high.repeat(self.chunk_size)

    def logits(self, obs_n: torch.Tensor, prev: torch.Tensor, dim: torch.Tensor) -> torch.Tensor:
        """Bin logits ``(..., num_bins)`` for inputs ``(..., obs_dim)``, masked previous dims
        ``(..., H * act_dim)`` and current dimension indices ``(...)``."""
        onehot = nn.functional.one_hot(dim, self.out_dim).to(obs_n.dtype)
        return self.net(torch.cat([obs_n, prev, onehot], -1))

    def chunk_loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n, b = self.out_dim, len(obs_n)
        low, high = self.bin_edges()
        target = ((act_n - low) / (high - low) * self.num_bins).long().clamp(0, self.num_bins - 1)
        dims = torch.arange(n, device=obs_n.device)
        mask = (dims[None, :] < dims[:, None]).to(act_n.dtype)  # (n, n): row i keeps dims < i
        prev = act_n[:, None, :] * mask  # (B, n, n)
        logits = self.logits(obs_n[:, None].expand(b, n, -1), prev, dims.expand(b, n))
        nll = -distributions.Categorical(logits=logits).log_prob(target).sum(-1).mean()
        return nll, {"nll": nll.detach()}

    def sample_chunk(self, obs_n: torch.Tensor) -> torch.Tensor:
        low, high = self.bin_edges()
        width = (high - low) / self.num_bins
        gen = self.generator(obs_n.device)
        out = obs_n.new_zeros(len(obs_n), self.out_dim)
        for i in range(self.out_dim):  # autoregressive over dimensions
            dim = torch.full((len(obs_n),), i, device=obs_n.device, dtype=torch.long)
            probs = torch.softmax(self.logits(obs_n, out, dim), -1)
            idx = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
            out = out.clone()
            out[:, i] = low[i] + (idx.to(out.dtype) + 0.5) * width[i]
        return out


@register_model
class DiffusionPolicy(GenerativePolicy):
    """Denoising diffusion over action chunks conditioned on the input (``--policy diffusion``).

    Trained with the DDPM noise-prediction objective on diffusers' ``DDPMScheduler`` schedule;
    acts with ``inference_steps`` deterministic DDIM steps (eta = 0) from Gaussian noise drawn
    with the policy's generator. The DDIM update ``x <- c_x[i] x + c_eps[i] eps`` is inlined with
    coefficients from diffusers' ``DDIMScheduler`` (its ``step()`` costs more than the network
    here); the tests check it against ``DDIMScheduler.step``.

    Args:
        train_timesteps: diffusion steps of the training schedule (default 100, >= 2).
        inference_steps: DDIM steps at act time (default 10, in [1, train_timesteps]).
        beta_schedule: diffusers beta schedule (default ``squaredcos_cap_v2``).
        time_features: sinusoidal features of the timestep (default 32, even, >= 2).
        **kwargs: :class:`GenerativePolicy` arguments.
    """

    alphas_cumprod: torch.Tensor  # (train_timesteps,) buffer
    frequencies: torch.Tensor  # (time_features // 2,) buffer
    ddim_timesteps: torch.Tensor  # (inference_steps,) buffer, long
    ddim_cx: torch.Tensor  # (inference_steps,) buffer
    ddim_ceps: torch.Tensor  # (inference_steps,) buffer

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        train_timesteps: int = 100,
        inference_steps: int = 10,
        beta_schedule: str = "squaredcos_cap_v2",
        time_features: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(obs_dim, act_dim, **kwargs)
        # slow imports: only when used; from the defining modules, whose classes type-check
        from diffusers.schedulers.scheduling_ddim import DDIMScheduler
        from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

        _check(
            "DiffusionPolicy",
            "train_timesteps",
            train_timesteps,
            train_timesteps >= 2,
            "an integer >= 2",
        )
        _check(
            "DiffusionPolicy",
            "inference_steps",
            inference_steps,
            1 <= inference_steps <= train_timesteps,
            f"an integer in [1, train_timesteps={train_timesteps}]",
        )
        _check(
            "DiffusionPolicy",
            "time_features",
            time_features,
            time_features >= 2 and time_features % 2 == 0,
            "an even integer >= 2",
        )
        self.train_timesteps, self.inference_steps = train_timesteps, inference_steps
        self.beta_schedule, self.time_features = beta_schedule, time_features
        common = {
            "num_train_timesteps": train_timesteps,
            "beta_schedule": beta_schedule,
            "clip_sample": False,
            "prediction_type": "epsilon",
        }
        self.sampler = DDIMScheduler(**common)
        self.sampler.set_timesteps(inference_steps)
        self.register_buffer(
            "alphas_cumprod", DDPMScheduler(**common).alphas_cumprod.float(), persistent=False
        )
        self.register_buffer(
            "frequencies",
            torch.exp(-math.log(1000.0) * torch.arange(time_features // 2) / (time_features // 2)),
            persistent=False,
        )
        # DDIM (eta = 0) per inference step i: x_prev = c_x[i] * x + c_eps[i] * eps
        steps = self.sampler.timesteps.long()
        abar = self.sampler.alphas_cumprod.double()
        prev = steps - train_timesteps // inference_steps
        abar_t = abar[steps]
        abar_prev = torch.where(
            prev >= 0,
            abar[prev.clamp(min=0)],
            torch.as_tensor(self.sampler.final_alpha_cumprod).double(),
        )
        self.register_buffer("ddim_timesteps", steps, persistent=False)
        self.register_buffer("ddim_cx", (abar_prev / abar_t).sqrt().float(), persistent=False)
        self.register_buffer(
            "ddim_ceps",
            ((1 - abar_prev).sqrt() - (abar_prev * (1 - abar_t) / abar_t).sqrt()).float(),
            persistent=False,
        )
        self.net = self.mlp(obs_dim + self.out_dim + time_features, self.out_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "train_timesteps": self.train_timesteps,
            "inference_steps": self.inference_steps,
            "beta_schedule": self.beta_schedule,
            "time_features": self.time_features,
        }

    def predict_noise(
        self, obs_n: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Predicted noise ``(B, H * act_dim)`` for noisy chunks at integer timesteps ``t``
        ``(B,)``."""
        angles = t.to(obs_n.dtype)[:, None] * self.frequencies
        return self.net(torch.cat([obs_n, noisy, angles.sin(), angles.cos()], -1))

    def chunk_loss(
        self, obs_n: torch.Tensor, act_n: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t = torch.randint(0, self.train_timesteps, (len(act_n),), device=act_n.device)
        noise = torch.randn_like(act_n)
        abar = self.alphas_cumprod[t][:, None]
        noisy = abar.sqrt() * act_n + (1 - abar).sqrt() * noise  # DDPMScheduler.add_noise
        loss = nn.functional.mse_loss(self.predict_noise(obs_n, noisy, t), noise)
        return loss, {"noise_mse": loss.detach()}

    def ddim_step(self, i: int, eps: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """Inference step ``i`` of DDIM (eta = 0): the less noisy sample, shape of ``sample``."""
        return self.ddim_cx[i] * sample + self.ddim_ceps[i] * eps

    def sample_chunk(self, obs_n: torch.Tensor) -> torch.Tensor:
        sample = self.randn(len(obs_n), self.out_dim, device=obs_n.device)
        for i, t in enumerate(self.ddim_timesteps):
            eps = self.predict_noise(obs_n, sample, t.expand(len(obs_n)))
            sample = self.ddim_step(i, eps, sample)
        return sample


POLICY_CLASSES: dict[str, type[Policy]] = {
    "mse": MLPPolicy,
    "gaussian": GaussianPolicy,
    "mixture": MixturePolicy,
    "cvae": CVAEPolicy,
    "discrete": DiscretePolicy,
    "diffusion": DiffusionPolicy,
}
"""``--policy`` name -> class."""


def make_policy(
    name: str,
    obs_dim: int,
    act_dim: int,
    action_low: Sequence[float] | np.ndarray | None = None,
    action_high: Sequence[float] | np.ndarray | None = None,
    **kwargs: Any,
) -> Policy:
    """Build the policy class ``name`` (a key of :data:`POLICY_CLASSES`) with ``kwargs``.

    Raises:
        ConfigError: unknown name, or arguments the class does not take.
    """
    if name not in POLICY_CLASSES:
        raise ConfigError(f"policy={name!r}; expected one of {sorted(POLICY_CLASSES)}")
    try:
        return POLICY_CLASSES[name](
            obs_dim, act_dim, action_low=action_low, action_high=action_high, **kwargs
        )
    except TypeError as err:
        raise ConfigError(
            f"policy {name!r} does not take these arguments {sorted(kwargs)}: {err}"
        ) from err


@dataclass(frozen=True)
class Preset:
    """Network and training settings of one policy class (``learned-control train-bc
    --preset``).

    Attributes:
        hid_size: hidden width.
        num_layers: hidden layers.
        chunk_size: actions predicted per call, H.
        execute_steps: actions of a chunk executed before predicting again, k.
        epochs: behavior-cloning epochs.
        batch_size: samples per gradient step.
        lr: Adam learning rate.
        options: further constructor arguments of the class (e.g. ``num_bins``).
    """

    hid_size: int
    num_layers: int
    chunk_size: int
    execute_steps: int
    epochs: int
    batch_size: int = 256
    lr: float = 1e-3
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: ``256x3, chunk 4/4, 60 epochs, batch 256, lr 0.001`` (and the options)."""
        extra = "".join(f", {k} {v}" for k, v in self.options.items())
        return (
            f"{self.hid_size}x{self.num_layers}, chunk {self.chunk_size}/{self.execute_steps}, "
            f"{self.epochs} epochs, batch {self.batch_size}, lr {self.lr:g}{extra}"
        )


def _multimodal(epochs: int, chunk: int = 4, **options: Any) -> Preset:
    return Preset(256, 3, chunk, chunk, epochs, options=options)


PRESETS: dict[str, dict[str, Preset]] = {
    "multimodal": {
        "mse": _multimodal(60, chunk=1),
        "gaussian": _multimodal(60),
        "mixture": _multimodal(60),
        "cvae": _multimodal(60),
        "discrete": _multimodal(20),
        "diffusion": _multimodal(200),
    },
}
"""Preset name -> policy class name -> :class:`Preset`. ``multimodal``: the settings of the
multimodal benchmark (``bench/multimodal.py``) per class."""
