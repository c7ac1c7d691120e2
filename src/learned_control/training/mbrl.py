"""The model-based (PETS-style) loop's core, without ROS: the initial random data, the result of an
iteration, and the saved return curve.

``learned_control.ros.mbrl_loop`` runs the loop through the node graph: the controller plans with
the current ensemble, the recorder writes each iteration's episodes into a new bag, the learner
refits on every bag so far and the controller hot-swaps the new checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..actors import RandomActor
from ..data.bags import write_bag
from ..data.episodes import Episode
from ..data.minari_io import rollout_episodes
from ..data.robot_bags import episodes_to_bag
from ..errors import ConfigError
from ..evaluation import EvalResult
from ..specs import RobotSpecs
from ..tasks import Task

__all__ = ["IterationResult", "random_episodes", "write_random_bag", "save_curve"]


@dataclass
class IterationResult:
    """One iteration of a loop through ROS (iteration 0: the initial data, random-policy
    episodes or, for DAgger, the expert's).

    Attributes:
        iteration: 0 for the initial random data, then 1, 2, ...
        model: the checkpoint the controller ran (as its diagnostics name it, ``""`` for random).
        trained_on: transitions the model was trained on (0 at iteration 0).
        episodes: the episodes' returns, lengths (steps) and reset seeds.
        bag: the bag holding the episodes.
        wall_s: wall time of the iteration's episodes and the refit after them (none after the
            last), s; 0 for the random data.
    """

    iteration: int
    model: str
    trained_on: int
    episodes: EvalResult
    bag: str
    wall_s: float


def random_episodes(task: Task, max_steps: int, seed: int) -> list[Episode]:
    """Whole uniform-random-policy episodes (reset seeds ``seed, seed + 1, ...``) holding at most
    ``max_steps`` transitions in all; the episode that would pass the budget is left out.

    Raises:
        ConfigError: ``max_steps`` below one episode's length.
    """
    env = task.make_env()
    actor = RandomActor(task.action_low, task.action_high, seed)
    episodes: list[Episode] = []
    total = 0
    while True:
        episode = rollout_episodes(actor, env, 1, seed + len(episodes), progress=False)[0]
        if total + len(episode) > max_steps:
            break
        episodes.append(episode)
        total += len(episode)
    env.close()
    if not episodes:
        raise ConfigError(
            f"initial_random_steps={max_steps} is shorter than the first random "
            f"episode ({len(episode)} steps)"
        )
    return episodes


def write_random_bag(
    task: Task,
    max_steps: int,
    seed: int,
    path: str | os.PathLike,
    specs: RobotSpecs | None = None,
) -> IterationResult:
    """:func:`random_episodes` written as a bag at ``path`` (mcap, as the recorder writes); with
    ``specs`` as a robot's bag (:func:`~learned_control.data.robot_bags.episodes_to_bag`: the
    spec's source and command topics)."""
    episodes = random_episodes(task, max_steps, seed)
    if specs is None:
        write_bag(path, episodes, storage="mcap")
    else:
        episodes_to_bag(path, episodes, task, specs)
    result = EvalResult(
        returns=[float(e.episode_return) for e in episodes],
        lengths=[len(e) for e in episodes],
        successes=[None] * len(episodes),
        seeds=[seed + i for i in range(len(episodes))],  # as random_episodes reset them
    )
    return IterationResult(0, "", 0, result, str(path), 0.0)


def save_curve(
    results: list[IterationResult],
    out_dir: str | os.PathLike,
    task: str,
    title: str = "model-based loop through ROS",
    first: str = "random policy",
) -> tuple[Path, Path]:
    """``returns.json`` (every iteration's fields plus mean/std) and ``returns.png`` (mean +- std
    of the episode returns per iteration; iteration 0 is ``first``) in ``out_dir``; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{**asdict(r), "mean": r.episodes.mean, "std": r.episodes.std} for r in results]
    json_path = out / "returns.json"
    json_path.write_text(json.dumps({"task": task, "iterations": rows}, indent=2))
    x = [r.iteration for r in results]
    mean = np.array([r.episodes.mean for r in results])
    std = np.array([r.episodes.std for r in results])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(x, mean, yerr=std, marker="o", capsize=4)
    ax.set(
        xlabel=f"iteration (0: {first})",
        ylabel="episode return (mean +- std)",
        title=f"{task}: {title}",
        xticks=x,
    )
    fig.tight_layout()
    png_path = out / "returns.png"
    fig.savefig(png_path)
    plt.close(fig)
    return json_path, png_path
