"""Fully connected networks and the standardizing normalizer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MLP", "Normalizer", "ACTIVATIONS"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


class MLP(nn.Module):
    """``input_dim -> hid_size x num_layers -> output_dim``, activation between, none at the output.

    Args:
        input_dim: size of the last input dimension.
        output_dim: size of the last output dimension.
        hid_size: width of every hidden layer.
        num_layers: number of hidden layers (0 gives a single linear map).
        activation: one of :data:`ACTIVATIONS`.

    Inputs of shape ``(..., input_dim)`` give outputs of shape ``(..., output_dim)``.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        hid_size: int = 64,
        num_layers: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}; expected one of {sorted(ACTIVATIONS)}")
        sizes = [input_dim] + [hid_size] * num_layers
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(sizes[-1], output_dim))
        self.net = nn.Sequential(*layers)
        self.input_dim, self.output_dim = input_dim, output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers in order, input first."""
        return [m for m in self.net if isinstance(m, nn.Linear)]


class Normalizer(nn.Module):
    """Standardizes with statistics of training data: ``(x - mean) / (std + eps)``.

    The statistics are buffers, so they move with ``.to(device)`` and are saved in the
    state dict beside the weights.

    Args:
        dim: size of the last dimension.
        eps: added to the standard deviation (default 1e-5).
    """

    mean: torch.Tensor  # (dim,) buffer
    std: torch.Tensor  # (dim,) buffer, eps included

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))  # already includes eps

    @classmethod
    def fit(cls, data: np.ndarray | torch.Tensor, eps: float = 1e-5) -> Normalizer:
        """A normalizer with the mean and std (+ eps) of ``data`` of shape ``(N, dim)``."""
        x = torch.as_tensor(data, dtype=torch.float32)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(
                f"Normalizer.fit needs a non-empty (N, dim) array, got {tuple(x.shape)}"
            )
        norm = cls(x.shape[1], eps)
        norm.set_stats(x.mean(0), x.std(0, unbiased=False) + eps)
        return norm

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set mean and std (std including eps) from tensors of shape ``(dim,)``."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    @property
    def dim(self) -> int:
        return self.mean.shape[0]
