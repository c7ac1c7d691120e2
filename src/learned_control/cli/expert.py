"""``learned-control expert``: train a stable-baselines3 expert and save its zip."""

from __future__ import annotations

import argparse

from ..actors import SB3Actor
from ..evaluation import evaluate
from ..training.experts import train_expert
from ..utils import configure_torch, new_run_dir, resolve_device
from .common import add_expert_args, add_runtime_args, add_task_arg, task_from_args

__all__ = ["add_arguments", "run"]


HELP = "train a stable-baselines3 expert (PPO/SAC/TD3/TQC) for a task"

DESCRIPTION = """Train a stable-baselines3 expert with the algorithm's default hyperparameters and
save it as RUN_DIR/expert.zip (TensorBoard curves in RUN_DIR/tensorboard)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arg(parser)
    add_expert_args(parser, "--steps", example=True)
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=5,
        help="seeded episodes to evaluate the trained expert (0: skip; default: %(default)s)",
    )
    add_runtime_args(parser)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    task = task_from_args(args)
    run_dir = new_run_dir(args.runs_dir, "expert")
    print(f"run directory: {run_dir}")
    model = train_expert(
        task,
        args.algo,
        args.steps,
        args.seed,
        str(resolve_device(args.device)),
        progress=True,
        tensorboard_log=run_dir / "tensorboard",
    )
    path = run_dir / "expert.zip"
    model.save(path)
    print(f"expert: {path}")
    if args.eval_episodes > 0:
        result = evaluate(
            SB3Actor(model, args.algo or task.expert_algo),
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
