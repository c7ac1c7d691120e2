"""``learned-control train-dynamics``: fit a dynamics ensemble to a Minari dataset or a bag."""

from __future__ import annotations

import argparse

from ..models.dynamics import EnsembleDynamics
from ..planning.rewards import REWARDS
from ..training.dynamics import (
    REWARD_HEADS,
    DynamicsTrainConfig,
    train_dynamics_run,
    wants_reward_heads,
)
from ..utils import config_from, configure_torch, new_run_dir, resolve_device, seed_everything
from .common import (
    add_activation_arg,
    add_network_args,
    add_runtime_args,
    add_source_args,
    add_task_arg,
    add_training_args,
    load_source,
    task_from_args,
)

__all__ = ["add_arguments", "run"]


HELP = "train a dynamics ensemble (for CEM-MPC)"

DESCRIPTION = """Fit an ensemble of MLP dynamics models s' = s + f(s, a) (deterministic: MSE,
probabilistic: Gaussian NLL; bootstrap minibatches per member) to a Minari dataset or a rosbag2 bag,
optionally with reward and termination heads (the planner scores plans with them for a task
without a torch reward in planning.rewards). Writes RUN_DIR/dynamics.pt, RUN_DIR/curves.png,
RUN_DIR/history.json and TensorBoard scalars in RUN_DIR/tensorboard."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_args(parser)
    add_task_arg(parser)
    parser.add_argument(
        "--members", type=int, default=5, help="ensemble size (default: %(default)s)"
    )
    add_network_args(parser, hid_size=200, num_layers=3)
    add_activation_arg(parser, "silu")
    parser.add_argument(
        "--probabilistic",
        action="store_true",
        help="predict mean and log-std of the delta (Gaussian NLL)",
    )
    parser.add_argument(
        "--reward-heads",
        choices=REWARD_HEADS,
        default="auto",
        help="also learn the reward and the termination of each step (MSE, positive-weighted "
        "BCE), which the CEM planner uses for a task without a torch reward; auto: on exactly "
        f"for such a task (any but {', '.join(sorted({n.split('/')[0] for n in REWARDS}))}) "
        "(default: %(default)s)",
    )
    add_training_args(parser, DynamicsTrainConfig)
    parser.add_argument(
        "--no-bootstrap", action="store_true", help="train every member on the whole training split"
    )
    add_runtime_args(parser)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    config = config_from(DynamicsTrainConfig, args, bootstrap=not args.no_bootstrap)
    task = task_from_args(args)
    transitions, metadata = load_source(args, task)
    seed_everything(args.seed)
    model = EnsembleDynamics(
        task.obs_dim,
        task.act_dim,
        args.members,
        args.hid_size,
        args.num_layers,
        args.activation,
        args.probabilistic,
        reward_heads=wants_reward_heads(args.reward_heads, task),
    )
    model.to(resolve_device(args.device))
    run_dir = new_run_dir(args.runs_dir, "train-dynamics")
    print(f"run directory: {run_dir}")
    if model.reward_heads:
        print("learning reward and termination heads")
    history, path = train_dynamics_run(
        model,
        transitions,
        task,
        config,
        run_dir,
        args.seed,
        progress=True,
        metadata=metadata,
    )
    print(
        f"best epoch {history.best_epoch}: validation one-step MSE "
        f"{history.val_one_step_mse[history.best_epoch]:.4g}, {config.rollout_steps}-step "
        f"MSE {history.val_rollout_mse[history.best_epoch]:.4g}"
    )
    if model.reward_heads:
        print(
            f"validation reward MSE {history.val_reward_mse[history.best_epoch]:.4g}, "
            f"termination error {history.val_termination_error[history.best_epoch]:.3f}"
        )
    print(f"dynamics: {path}")
    return 0
