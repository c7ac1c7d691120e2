"""Learned dynamics: ``s' = s + f(s, a)`` as one batched ensemble (deterministic or Gaussian),
optionally with reward and termination heads.

All ``E`` members run in ONE forward pass: every layer holds parameters of shape
``(E, in, out)`` and applies them with :func:`torch.baddbmm`. A single model is ``E = 1``.
Inputs ``[s, a]`` and delta targets ``s' - s`` are standardized with training statistics by two
:class:`~learned_control.models.mlp.Normalizer` s that the model owns (saved in its state dict).
For planning, :meth:`EnsembleDynamics.folded` gives a :class:`FoldedEnsemble`: the same function
with the normalizers folded into the first and last layers, in fewer tensor operations per step.
With ``reward_heads`` every member also predicts the step's reward (standardized target, MSE) and
a termination logit (BCE, positives weighted by the negatives-to-positives ratio of the training
data) from the same features: two more columns of the output layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .base import SavableModel, register_model
from .mlp import ACTIVATIONS, Normalizer

__all__ = ["EnsembleLinear", "EnsembleDynamics", "FoldedEnsemble"]


def _soft_bounded(logstd: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``logstd`` pulled smoothly into ``(low, high)`` (the PETS soft bounds, learned ``low`` and
    ``high`` of shape ``(obs_dim,)``); same shape as ``logstd``."""
    logstd = high - nn.functional.softplus(high - logstd)
    return low + nn.functional.softplus(logstd - low)


def _gaussian_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise of ``like``'s shape, device and dtype, drawn from ``generator``."""
    return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


class EnsembleLinear(nn.Module):
    """``E`` independent linear maps applied in one batched matmul.

    Args:
        members: ensemble size ``E``.
        in_dim, out_dim: sizes of the last input and output dimension.

    Input ``(E, B, in_dim)`` -> output ``(E, B, out_dim)``.
    """

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # nn.Linear's default init, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


@register_model
class EnsembleDynamics(SavableModel):
    """An ensemble of ``E`` MLP dynamics models predicting the state change.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        members: ensemble size ``E`` (1 = a single model).
        hid_size: width of each hidden layer.
        num_layers: number of hidden layers.
        hidden_sizes: widths of the hidden layers in order, instead of ``hid_size x num_layers``
            (the small 32-64 MLP world model of FetchReach: ``(32, 64)``).
        activation: one of :data:`~learned_control.models.mlp.ACTIVATIONS`.
        probabilistic: predict mean and log-std of the delta (Gaussian NLL) instead of the
            delta alone (MSE).
        init_max_logstd, init_min_logstd: initial PETS soft bounds of the (normalized) log-std;
            both are learned.
        reward_heads: also predict the reward of ``(s, a)`` and whether the step terminates
            (what the planner uses for a task without a torch reward).
    """

    kind = "dynamics"
    termination_pos_weight: torch.Tensor  # () buffer, with reward heads only

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        members: int = 5,
        hid_size: int = 200,
        num_layers: int = 3,
        activation: str = "silu",
        probabilistic: bool = False,
        init_max_logstd: float = 0.5,
        init_min_logstd: float = -10.0,
        hidden_sizes: Sequence[int] | None = None,
        reward_heads: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("obs_dim", obs_dim),
            ("act_dim", act_dim),
            ("members", members),
            ("hid_size", hid_size),
        ):
            if value < 1:
                raise ConfigError(f"EnsembleDynamics {name}={value}; expected >= 1")
        if num_layers < 0:
            raise ConfigError(f"EnsembleDynamics num_layers={num_layers}; expected >= 0")
        if hidden_sizes is not None:
            hidden_sizes = [int(w) for w in hidden_sizes]
            if not all(w >= 1 for w in hidden_sizes):
                raise ConfigError(
                    f"EnsembleDynamics hidden_sizes={hidden_sizes}; expected widths >= 1"
                )
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"EnsembleDynamics activation={activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        if not init_min_logstd < init_max_logstd:
            raise ConfigError(
                f"EnsembleDynamics init_min_logstd={init_min_logstd} must be < "
                f"init_max_logstd={init_max_logstd}"
            )
        self._config = dict(
            obs_dim=obs_dim,
            act_dim=act_dim,
            members=members,
            hid_size=hid_size,
            num_layers=num_layers,
            activation=activation,
            probabilistic=probabilistic,
            init_max_logstd=init_max_logstd,
            init_min_logstd=init_min_logstd,
            hidden_sizes=hidden_sizes,
            reward_heads=reward_heads,
        )
        self.obs_dim, self.act_dim, self.members = obs_dim, act_dim, members
        self.probabilistic, self.reward_heads = probabilistic, reward_heads
        widths = [hid_size] * num_layers if hidden_sizes is None else hidden_sizes
        sizes = [obs_dim + act_dim, *widths]
        self.layers = nn.ModuleList(
            EnsembleLinear(members, i, o) for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        )
        # output columns: delta mean, [delta log-std], [reward, termination logit]
        outputs = obs_dim * (2 if probabilistic else 1) + (2 if reward_heads else 0)
        self.head = EnsembleLinear(members, sizes[-1], outputs)
        self.act_fn = ACTIVATIONS[activation]()
        self.input_normalizer = Normalizer(obs_dim + act_dim)
        self.delta_normalizer = Normalizer(obs_dim)
        if reward_heads:
            self.reward_normalizer = Normalizer(1)
            # BCE weight of terminated steps, set from the training data by set_stats
            self.register_buffer("termination_pos_weight", torch.ones(()))
        if probabilistic:
            self.max_logstd = nn.Parameter(torch.full((obs_dim,), float(init_max_logstd)))
            self.min_logstd = nn.Parameter(torch.full((obs_dim,), float(init_min_logstd)))

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)

    def set_stats(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        next_obs: torch.Tensor,
        reward: torch.Tensor | None = None,
        terminated: torch.Tensor | None = None,
    ) -> None:
        """Fit the normalizers to training data ``(N, obs_dim)``, ``(N, act_dim)``,
        ``(N, obs_dim)``; with reward heads also to ``reward (N,)`` and the termination weight to
        ``terminated (N,)`` (negatives / positives, 1 without positives)."""
        fits = [
            (self.input_normalizer, torch.cat([obs, act], -1)),
            (self.delta_normalizer, next_obs - obs),
        ]
        if self.reward_heads:
            if reward is None or terminated is None:
                raise ConfigError("a model with reward heads needs rewards and terminations")
            fits.append((self.reward_normalizer, reward.reshape(-1, 1)))
            positives = float(terminated.sum())
            self.termination_pos_weight.fill_(
                (len(terminated) - positives) / positives if positives else 1.0
            )
        for norm, data in fits:
            fitted = Normalizer.fit(data.detach().cpu(), norm.eps)
            norm.set_stats(fitted.mean, fitted.std)

    def forward(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalized delta prediction of every member.

        Args:
            obs: ``(E, B, obs_dim)`` observations (raw units).
            act: ``(E, B, act_dim)`` actions (raw units).

        Returns:
            ``(mean, logstd)``, each ``(E, B, obs_dim)`` in normalized delta units; ``logstd``
            is ``None`` for deterministic models.
        """
        return self._outputs(obs, act)[:2]

    def _outputs(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(mean, logstd, heads)``: :meth:`forward`'s pair, then ``(E, B, 2)`` normalized
        reward and termination logit (``None`` without reward heads)."""
        h = self.input_normalizer.normalize(torch.cat([obs, act], -1))
        for layer in self.layers:
            h = self.act_fn(layer(h))
        out = self.head(h)
        heads = None
        if self.reward_heads:
            out, heads = out[..., :-2], out[..., -2:]
        if not self.probabilistic:
            return out, None, heads
        mean, logstd = out.chunk(2, dim=-1)
        return mean, _soft_bounded(logstd, self.min_logstd, self.max_logstd), heads

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, d)`` -> ``(E, B, d)`` (shared by all members); ``(E, B, d)`` passes through."""
        if x.ndim == 2:
            return x.unsqueeze(0).expand(self.members, -1, -1)
        if x.ndim != 3 or x.shape[0] != self.members:
            raise ConfigError(
                f"EnsembleDynamics expects (B, d) or ({self.members}, B, d) inputs, "
                f"got {tuple(x.shape)}"
            )
        return x

    def predict(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Next observation of every member, ``(E, B, obs_dim)``.

        Args:
            obs: ``(B, obs_dim)`` (same for all members) or ``(E, B, obs_dim)``.
            act: ``(B, act_dim)`` or ``(E, B, act_dim)``.
            sample: for probabilistic models, draw the delta from the predicted Gaussian
                instead of returning its mean.
            generator: random generator for ``sample``.
        """
        obs, act = self._expand(obs), self._expand(act)
        mean, logstd = self(obs, act)
        if sample and logstd is not None:
            mean = mean + _gaussian_noise(mean, generator) * logstd.exp()
        return obs + self.delta_normalizer.denormalize(mean)

    def predict_heads(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's reward (raw units) and termination probability of ``(s, a)``, each
        ``(E, B)``; inputs as for :meth:`predict`. ConfigError without reward heads."""
        if not self.reward_heads:
            raise ConfigError("this dynamics model has no reward heads (reward_heads=False)")
        heads = self._outputs(self._expand(obs), self._expand(act))[2]
        assert heads is not None  # reward_heads
        reward = self.reward_normalizer.denormalize(heads[..., :1])[..., 0]
        return reward, torch.sigmoid(heads[..., 1])

    @torch.no_grad()
    def folded(self) -> FoldedEnsemble:
        """A :class:`FoldedEnsemble` of the current weights (a snapshot: fold again after
        training)."""
        return FoldedEnsemble(self)

    def loss(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        next_obs: torch.Tensor,
        reward: torch.Tensor | None = None,
        terminated: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Training loss summed over members, averaged over batch and dimensions.

        MSE on the normalized delta for deterministic models; Gaussian negative
        log-likelihood (constant dropped) plus ``0.01 * (max_logstd - min_logstd)`` (PETS)
        for probabilistic ones. With reward heads, plus the MSE of the normalized reward and the
        positive-weighted BCE of the termination logit. ``obs``, ``act``, ``next_obs``:
        ``(E, B, dim)``; ``reward``, ``terminated`` (float 0/1): ``(E, B)``, needed with reward
        heads.
        """
        mean, logstd, heads = self._outputs(obs, act)
        target = self.delta_normalizer.normalize(next_obs - obs)
        if logstd is None:
            total = ((mean - target) ** 2).mean((1, 2)).sum()
        else:
            nll = (((mean - target) ** 2) * torch.exp(-2 * logstd) + 2 * logstd).mean((1, 2))
            total = nll.sum() + 0.01 * (self.max_logstd.sum() - self.min_logstd.sum())
        if heads is None:
            return total
        if reward is None or terminated is None:
            raise ConfigError("a model with reward heads needs rewards and terminations")
        reward_target = self.reward_normalizer.normalize(reward.unsqueeze(-1))[..., 0]
        bce = nn.functional.binary_cross_entropy_with_logits(
            heads[..., 1], terminated, pos_weight=self.termination_pos_weight, reduction="none"
        )
        return total + ((heads[..., 0] - reward_target) ** 2 + bce).mean(1).sum()


_IN_PLACE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu_,
    "tanh": torch.tanh_,
    "elu": nn.functional.elu_,
    "silu": partial(nn.functional.silu, inplace=True),
}
"""In-place versions of the activations that have one (the others allocate, as in training)."""


class FoldedEnsemble:
    """Inference-only snapshot of an :class:`EnsembleDynamics` for the planner's inner loop.

    ``predict(s, a)`` equals the model's up to float rounding, in fewer operations per step: the
    input normalizer is folded into the first layer, ``((x - m) / s) W + b = x (W / s) + (b -
    (m / s) W)``, whose weight is split into state and action rows (no concatenation); the delta
    normalizer into the mean columns of the head, which adds the state as its bias; hidden
    activations run in place. Reward heads are folded like the mean columns (the reward
    normalizer into the reward column).
    """

    def __init__(self, model: EnsembleDynamics) -> None:
        obs_dim = model.obs_dim
        layers = [
            (layer.weight.detach().clone(), layer.bias.detach().clone())
            for layer in (*model.layers, model.head)
        ]
        norm_in, norm_delta = model.input_normalizer, model.delta_normalizer
        weight, bias = layers[0]
        layers[0] = (
            weight / norm_in.std[:, None],
            bias - ((norm_in.mean / norm_in.std) @ weight).unsqueeze(1),
        )
        # head: (E, hid, obs [+ obs logstd] [+ reward, termination logit]), (E, 1, ...)
        *hidden, (weight, bias) = layers
        self.w_mean = weight[..., :obs_dim] * norm_delta.std
        self.b_mean = bias[..., :obs_dim] * norm_delta.std + norm_delta.mean
        self.heads: tuple[torch.Tensor, torch.Tensor] | None = None
        if model.reward_heads:
            norm_r = model.reward_normalizer
            scale = torch.cat([norm_r.std, torch.ones_like(norm_r.std)])
            shift = torch.cat([norm_r.mean, torch.zeros_like(norm_r.mean)])
            self.heads = (weight[..., -2:] * scale, bias[..., -2:] * scale + shift)
            weight, bias = weight[..., :-2], bias[..., :-2]
        self.w_logstd, self.b_logstd = weight[..., obs_dim:], bias[..., obs_dim:]
        self.first = None  # no hidden layer: the head takes [s, a] itself
        if hidden:
            (weight, bias), *hidden = hidden
            self.first = (weight[:, :obs_dim], weight[:, obs_dim:], bias)
        self.hidden = hidden
        self.activation: Callable[[torch.Tensor], torch.Tensor] = _IN_PLACE.get(
            model.get_config()["activation"], model.act_fn
        )
        self.delta_std, self.probabilistic = norm_delta.std, model.probabilistic
        if self.probabilistic:
            self.max_logstd = model.max_logstd.detach().clone()
            self.min_logstd = model.min_logstd.detach().clone()

    def predict(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Next observation of every member ``(E, B, obs_dim)`` from ``(E, B, obs_dim)``
        observations and ``(E, B, act_dim)`` actions (see :meth:`EnsembleDynamics.predict`)."""
        return self.step(obs, act, sample, generator)[0]

    def step(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """:meth:`predict`'s next observation, then every member's predicted reward ``(E, B)``
        (raw units) and termination ``(E, B)`` bool (logit > 0), from the same features; both
        ``None`` without reward heads."""
        if self.first is None:
            h = torch.cat([obs, act], -1)
        else:
            w_state, w_action, bias = self.first
            h = self.activation(torch.baddbmm(torch.baddbmm(bias, act, w_action), obs, w_state))
        for weight, bias in self.hidden:
            h = self.activation(torch.baddbmm(bias, h, weight))
        next_obs = torch.baddbmm(obs + self.b_mean, h, self.w_mean)
        if sample and self.probabilistic:
            logstd = torch.baddbmm(self.b_logstd, h, self.w_logstd)
            std = _soft_bounded(logstd, self.min_logstd, self.max_logstd).exp()
            next_obs = next_obs + _gaussian_noise(next_obs, generator) * std * self.delta_std
        if self.heads is None:
            return next_obs, None, None
        heads = torch.baddbmm(self.heads[1], h, self.heads[0])
        return next_obs, heads[..., 0], heads[..., 1] > 0
