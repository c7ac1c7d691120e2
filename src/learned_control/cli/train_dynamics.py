"""``learned-control train-dynamics``: fit a dynamics ensemble to a Minari dataset or a bag."""

from __future__ import annotations

import argparse

from ..data.sources import load_transitions
from ..models.dynamics import EnsembleDynamics
from ..training.dynamics import DynamicsTrainConfig, train_dynamics_run
from ..utils import configure_torch, new_run_dir, resolve_device, seed_everything
from .common import (
    add_activation_arg,
    add_network_args,
    add_runtime_args,
    add_source_args,
    add_task_arg,
    source_from_args,
    task_from_args,
)

__all__ = ["register", "run"]


DESCRIPTION = """Fit an ensemble of MLP dynamics models s' = s + f(s, a) (deterministic: MSE,
probabilistic: Gaussian NLL; bootstrap minibatches per member) to a Minari dataset or a rosbag2 bag.
Writes RUN_DIR/dynamics.pt, RUN_DIR/curves.png, RUN_DIR/history.json and TensorBoard scalars in
RUN_DIR/tensorboard."""


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = DynamicsTrainConfig()
    parser = subparsers.add_parser(
        "train-dynamics", help="train a dynamics ensemble (for CEM-MPC)", description=DESCRIPTION
    )
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
        "--epochs", type=int, default=defaults.epochs, help="(default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="minibatch per member (default: %(default)s)",
    )
    parser.add_argument(
        "--lr", type=float, default=defaults.lr, help="Adam lr (default: %(default)s)"
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=defaults.weight_decay,
        help="Adam weight decay (default: %(default)s)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share held out for validation (default: %(default)s)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=defaults.patience,
        help="early-stopping patience in epochs, 0 = off (default: %(default)s)",
    )
    parser.add_argument(
        "--rollout-steps",
        type=int,
        default=defaults.rollout_steps,
        help="k of the k-step open-loop validation error (default: %(default)s)",
    )
    parser.add_argument(
        "--no-bootstrap", action="store_true", help="train every member on the whole training split"
    )
    add_runtime_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    config = DynamicsTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        val_fraction=args.val_fraction,
        patience=args.patience,
        rollout_steps=args.rollout_steps,
        bootstrap=not args.no_bootstrap,
    )
    task = task_from_args(args)
    source, kind = source_from_args(args)
    transitions = load_transitions(source, task, kind, args.download)
    seed_everything(args.seed)
    model = EnsembleDynamics(
        task.obs_dim,
        task.act_dim,
        args.members,
        args.hid_size,
        args.num_layers,
        args.activation,
        args.probabilistic,
    )
    model.to(resolve_device(args.device))
    run_dir = new_run_dir(args.runs_dir, "train-dynamics")
    print(f"run directory: {run_dir}")
    history, path = train_dynamics_run(
        model,
        transitions,
        task,
        config,
        run_dir,
        args.seed,
        progress=True,
        metadata={"source": source, "source_kind": kind},
    )
    print(
        f"best epoch {history.best_epoch}: validation one-step MSE "
        f"{history.val_one_step_mse[history.best_epoch]:.4g}, {config.rollout_steps}-step "
        f"MSE {history.val_rollout_mse[history.best_epoch]:.4g}"
    )
    print(f"dynamics: {path}")
    return 0
