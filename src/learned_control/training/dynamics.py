"""Fit an :class:`~learned_control.models.dynamics.EnsembleDynamics` to transitions.

The whole dataset lives on the device as tensors; each member draws its own bootstrap
minibatch indices every step. Validation reports the one-step error and the k-step open-loop
rollout error (along contiguous stretches of the validation data), and for a model with reward
heads the reward error and the termination error; early stopping restores the best weights.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checkpoint import save_checkpoint
from ..data.episodes import Transitions
from ..errors import ConfigError, DatasetError
from ..models.dynamics import EnsembleDynamics
from ..planning.rewards import has_reward
from ..tasks import Task

__all__ = [
    "DynamicsTrainConfig",
    "DynamicsHistory",
    "REWARD_HEADS",
    "wants_reward_heads",
    "train_dynamics",
    "rollout_error",
    "heads_errors",
    "plot_history",
    "train_dynamics_run",
]


REWARD_HEADS = ("auto", "on", "off")
"""Choices of whether a dynamics model learns reward and termination heads; ``auto``: exactly when
the task has no torch reward (:func:`wants_reward_heads`)."""


def wants_reward_heads(choice: str, task: Task) -> bool:
    """Whether a dynamics model for ``task`` learns reward heads: ``on``, ``off``, or ``auto``
    (on exactly when :data:`~learned_control.planning.rewards.REWARDS` has no reward for the
    task). ConfigError for another choice."""
    if choice not in REWARD_HEADS:
        raise ConfigError(f"reward_heads={choice!r}; expected one of {REWARD_HEADS}")
    return choice == "on" or (choice == "auto" and not has_reward(task.name))


@dataclass
class DynamicsTrainConfig:
    """Training settings.

    Attributes:
        epochs: maximum passes over the training data (default 100).
        batch_size: minibatch size per member (default 256).
        lr: Adam learning rate (default 1e-3).
        weight_decay: Adam L2 weight decay (default 1e-5).
        val_fraction: share of transitions held out for validation, taken from the end so
            that rollouts stay contiguous (default 0.1).
        patience: epochs without validation improvement before stopping; 0 disables early
            stopping (default 10).
        rollout_steps: ``k`` of the k-step open-loop validation error (default 10).
        bootstrap: each member trains on its own bootstrap resample (default True).
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    val_fraction: float = 0.1
    patience: int = 10
    rollout_steps: int = 10
    bootstrap: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "rollout_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"DynamicsTrainConfig.{name}={getattr(self, name)}; expected >= 1"
                )
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(
                f"DynamicsTrainConfig.val_fraction={self.val_fraction}; expected in (0, 1)"
            )
        if self.lr <= 0 or self.weight_decay < 0 or self.patience < 0:
            raise ConfigError(
                f"DynamicsTrainConfig lr={self.lr} (> 0), weight_decay="
                f"{self.weight_decay} (>= 0), patience={self.patience} (>= 0)"
            )


@dataclass
class DynamicsHistory:
    """Per-epoch curves (lists of floats, one entry per epoch) and the best epoch.

    ``val_reward_mse`` (raw units) and ``val_termination_error`` (the mean over the classes
    present of the share of validation steps whose termination is mispredicted: 0 perfect, 0.5
    chance) stay empty for models without reward heads.
    """

    train_loss: list[float] = field(default_factory=list)
    val_one_step_mse: list[float] = field(default_factory=list)
    val_rollout_mse: list[float] = field(default_factory=list)
    val_reward_mse: list[float] = field(default_factory=list)
    val_termination_error: list[float] = field(default_factory=list)
    best_epoch: int = -1

    def as_dict(self) -> dict:
        return asdict(self)


def _tensors(data: Transitions, device: torch.device, heads: bool) -> tuple[torch.Tensor, ...]:
    """``(obs, act, next_obs)``, with ``heads`` also ``(reward, terminated)`` (float 0/1)."""
    arrays = [data.observations, data.actions, data.next_observations]
    if heads:
        arrays += [data.rewards, data.terminations]
    return tuple(torch.as_tensor(x, dtype=torch.float32, device=device) for x in arrays)


@torch.no_grad()
def heads_errors(
    model: EnsembleDynamics,
    obs: torch.Tensor,
    act: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
) -> tuple[float, float]:
    """``(reward MSE, termination error)`` of the members' mean reward and mean termination
    probability (> 0.5) on ``(N, ...)`` data (see :class:`DynamicsHistory`)."""
    predicted, probability = (x.mean(0) for x in model.predict_heads(obs, act))
    wrong = (probability > 0.5) != terminated.bool()
    classes = [wrong[terminated.bool() == c].float().mean() for c in (False, True)]
    error = torch.stack([c for c in classes if not c.isnan()]).mean()
    return float(((predicted - reward) ** 2).mean()), float(error)


@torch.no_grad()
def rollout_error(
    model: EnsembleDynamics,
    obs: torch.Tensor,
    act: torch.Tensor,
    next_obs: torch.Tensor,
    steps: int,
) -> float:
    """Mean squared error (raw units) after ``steps`` open-loop steps of the ensemble mean.

    Starts are every index whose next ``steps`` transitions are contiguous
    (``next_obs[i] == obs[i+1]``). Inputs ``(N, obs_dim)``, ``(N, act_dim)``, ``(N, obs_dim)``.
    Returns ``nan`` when no stretch is long enough.
    """
    n = len(obs)
    linked = torch.zeros(n, dtype=torch.bool, device=obs.device)
    linked[:-1] = (next_obs[:-1] == obs[1:]).all(-1)
    # starts i where linked[i .. i+steps-2] all hold
    ok = torch.ones(max(n - steps + 1, 0), dtype=torch.bool, device=obs.device)
    for j in range(steps - 1):
        ok &= linked[j : j + len(ok)]
    starts = ok.nonzero().squeeze(-1)
    if len(starts) == 0:
        return float("nan")
    state = obs[starts]
    for j in range(steps):
        state = model.predict(state, act[starts + j]).mean(0)
    return float(((state - next_obs[starts + steps - 1]) ** 2).mean())


def train_dynamics(
    model: EnsembleDynamics,
    data: Transitions,
    config: DynamicsTrainConfig | None = None,
    seed: int = 0,
    progress: bool = False,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> DynamicsHistory:
    """Fit ``model`` in place; returns the per-epoch history.

    Args:
        model: the ensemble to train (on its own device).
        data: transitions whose sizes fit the model.
        config: training settings (defaults if ``None``).
        seed: seed of the split-independent randomness (bootstrap, minibatches).
        progress: show a tqdm bar over epochs.
        callback: called after every epoch with ``(epoch, metrics)``, metrics holding
            ``train_loss``, ``val_one_step_mse``, ``val_rollout_mse`` and, with reward heads,
            ``val_reward_mse`` and ``val_termination_error`` (the learner node turns them into
            diagnostics).

    Raises:
        DatasetError: too few transitions or sizes that do not fit the model.
    """
    config = config or DynamicsTrainConfig()
    data.check_fits(model.obs_dim, model.act_dim, "dynamics training data")
    n_val = max(1, int(len(data) * config.val_fraction))
    n_train = len(data) - n_val
    if n_train < 2:
        raise DatasetError(f"{len(data)} transitions are too few to train dynamics (need >= 3)")
    device = model.device
    tensors = _tensors(data, device, model.reward_heads)
    train = tuple(x[:n_train] for x in tensors)
    val = tuple(x[n_train:] for x in tensors)
    model.set_stats(*train)
    gen = torch.Generator(device=device).manual_seed(seed)
    members = model.members
    if config.bootstrap:
        pool = torch.randint(n_train, (members, n_train), generator=gen, device=device)
    else:
        pool = torch.arange(n_train, device=device).expand(members, -1)
    optim = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history, best, best_state, waited = DynamicsHistory(), float("inf"), None, 0
    for epoch in tqdm(range(config.epochs), desc="dynamics", disable=not progress):
        model.train()
        order = torch.argsort(torch.rand(members, n_train, generator=gen, device=device), dim=1)
        perm = torch.gather(pool, 1, order)
        total = 0.0
        for start in range(0, n_train, config.batch_size):
            idx = perm[:, start : start + config.batch_size]
            loss = model.loss(*(x[idx] for x in train))
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * idx.shape[1]
        model.eval()
        with torch.no_grad():
            one_step = float(((model.predict(val[0], val[1]).mean(0) - val[2]) ** 2).mean())
        metrics = {
            "train_loss": total / n_train,
            "val_one_step_mse": one_step,
            "val_rollout_mse": rollout_error(model, val[0], val[1], val[2], config.rollout_steps),
        }
        if model.reward_heads:
            metrics["val_reward_mse"], metrics["val_termination_error"] = heads_errors(
                model, val[0], val[1], val[3], val[4]
            )
        for key, value in metrics.items():
            getattr(history, key).append(value)
        if callback is not None:
            callback(epoch, metrics)
        if one_step < best:
            best, best_state, waited, history.best_epoch = (
                one_step,
                copy.deepcopy(model.state_dict()),
                0,
                epoch,
            )
        else:
            waited += 1
            if config.patience and waited >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def plot_history(history: DynamicsHistory, path: str | Path) -> Path:
    """Save train loss and validation one-step / k-step errors per epoch as a PNG, and the
    reward and termination errors where the history has them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = bool(history.val_reward_mse)
    fig, axes = plt.subplots(1, 3 if heads else 2, figsize=(15 if heads else 10, 4))
    epochs = np.arange(len(history.train_loss))
    axes[0].plot(epochs, history.train_loss)
    axes[0].set(xlabel="epoch", ylabel="train loss (normalized)", title="training")
    axes[1].semilogy(epochs, history.val_one_step_mse, label="one-step")
    axes[1].semilogy(epochs, history.val_rollout_mse, label="k-step open loop")
    axes[1].axvline(history.best_epoch, color="gray", linestyle=":", label="best")
    axes[1].set(xlabel="epoch", ylabel="validation MSE (raw units)", title="validation")
    axes[1].legend()
    if heads:
        axes[2].semilogy(epochs, history.val_reward_mse, color="C0")
        axes[2].axvline(history.best_epoch, color="gray", linestyle=":")
        axes[2].set(xlabel="epoch", title="validation: reward and termination heads")
        axes[2].set_ylabel("reward MSE (raw units)", color="C0")
        twin = axes[2].twinx()
        twin.plot(epochs, history.val_termination_error, color="C1")
        twin.set_ylabel("termination error (0.5 = chance)", color="C1")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def train_dynamics_run(
    model: EnsembleDynamics,
    data: Transitions,
    task: Task,
    config: DynamicsTrainConfig,
    run_dir: str | Path,
    seed: int = 0,
    progress: bool = False,
    metadata: dict | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint_name: str = "dynamics.pt",
) -> tuple[DynamicsHistory, Path]:
    """Fit ``model`` on ``data`` and write the run's outputs into ``run_dir``.

    Writes ``checkpoint_name`` (best weights, with task, config, best-epoch errors and
    ``metadata``; written only after training completes, atomically), ``curves.png``,
    ``history.json`` and TensorBoard scalars ``dynamics/<metric>`` under ``tensorboard/``.
    ``callback`` is passed to :func:`train_dynamics`; an exception it raises stops training
    before any checkpoint is written.

    Returns:
        ``(history, checkpoint_path)``.

    Raises:
        DatasetError: too few transitions or sizes that do not fit the model.
    """
    from torch.utils.tensorboard import SummaryWriter

    run_dir = Path(run_dir)
    with SummaryWriter(str(run_dir / "tensorboard")) as writer:

        def log(epoch: int, metrics: dict[str, float]) -> None:
            for key, value in metrics.items():
                writer.add_scalar(f"dynamics/{key}", value, epoch)
            if callback is not None:
                callback(epoch, metrics)

        history = train_dynamics(model, data, config, seed, progress, log)
    plot_history(history, run_dir / "curves.png")
    (run_dir / "history.json").write_text(json.dumps(history.as_dict(), indent=1))
    best = history.best_epoch
    path = save_checkpoint(
        run_dir / checkpoint_name,
        model,
        task,
        metadata={
            "trainer": "dynamics",
            "transitions": len(data),
            "train_config": asdict(config),
            "best_epoch": best,
            "val_one_step_mse": history.val_one_step_mse[best],
            "val_rollout_mse": history.val_rollout_mse[best],
            **{
                key: getattr(history, key)[best]
                for key in ("val_reward_mse", "val_termination_error")
                if getattr(history, key)
            },
            "seed": seed,
            **(metadata or {}),
        },
    )
    return history, path
