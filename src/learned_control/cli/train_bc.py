"""``learned-control train-bc``: behavior cloning from a Minari dataset or a rosbag2 bag."""

from __future__ import annotations

import argparse

from ..models.policy_classes import POLICY_CLASSES
from ..training.bc import BCConfig, policy_for, train_bc_run
from ..utils import config_from, configure_torch, new_run_dir, resolve_device, seed_everything
from .common import (
    add_bc_args,
    add_runtime_args,
    add_source_args,
    add_task_arg,
    load_source,
    task_from_args,
)

__all__ = ["add_arguments", "run"]


HELP = "train a behavior-cloning policy (class chosen by --policy)"

DESCRIPTION = """Behavior cloning: fit a policy of the class chosen by --policy (mse: an MLP trained
by MSE; gaussian, mixture, cvae, discrete, diffusion: multimodal classes, optionally predicting
action chunks) to a Minari dataset or a rosbag2 bag, by its own loss with Adam on normalized inputs
and targets. Writes RUN_DIR/policy.pt, RUN_DIR/loss_curve.png and TensorBoard scalars in
RUN_DIR/tensorboard."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_args(parser)
    add_task_arg(parser)
    parser.add_argument(
        "--policy",
        choices=sorted(POLICY_CLASSES),
        default="mse",
        help="policy class: mse (deterministic MLP) or a multimodal class (default: %(default)s)",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=1,
        help="actions predicted per call H, trained on the next H actions of "
        "each episode; H > 1 needs a class other than mse "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--execute-steps",
        type=int,
        default=1,
        help="actions of each chunk executed before predicting again, in "
        "[1, --chunk-size] (default: %(default)s)",
    )
    add_bc_args(parser)
    add_runtime_args(parser)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    config = config_from(BCConfig, args)  # validate flags before loading data
    task = task_from_args(args)
    seed_everything(args.seed)  # the initial weights
    policy = policy_for(
        task,
        args.policy,
        args.hid_size,
        args.num_layers,
        args.activation,
        args.chunk_size,
        args.execute_steps,
        args.seed,
    )
    transitions, metadata = load_source(args, task)
    run_dir = new_run_dir(args.runs_dir, "train-bc")
    print(f"run directory: {run_dir}")
    result, path = train_bc_run(
        policy,
        transitions,
        task,
        config,
        run_dir,
        resolve_device(args.device),
        metadata=metadata,
    )
    val = "n/a" if not result.val_losses else f"{result.val_losses[-1]:.4g}"
    print(
        f"final loss: train {result.train_losses[-1]:.4g}, validation {val} "
        f"({result.train_size} training samples, {result.samples_per_second:.0f} samples/s)"
    )
    print(f"policy: {path}")
    return 0
