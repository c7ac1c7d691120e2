"""Learned dynamics: ``s' = s + f(s, a)`` as one batched ensemble (deterministic or Gaussian).

All ``E`` members run in ONE forward pass: every layer holds parameters of shape
``(E, in, out)`` and applies them with :func:`torch.baddbmm`. A single model is ``E = 1``.
Inputs ``[s, a]`` and delta targets ``s' - s`` are standardized with training statistics by two
:class:`~learned_control.models.mlp.Normalizer` s that the model owns (saved in its state dict).
For planning, :meth:`EnsembleDynamics.folded` gives a :class:`FoldedEnsemble`: the same function
with the normalizers folded into the first and last layers, in fewer tensor operations per step.
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
    """

    kind = "dynamics"

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
        )
        self.obs_dim, self.act_dim, self.members = obs_dim, act_dim, members
        self.probabilistic = probabilistic
        widths = [hid_size] * num_layers if hidden_sizes is None else hidden_sizes
        sizes = [obs_dim + act_dim, *widths]
        self.layers = nn.ModuleList(
            EnsembleLinear(members, i, o) for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.head = EnsembleLinear(members, sizes[-1], obs_dim * (2 if probabilistic else 1))
        self.act_fn = ACTIVATIONS[activation]()
        self.input_normalizer = Normalizer(obs_dim + act_dim)
        self.delta_normalizer = Normalizer(obs_dim)
        if probabilistic:
            self.max_logstd = nn.Parameter(torch.full((obs_dim,), float(init_max_logstd)))
            self.min_logstd = nn.Parameter(torch.full((obs_dim,), float(init_min_logstd)))

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)

    def set_stats(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> None:
        """Fit both normalizers to training data ``(N, obs_dim)``, ``(N, act_dim)``,
        ``(N, obs_dim)``."""
        for norm, data in (
            (self.input_normalizer, torch.cat([obs, act], -1)),
            (self.delta_normalizer, next_obs - obs),
        ):
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
        h = self.input_normalizer.normalize(torch.cat([obs, act], -1))
        for layer in self.layers:
            h = self.act_fn(layer(h))
        out = self.head(h)
        if not self.probabilistic:
            return out, None
        mean, logstd = out.chunk(2, dim=-1)
        return mean, _soft_bounded(logstd, self.min_logstd, self.max_logstd)

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

    @torch.no_grad()
    def folded(self) -> FoldedEnsemble:
        """A :class:`FoldedEnsemble` of the current weights (a snapshot: fold again after
        training)."""
        return FoldedEnsemble(self)

    def loss(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Training loss summed over members, averaged over batch and dimensions.

        MSE on the normalized delta for deterministic models; Gaussian negative
        log-likelihood (constant dropped) plus ``0.01 * (max_logstd - min_logstd)`` (PETS)
        for probabilistic ones. All inputs ``(E, B, dim)``.
        """
        mean, logstd = self(obs, act)
        target = self.delta_normalizer.normalize(next_obs - obs)
        if logstd is None:
            return ((mean - target) ** 2).mean((1, 2)).sum()
        nll = (((mean - target) ** 2) * torch.exp(-2 * logstd) + 2 * logstd).mean((1, 2)).sum()
        return nll + 0.01 * (self.max_logstd.sum() - self.min_logstd.sum())


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
    activations run in place.
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
        *hidden, (weight, bias) = layers  # head: (E, hid, obs [+ obs logstd]), (E, 1, ...)
        self.w_mean = weight[..., :obs_dim] * norm_delta.std
        self.b_mean = bias[..., :obs_dim] * norm_delta.std + norm_delta.mean
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
        return next_obs
