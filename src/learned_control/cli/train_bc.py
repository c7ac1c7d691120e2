"""``learned-control train-bc``: behavior cloning from a Minari dataset or a rosbag2 bag."""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..checkpoint import export_seed_format
from ..errors import ConfigError
from ..models.policy_classes import POLICY_CLASSES, PRESETS, Preset
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

DESCRIPTION = (
    """Behavior cloning: fit a policy of the class chosen by --policy (mse: an MLP trained
by MSE; gaussian, mixture, cvae, discrete, diffusion: multimodal classes, optionally predicting
action chunks) to a Minari dataset or a rosbag2 bag, by its own loss with Adam on normalized inputs
and targets. Writes RUN_DIR/policy.pt, RUN_DIR/loss_curve.png and TensorBoard scalars in
RUN_DIR/tensorboard.

--preset NAME takes the network, chunk and training settings of the class chosen by --policy
from a preset table; flags given on the command line win. multimodal (the multimodal benchmark's
settings, bench/multimodal.py): """
    + "; ".join(f"{name} {p.describe()}" for name, p in PRESETS["multimodal"].items())
    + "."
)

_PRESET_FLAGS = tuple(f.name for f in fields(Preset) if f.name != "options")
"""Flags a preset sets (their dests), unless given on the command line."""


class _DefaultInt(int):
    """An int flag's default, told apart from the same value given on the command line."""


class _DefaultFloat(float):
    """A float flag's default, told apart from the same value given on the command line."""


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
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="the settings of --policy from this preset table (see above): "
        + ", ".join(f"--{name.replace('_', '-')}" for name in _PRESET_FLAGS)
        + "; explicit flags win (default: none, the defaults shown)",
    )
    parser.set_defaults(
        **{
            name: (_DefaultInt if isinstance(value, int) else _DefaultFloat)(value)
            for name in _PRESET_FLAGS
            if (value := parser.get_default(name)) is not None
        }
    )
    parser.add_argument(
        "--export-seed-format",
        default=None,
        metavar="PATH",
        help="also write the trained policy to PATH as the seed-format saved dict (net "
        "state_dict, hid_size, num_layers, X_mean, X_std, Y_mean, Y_std; needs --policy mse "
        "--activation relu)",
    )
    add_runtime_args(parser)


def apply_preset(args: argparse.Namespace) -> dict:
    """Set each flag of ``args`` that a preset sets and the command line left at its default
    to ``args.preset``'s value for ``args.policy`` (without a preset, to the default as a plain
    ``int``/``float``: the values go into checkpoints, which hold plain data only); returns the
    preset's class options (``{}`` without a preset)."""
    preset = PRESETS[args.preset][args.policy] if args.preset is not None else None
    for name in _PRESET_FLAGS:
        value = getattr(args, name)
        if isinstance(value, (_DefaultInt, _DefaultFloat)):
            plain = int(value) if isinstance(value, int) else float(value)
            setattr(args, name, plain if preset is None else getattr(preset, name))
    return {} if preset is None else dict(preset.options)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    options = apply_preset(args)
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
        **options,
    )
    if args.export_seed_format and (args.policy != "mse" or args.activation != "relu"):
        raise ConfigError(
            f"--export-seed-format needs --policy mse --activation relu (the seed format is a "
            f"ReLU MLP); got --policy {args.policy} --activation {args.activation}"
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
    if args.export_seed_format:
        print(f"seed-format policy: {export_seed_format(policy, args.export_seed_format)}")
    return 0
