"""``learned-control expert``: train a stable-baselines3 expert and save its zip."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..actors import SB3Actor
from ..evaluation import evaluate
from ..training.experts import CURVE, SETTINGS, train_expert
from ..utils import configure_torch, new_run_dir, resolve_device
from .common import (
    add_expert_args,
    add_runtime_args,
    add_task_arg,
    json_object_arg,
    task_from_args,
)

__all__ = ["add_arguments", "run"]


HELP = "train a stable-baselines3 expert (PPO/SAC/TD3/TQC) for a task"

DESCRIPTION = """Train a stable-baselines3 expert (the algorithm's default hyperparameters unless
--hyperparams) and save it as RUN_DIR/expert.zip (TensorBoard curves in RUN_DIR/tensorboard).
Every --checkpoint-every steps RUN_DIR gets checkpoint.zip and replay.npz (the run's state),
progress.csv (training and seeded evaluation returns) and learning_curve.png; running again with
the same --run-dir resumes from the checkpoint up to --steps in all."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arg(parser)
    add_expert_args(parser, "--steps", example=True)
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=5,
        help="seeded episodes to evaluate the trained expert (0: skip; default: %(default)s)",
    )
    parser.add_argument(
        "--hyperparams",
        type=json_object_arg,
        default=None,
        metavar="JSON",
        help="keyword arguments of the algorithm as a JSON object, e.g. "
        '\'{"gamma": 0.98, "learning_starts": 10000}\' (default: its defaults; a resumed '
        "run keeps its own)",
    )
    parser.add_argument(
        "--run-dir",
        default=None,
        help="this run's folder; if it holds a checkpoint, training resumes from it "
        "(default: a new folder under --runs-dir)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=10_000,
        help="env steps between checkpoints, progress rows and plot updates (default: %(default)s)",
    )
    add_runtime_args(parser)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    task = task_from_args(args)
    run_dir = Path(args.run_dir) if args.run_dir else new_run_dir(args.runs_dir, "expert")
    print(f"run directory: {run_dir}")
    model = train_expert(
        task,
        args.algo,
        args.steps,
        args.seed,
        str(resolve_device(args.device)),
        progress=True,
        tensorboard_log=run_dir / "tensorboard",
        hyperparams=args.hyperparams,
        run_dir=run_dir,
        checkpoint_every=args.checkpoint_every,
    )
    path = run_dir / "expert.zip"
    model.save(path)
    print(f"expert: {path}\nlearning curve: {run_dir / CURVE}")
    if args.eval_episodes > 0:
        result = evaluate(
            SB3Actor(model, json.loads((run_dir / SETTINGS).read_text())["algo"]),
            task.make_env(),
            args.eval_episodes,
            args.seed,
            progress=True,
        )
        print(
            f"expert return: {result.mean:.2f} +- {result.std:.2f} over "
            f"{args.eval_episodes} episodes"
        )
    return 0
