"""Small run-time helpers shared by the CLI, the nodes and the benchmarks."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from .errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["configure_torch", "resolve_device", "seed_everything", "new_run_dir", "config_from"]

C = TypeVar("C", bound="DataclassInstance")


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


def config_from(cls: type[C], source: object, **values: Any) -> C:
    """An instance of the dataclass ``cls``: each field from ``values``, else from the attribute of
    the same name of ``source`` (a parsed command line, a wider config), else its default.
    ConfigError from ``cls`` names a bad value."""
    shared = {
        f.name: getattr(source, f.name) for f in dataclasses.fields(cls) if hasattr(source, f.name)
    }
    return cls(**{**shared, **values})
