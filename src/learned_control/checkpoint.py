"""One versioned, safe-to-load checkpoint file for every model the package trains.

A checkpoint is a ``torch.save`` of plain data only (no pickled objects)::

    {"format": "learned_control", "format_version": 1, "package_version": "0.1.0",
     "class": "MLPPolicy", "kind": "policy", "config": {...constructor kwargs...},
     "state_dict": {...}, "task": "Pusher-v5" | None,
     "task_layout": {"env_id": "Pusher-v5", "env_kwargs": {...}, "obs_labels": [...],
                     "dict_obs_keys": [...] | None} | None,
     "observation_shape": [obs_dim], "action_shape": [act_dim],
     "action_low": [...] | None, "action_high": [...] | None,
     "metadata": {...JSON-able training facts...}, "created": "2026-11-23T10:00:00"}

``task_layout`` (:attr:`learned_control.tasks.Task.layout`, written when the model is saved with
its :class:`~learned_control.tasks.Task`) lets :meth:`Checkpoint.resolve_task` rebuild the task
in any process and :meth:`Checkpoint.check_fits` refuse a task whose observation is laid out
differently; checkpoints without it load as before.

It is written to a temporary file in the same folder and renamed, so a crash never leaves a
half-written checkpoint behind, and read with ``torch.load(weights_only=True)``.

The seed-format saved dict loads too: a plain ``torch.save`` of ``net`` (the state_dict of an
``obs_dim -> hid_size x num_layers -> act_dim`` ReLU MLP, whatever its layer keys are called) with
``hid_size``, ``num_layers`` and the input and target statistics ``X_mean``, ``X_std`` (shape
``(obs_dim,)``), ``Y_mean``, ``Y_std`` (shape ``(act_dim,)``); :func:`export_seed_format`
writes an MLP policy in that format.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct

from . import __version__
from .errors import CheckpointError
from .models.base import MODEL_CLASSES, SavableModel
from .models.dynamics import EnsembleDynamics
from .models.policies import MLPPolicy

if TYPE_CHECKING:
    from .tasks import Task

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_dynamics",
    "export_seed_format",
    "FORMAT",
    "FORMAT_VERSION",
]

FORMAT = "learned_control"
FORMAT_VERSION = 1
SEED_FORMAT_KEYS = frozenset(
    {"net", "hid_size", "num_layers", "X_mean", "X_std", "Y_mean", "Y_std"}
)
# numpy arrays are allowed inside checkpoints (seed-format statistics may be arrays), still
# weights_only.
_NUMPY_SAFE_GLOBALS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
    _reconstruct,
    np.ndarray,
    np.dtype,
    type(np.dtype(np.float32)),
    type(np.dtype(np.float64)),
]


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model plus what was saved about it.

    Attributes:
        task_layout: the task's env id, env kwargs, observation labels and dict keys
            (:attr:`learned_control.tasks.Task.layout`); ``None`` for files saved without them.
    """

    model: SavableModel
    path: Path
    task: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    task_layout: dict[str, Any] | None = None

    @property
    def identity(self) -> str:
        """Short human-readable identity for logs and diagnostics."""
        return f"{type(self.model).__name__}@{self.path.name}"

    def resolve_task(self) -> Task:
        """The task it was trained for, with its env kwargs, in this process (registered, from
        an entry point, or derived from the env id). CheckpointError when it names none."""
        from .tasks import get_task

        if self.task is None:
            raise CheckpointError(f"{self.path}: the checkpoint names no task")
        return get_task(self.task, (self.task_layout or {}).get("env_kwargs"))

    def check_fits(
        self, obs_dim: int, act_dim: int | None = None, task: str | Task | None = None
    ) -> None:
        """Raise :class:`CheckpointError` naming both sides if the sizes or task do not match;
        for a :class:`~learned_control.tasks.Task`, also its observation layout (labels and
        dict keys) when the checkpoint records one."""
        model_obs = getattr(self.model, "obs_dim", None)
        model_act = getattr(self.model, "act_dim", None)
        if model_obs is not None and model_obs != obs_dim:
            raise CheckpointError(
                f"{self.path}: checkpoint expects observations of size "
                f"{model_obs}, the task gives {obs_dim}"
            )
        if act_dim is not None and model_act is not None and model_act != act_dim:
            raise CheckpointError(
                f"{self.path}: checkpoint outputs actions of size {model_act}, "
                f"the task takes {act_dim}"
            )
        name = task if task is None or isinstance(task, str) else task.name
        if name is not None and self.task is not None and self.task != name:
            raise CheckpointError(
                f"{self.path}: checkpoint was trained for task {self.task!r}, not {name!r}"
            )
        if task is not None and not isinstance(task, str) and self.task_layout:
            self._check_layout(task)

    def _check_layout(self, task: Task) -> None:
        saved_layout, given_layout = self.task_layout or {}, task.layout
        for key, what in (("dict_obs_keys", "dict observation keys"), ("obs_labels", "labels")):
            if key not in saved_layout or saved_layout[key] == given_layout[key]:
                continue
            saved, given = saved_layout[key], given_layout[key]
            pairs = zip(saved or [], given or [], strict=False)
            where = next(
                (i for i, (a, b) in enumerate(pairs) if a != b),
                min(len(saved or []), len(given or [])),
            )
            raise CheckpointError(
                f"{self.path}: the checkpoint's observation {what} differ from task "
                f"{task.name}'s at element {where} (checkpoint {_around(saved, where)}, "
                f"task {_around(given, where)}); refusing a model that would read the "
                "observation in another layout"
            )


def _around(items: list[str] | None, i: int) -> str:
    """``items[i]`` for a message, or what stands there instead."""
    if items is None:
        return "none"
    return repr(items[i]) if i < len(items) else f"ends after {len(items)}"


def save_checkpoint(
    path: str | os.PathLike,
    model: SavableModel,
    task: str | Task | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``path`` atomically; returns the path.

    Args:
        path: destination file (parent folders are created).
        model: a registered :class:`SavableModel`.
        task: the task it was trained for, or its name; a :class:`~learned_control.tasks.Task`
            also records its env id, env kwargs and observation layout (``task_layout``).
        metadata: JSON-able facts (data source, epochs, losses, seed...).
    """
    name = type(model).__name__
    if MODEL_CLASSES.get(name) is not type(model):
        raise CheckpointError(
            f"{name} is not a registered model class; decorate it with @register_model"
        )
    config = model.get_config()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "class": name,
        "kind": model.kind,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "task": task if task is None or isinstance(task, str) else task.name,
        "task_layout": None if task is None or isinstance(task, str) else task.layout,
        "observation_shape": [config["obs_dim"]] if "obs_dim" in config else None,
        "action_shape": [config["act_dim"]] if "act_dim" in config else None,
        "metadata": dict(metadata or {}),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    return _write_atomically(payload, Path(path))


def _write_atomically(payload: dict[str, Any], path: Path) -> Path:
    """``torch.save`` ``payload`` to a temporary file beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def export_seed_format(policy: SavableModel, path: str | os.PathLike) -> Path:
    """Write an :class:`MLPPolicy` with ReLU hidden layers as the seed-format saved dict (see
    the module docstring), atomically; :func:`load_checkpoint` reads it back.

    ``net`` holds ``hidden.<i>.weight``/``bias`` for each hidden layer and ``out.weight``/
    ``bias``; the statistics are float32 tensors, the stds including the normalizer's eps. The
    format carries no action bounds: a tool that reads it gets the network's unclipped output.

    Raises:
        CheckpointError: any other policy class or activation (the format cannot hold it).
    """
    if type(policy) is not MLPPolicy or policy.activation != "relu":
        what = type(policy).__name__
        if isinstance(policy, MLPPolicy):
            what += f" with {policy.activation} activations"
        raise CheckpointError(
            f"the seed format holds a ReLU MLPPolicy (train-bc --policy mse --activation "
            f"relu); this is a {what}"
        )
    layers = policy.net.linear_layers()
    names = [f"hidden.{i}" for i in range(len(layers) - 1)] + ["out"]
    net = {
        f"{name}.{key}": value.detach().cpu().clone()
        for name, layer in zip(names, layers, strict=True)
        for key, value in layer.state_dict().items()
    }
    payload = {
        "net": net,
        "hid_size": policy.hid_size,
        "num_layers": policy.num_layers,
        "X_mean": policy.obs_normalizer.mean.detach().cpu().clone(),
        "X_std": policy.obs_normalizer.std.detach().cpu().clone(),
        "Y_mean": policy.act_normalizer.mean.detach().cpu().clone(),
        "Y_std": policy.act_normalizer.std.detach().cpu().clone(),
    }
    return _write_atomically(payload, Path(path))


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    action_low: Any = None,
    action_high: Any = None,
) -> Checkpoint:
    """Load one of our checkpoints, or a seed-format policy file (see the module docstring).

    Args:
        path: the file.
        map_location: device for the tensors (``"cpu"``, ``"cuda"``).
        action_low, action_high: action bounds for files that do not carry them (the seed
            format); ignored when the checkpoint has its own.

    Raises:
        CheckpointError: missing, truncated, corrupt or foreign file, unknown class, or weights
            that do not fit the saved architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {str(path)!r}")
    try:
        with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS):
            raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated/corrupt/unsafe files
        raise CheckpointError(
            f"{str(path)!r} is not a readable checkpoint (truncated, corrupt, "
            f"or holds objects that are unsafe to load): {err}"
        ) from err
    if not isinstance(raw, dict):
        raise CheckpointError(f"{str(path)!r} holds a {type(raw).__name__}, not a checkpoint dict")
    if raw.get("format") == FORMAT:
        return _from_ours(raw, path, map_location)
    if SEED_FORMAT_KEYS <= raw.keys():
        model = _from_seed_format(raw, path, action_low, action_high).to(map_location)
        return Checkpoint(model, path, None, {"source": "seed-format saved dict"})
    raise CheckpointError(
        f"{str(path)!r} is not a learned_control checkpoint (keys: "
        f"{sorted(map(str, raw))[:8]}); expected 'format': {FORMAT!r} or the "
        f"seed-format keys {sorted(SEED_FORMAT_KEYS)}"
    )


def load_dynamics(
    path: str | os.PathLike,
    obs_dim: int,
    act_dim: int,
    task: str | Task | None = None,
    map_location: str | torch.device = "cpu",
) -> EnsembleDynamics:
    """The dynamics model of the checkpoint at ``path``, checked to fit the sizes (and ``task``).

    Raises:
        CheckpointError: what :func:`load_checkpoint` refuses, a model that is not dynamics, or
            sizes or a task that do not fit.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    if not isinstance(ckpt.model, EnsembleDynamics):
        raise CheckpointError(
            f"{str(path)!r} holds a {type(ckpt.model).__name__}, not a "
            "dynamics model (EnsembleDynamics)"
        )
    ckpt.check_fits(obs_dim, act_dim, task)
    return ckpt.model


def _from_ours(raw: dict, path: Path, map_location) -> Checkpoint:
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has format version {version!r}; this package reads "
            f"up to {FORMAT_VERSION} (upgrade learned_control)"
        )
    cls = MODEL_CLASSES.get(raw.get("class", ""))
    if cls is None:
        raise CheckpointError(
            f"{str(path)!r} holds a {raw.get('class')!r}, which this install does "
            f"not know (known: {sorted(MODEL_CLASSES)})"
        )
    try:
        model = cls.from_config(dict(raw["config"]))
        model.load_state_dict(raw["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise CheckpointError(
            f"{str(path)!r}: weights do not fit the saved {cls.__name__} config: {err}"
        ) from err
    layout = raw.get("task_layout")
    return Checkpoint(
        model.to(map_location),
        path,
        raw.get("task"),
        dict(raw.get("metadata") or {}),
        version,
        dict(layout) if isinstance(layout, dict) else None,
    )


def _from_seed_format(raw: dict, path: Path, action_low: Any, action_high: Any) -> MLPPolicy:
    """Rebuild the seed-format ``(input -> hid x layers -> output)`` ReLU MLP from any key
    names."""
    stats = {}
    for key in ("X_mean", "X_std", "Y_mean", "Y_std"):
        try:
            stats[key] = torch.as_tensor(np.asarray(raw[key], dtype=np.float32)).reshape(-1)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{str(path)!r}: {key} is not a numeric vector") from err
    hid, layers = int(raw["hid_size"]), int(raw["num_layers"])
    obs_dim, act_dim = len(stats["X_mean"]), len(stats["Y_mean"])
    tensors = [v for v in raw["net"].values() if isinstance(v, torch.Tensor)]
    # an odd count leaves one tensor unpaired, which the check below reports
    pairs = [(w, b) for w, b in zip(tensors[0::2], tensors[1::2], strict=False)]
    expected = [(hid if i else obs_dim, hid) for i in range(layers)] + [
        (hid if layers else obs_dim, act_dim)
    ]
    found = [(tuple(w.shape)[::-1], tuple(b.shape)) for w, b in pairs]
    if (
        len(tensors) % 2
        or [(i, o) for (i, o), _ in found] != expected
        or any(b != (o,) for (_, o), b in found)
    ):
        raise CheckpointError(
            f"{str(path)!r}: the Linear layers in 'net' do not form the chain {obs_dim} -> "
            f"{hid} x {layers} -> {act_dim}; found (in, out) = {[s for s, _ in found]}"
        )
    policy = MLPPolicy(obs_dim, act_dim, hid, layers, "relu", action_low, action_high)
    with torch.no_grad():
        for layer, (w, b) in zip(policy.net.linear_layers(), pairs, strict=True):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    policy.obs_normalizer.set_stats(stats["X_mean"], stats["X_std"])
    policy.act_normalizer.set_stats(stats["Y_mean"], stats["Y_std"])
    return policy
