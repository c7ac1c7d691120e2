"""Experts without a network: train stable-baselines3 agents, and record datasets with an actor.

Loading an expert (an SB3 zip without unpickling, a policy or a planner) is
:func:`learned_control.actors.load_actor`.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..actors import Actor, NoisyActor, SB3Actor, algorithm_class, load_sb3_model
from ..data.episodes import Episode
from ..data.minari_io import (
    check_new_dataset_id,
    check_stand_in,
    rollout_episodes,
    save_episodes,
)
from ..errors import ConfigError
from ..evaluation import evaluate
from ..tasks import Task

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = [
    "CHECKPOINT",
    "REPLAY",
    "PROGRESS",
    "SETTINGS",
    "CURVE",
    "train_expert",
    "read_progress",
    "plot_progress",
    "collect_dataset",
]


CHECKPOINT = "checkpoint.zip"
"""The latest model of a resumable expert run (an SB3 zip) in its run directory."""
REPLAY = "replay.npz"
"""The replay buffer of that checkpoint (plain arrays, no pickle)."""
PROGRESS = "progress.csv"
"""One row per checkpoint: step, mean training return, evaluation return, time."""
SETTINGS = "expert.json"
"""The algorithm, seed and hyperparameters of the run, which a resumed run keeps."""
CURVE = "learning_curve.png"
"""The plot of :data:`PROGRESS`."""
_FIELDS = ("step", "train_return", "eval_return", "eval_std", "elapsed_s", "steps_per_s")


def _save_replay(buffer: Any, path: Path) -> None:
    """Write an SB3 ``ReplayBuffer``'s filled part to ``path`` as plain arrays (atomically)."""
    size = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {
        name: getattr(buffer, name)[:size]
        for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
        if getattr(buffer, name, None) is not None
    }
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, pos=buffer.pos, full=buffer.full, **arrays)
    os.replace(tmp, path)


def _load_replay(buffer: Any, path: Path) -> None:
    """Fill an SB3 ``ReplayBuffer`` from :func:`_save_replay`'s file."""
    with np.load(path) as saved:
        for name in saved.files:
            if name not in ("pos", "full"):
                getattr(buffer, name)[: len(saved[name])] = saved[name]
        buffer.pos, buffer.full = int(saved["pos"]), bool(saved["full"])


def plot_progress(run_dir: str | os.PathLike, title: str = "") -> Path:
    """Plot a run's :data:`PROGRESS` (training and evaluation return vs env steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_progress(run_dir)
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [r["train_return"] for r in rows], label="training episodes (stochastic)")
    mean = np.array([r["eval_return"] for r in rows])
    std = np.array([r["eval_std"] for r in rows])
    ax.plot(steps, mean, label="evaluation (deterministic, seeded)")
    ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set(xlabel="env steps", ylabel="episode return", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = run_dir / CURVE
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def read_progress(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a run's :data:`PROGRESS` (empty before its first checkpoint)."""
    path = Path(run_dir) / PROGRESS
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _checkpointer(
    task: Task, algo: str, run_dir: Path, every: int, eval_episodes: int, seed: int
) -> Any:
    """An SB3 callback that every ``every`` env steps saves the model, its replay buffer and a
    progress row (with ``eval_episodes`` seeded deterministic episodes), and redraws the plot."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpointer(BaseCallback):
        def _on_training_start(self) -> None:
            self.env = task.make_env()
            rows = read_progress(run_dir)
            self.last = int(rows[-1]["step"]) if rows else 0  # step of the last checkpoint
            self.elapsed = rows[-1]["elapsed_s"] if rows else 0.0  # before this process
            self.start, self.start_step = time.monotonic(), self.num_timesteps

        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0:
                self.save()
            return True

        def _on_training_end(self) -> None:
            if self.last < self.num_timesteps:
                self.save()
            self.env.close()

        def save(self) -> None:
            model, self.last = self.model, self.num_timesteps
            model.save(run_dir / "checkpoint.tmp.zip")
            buffer = getattr(model, "replay_buffer", None)
            if buffer is not None:
                _save_replay(buffer, run_dir / REPLAY)
            os.replace(run_dir / "checkpoint.tmp.zip", run_dir / CHECKPOINT)
            result = evaluate(SB3Actor(model, algo), self.env, eval_episodes, seed + 10_000)
            seconds = time.monotonic() - self.start
            infos = [info["r"] for info in model.ep_info_buffer or []]
            nan = float("nan")
            row = {
                "step": self.num_timesteps,
                "train_return": float(np.mean(infos)) if infos else nan,
                "eval_return": result.mean if eval_episodes else nan,
                "eval_std": result.std if eval_episodes else nan,
                "elapsed_s": self.elapsed + seconds,
                "steps_per_s": (self.num_timesteps - self.start_step) / max(seconds, 1e-9),
            }
            path = run_dir / PROGRESS
            new = not path.is_file()
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=_FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow(row)
            plot_progress(run_dir, f"{algo.upper()} on {task.name}")

    return Checkpointer()


def train_expert(
    task: Task,
    algo: str | None = None,
    steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    tensorboard_log: str | os.PathLike | None = None,
    hyperparams: dict[str, Any] | None = None,
    run_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 10_000,
    eval_episodes: int = 10,
) -> BaseAlgorithm:
    """Train a stable-baselines3 expert on ``task``, resumably when given a ``run_dir``.

    Args:
        task: the task; its ``expert_algo``/``expert_steps`` are the defaults.
        algo: ``ppo``, ``sac``, ``td3`` or ``tqc`` (``None``: the task's default).
        steps: total env steps of training (``None``: the task's default).
        seed: seed of the agent and its env.
        device: torch device of the agent.
        progress: show SB3's progress bar.
        tensorboard_log: folder for SB3's TensorBoard curves (``None``: none).
        hyperparams: keyword arguments of the algorithm (e.g. ``{"gamma": 0.98}``; ``None``:
            its defaults).
        run_dir: folder of :data:`CHECKPOINT`, :data:`REPLAY`, :data:`PROGRESS` and
            :data:`CURVE`. If it holds a checkpoint, training resumes from it (the algorithm
            and hyperparameters of :data:`SETTINGS`) up to ``steps`` in all; the replay buffer
            and optimizers are restored, random streams are not.
        checkpoint_every: env steps between checkpoints (with ``run_dir``).
        eval_episodes: seeded deterministic episodes (seeds from ``seed + 10000``) evaluated at
            each checkpoint (0: none).

    Returns:
        The trained SB3 model (``model.save(path)`` writes its zip).

    Raises:
        ConfigError: a budget < 1, a bad hyperparameter, or a resumed run's other algorithm.
    """
    name = (algo or task.expert_algo).lower()
    cls = algorithm_class(name)
    steps = task.expert_steps if steps is None else steps
    if steps < 1 or checkpoint_every < 1:
        raise ConfigError(
            f"steps={steps!r}, checkpoint_every={checkpoint_every!r}; expected >= 1 env step"
        )
    run = None if run_dir is None else Path(run_dir)
    params = dict(hyperparams or {})
    if run is not None and (run / CHECKPOINT).is_file():
        saved = json.loads((run / SETTINGS).read_text())
        if algo is not None and saved["algo"] != name:
            raise ConfigError(
                f"{str(run)!r} holds a {saved['algo']} run; resume it without --algo or "
                f"with --algo {saved['algo']}, or give another run directory"
            )
        name = saved["algo"]
        model, _ = load_sb3_model(
            run / CHECKPOINT, task, name, device, task.make_env(), saved["hyperparams"]
        )
        if (run / REPLAY).is_file():
            _load_replay(model.replay_buffer, run / REPLAY)
        print(f"resuming {name} at step {model.num_timesteps} of {steps} from {run}")
    else:
        try:
            model = cls(
                "MlpPolicy",
                task.make_env(),
                seed=seed,
                device=device,
                verbose=0,
                tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
                **params,
            )
        except TypeError as err:
            raise ConfigError(f"hyperparameters {hyperparams}: {err}") from None
        if run is not None:
            run.mkdir(parents=True, exist_ok=True)
            settings = {"algo": name, "seed": seed, "hyperparams": params}
            (run / SETTINGS).write_text(json.dumps(settings, indent=2))
    callback = (
        None
        if run is None
        else _checkpointer(task, name, run, checkpoint_every, eval_episodes, seed)
    )
    remaining = steps - model.num_timesteps
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            progress_bar=progress,
            reset_num_timesteps=model.num_timesteps == 0,
            callback=callback,
        )
    return model


def collect_dataset(
    actor: Actor,
    task: Task,
    dataset_id: str,
    episodes: int,
    seed: int = 0,
    noise_std: float = 0.0,
    algorithm_name: str = "expert",
    progress: bool = True,
) -> list[Episode]:
    """Roll ``actor`` out in ``task`` and store the episodes as a new local Minari dataset.

    Args:
        actor: the expert (e.g. from :func:`~learned_control.actors.load_actor`).
        task: the task to act in.
        dataset_id: id of the new dataset (must not exist).
        episodes: number of episodes, reset seeds ``seed, seed+1, ...``.
        seed: first reset seed; also seeds the action noise.
        noise_std: Gaussian action noise as a fraction of the action half-range (0: none);
            the noisy action is the one applied and recorded.
        algorithm_name: stored in the dataset metadata.
        progress: show a progress bar.

    An id of :data:`~learned_control.data.minari_io.PUBLIC_DATASETS` (e.g.
    ``mujoco/pusher/expert-v0``) makes a local stand-in for that public dataset: the env must
    match its spec, and the metadata says that the dataset is locally made (author, description
    and ``locally_made: true``), so that ``minari.load_dataset(id)`` finds it offline.

    Returns:
        The recorded episodes.

    Raises:
        DatasetError: if ``dataset_id`` is malformed or exists, or is a public id whose env
            ``task`` does not match (checked before any rollout).
    """
    check_new_dataset_id(dataset_id)  # fail before spending time on rollouts
    env = task.make_env()
    public = check_stand_in(dataset_id, env)
    if noise_std > 0:
        actor = NoisyActor(actor, task.action_low, task.action_high, noise_std, seed)
    recorded = rollout_episodes(actor, env, episodes, seed, progress)
    description = (
        f"{episodes} episodes of {algorithm_name} on {task.name}, action noise std "
        f"{noise_std} x half-range, reset seeds from {seed}"
    )
    if public is not None:
        description = (
            f"Locally made by learned_control (not the Minari server's copy): {description}. "
            f"It matches the public dataset's env spec, spaces and episode length. "
            f"{public.describe()}"
        )
    save_episodes(
        dataset_id,
        recorded,
        env,
        algorithm_name=algorithm_name,
        author="learned_control (locally made)" if public else "learned_control",
        description=description,
        extra_metadata=None
        if public is None
        else {"locally_made": True, "public_dataset": asdict(public)},
    )
    env.close()
    return recorded
