"""Small run-time helpers shared by the CLI, the nodes and the benchmarks."""

from __future__ import annotations

import datetime as _dt
import os
import random
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError

__all__ = ["configure_torch", "resolve_device", "seed_everything", "new_run_dir"]


def configure_torch(threads: int | None) -> None:
    """Limit torch intra-op threads so that several processes share few cores (None: leave)."""
    if threads is not None and threads > 0:
        torch.set_num_threads(threads)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available else cpu; ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} but torch sees no CUDA device on this machine; "
            "use device='cpu' or 'auto'"
        )
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def new_run_dir(root: str | os.PathLike = "runs", name: str = "run") -> Path:
    """A fresh ``root/<name>-<timestamp>`` folder for checkpoints, plots and logs."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{name}-{stamp}"
    suffix = 1
    while path.exists():
        path = Path(root) / f"{name}-{stamp}-{suffix}"
        suffix += 1
    path.mkdir(parents=True)
    return path
