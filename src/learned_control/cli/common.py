"""Argument groups shared by several subcommands, so each flag is defined once."""

from __future__ import annotations

import argparse
import json
from typing import Any, Literal

from ..actors import ALGORITHMS
from ..data.episodes import Transitions
from ..data.sources import load_transitions
from ..errors import ConfigError
from ..models.mlp import ACTIVATIONS
from ..tasks import Task, get_task, parse_env_kwargs
from ..training.bc import BCConfig
from ..training.dynamics import DynamicsTrainConfig

__all__ = [
    "add_task_arg",
    "task_from_args",
    "add_seed_arg",
    "add_runtime_args",
    "add_source_args",
    "load_source",
    "add_expert_args",
    "add_activation_arg",
    "add_network_args",
    "add_config_args",
    "add_training_args",
    "add_bc_args",
    "add_loop_args",
    "env_kwargs_arg",
    "json_object_arg",
]


def env_kwargs_arg(text: str) -> dict[str, Any]:
    """``--env-kwargs``: a JSON object (argparse reports anything else as a usage error)."""
    try:
        return parse_env_kwargs(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def json_object_arg(text: str) -> dict[str, Any]:
    """A flag holding a JSON object (argparse reports anything else as a usage error)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a JSON object, e.g. '{{\"a\": 1}}'")
    return value


def add_task_arg(
    parser: argparse.ArgumentParser, default: str | None = "InvertedPendulum-v5"
) -> None:
    """The ``task`` group: ``--task`` (a registered task or any Gymnasium id; required when
    ``default`` is None) and ``--env-kwargs`` (a JSON object for ``gym.make``). Both are checked
    by :func:`task_from_args`."""
    group = parser.add_argument_group("task")
    group.add_argument(
        "--task",
        default=default,
        required=default is None,
        metavar="ID",
        help="a registered task, any Gymnasium id (e.g. Swimmer-v5, FetchPush-v4) or "
        "module:EnvId of your own package (default: %(default)s)",
    )
    group.add_argument(
        "--env-kwargs",
        type=env_kwargs_arg,
        default=None,
        metavar="JSON",
        help="keyword arguments for gym.make as a JSON object, e.g. '{\"reset_noise_scale\": 0.2}'",
    )


def task_from_args(args: argparse.Namespace) -> Task:
    """The :class:`Task` of ``--task`` and ``--env-kwargs`` (ConfigError for an unknown id)."""
    return get_task(args.task, args.env_kwargs)


def add_seed_arg(parser: argparse.ArgumentParser) -> None:
    """``--seed`` (default 0)."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """``--seed``, ``--device``, ``--torch-threads``, ``--runs-dir``."""
    add_seed_arg(parser)
    parser.add_argument(
        "--device", default="auto", help="torch device: auto, cpu, cuda (default: %(default)s)"
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice)",
    )
    parser.add_argument(
        "--runs-dir",
        default="runs",
        help="folder under which each run gets its own directory (default: %(default)s)",
    )


def add_source_args(parser: argparse.ArgumentParser) -> None:
    """``--dataset MINARI_ID`` | ``--bag PATH`` (one required) and ``--download``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="MINARI_ID", help="Minari dataset id")
    source.add_argument("--bag", metavar="PATH", help="rosbag2 bag folder recorded by the recorder")
    parser.add_argument(
        "--download",
        action="store_true",
        help="fetch --dataset from the Minari server when it is not local",
    )


def load_source(args: argparse.Namespace, task: Task) -> tuple[Transitions, dict[str, str]]:
    """The transitions of ``--dataset`` or ``--bag`` for ``task``, and the checkpoint metadata
    that names their source."""
    source = args.dataset or args.bag
    kind: Literal["minari", "bag"] = "minari" if args.dataset else "bag"
    return load_transitions(source, task, kind, args.download), {
        "source": source,
        "source_kind": kind,
    }


def add_expert_args(
    parser: argparse.ArgumentParser, steps_flag: str, what: str = "", example: bool = False
) -> None:
    """``--algo`` and ``steps_flag`` (env steps): a stable-baselines3 expert's algorithm and
    training budget, both the task's by default. ``what`` starts each help; ``example`` adds
    InvertedPendulum-v5's values."""
    algo_eg, steps_eg = (
        (", e.g. ppo for InvertedPendulum-v5", ", e.g. 30000 for InvertedPendulum-v5")
        if example
        else ("", "")
    )
    parser.add_argument(
        "--algo",
        choices=sorted(ALGORITHMS),
        default=None,
        help=f"{what}algorithm (default: the task's{algo_eg})",
    )
    parser.add_argument(
        steps_flag,
        type=int,
        default=None,
        help=f"{what}training budget in env steps (default: the task's{steps_eg})",
    )


def add_activation_arg(parser: argparse.ArgumentParser, default: str) -> None:
    """``--activation``, one of :data:`~learned_control.models.mlp.ACTIVATIONS`."""
    parser.add_argument(
        "--activation",
        choices=sorted(ACTIVATIONS),
        default=default,
        help="hidden activation (default: %(default)s)",
    )


def add_network_args(
    parser: argparse.ArgumentParser, hid_size: int, num_layers: int, prefix: str = ""
) -> None:
    """``--hid-size`` and ``--num-layers`` with these defaults; ``prefix`` starts each help."""
    parser.add_argument(
        "--hid-size",
        type=int,
        default=hid_size,
        help=f"{prefix}hidden width (default: %(default)s)",
    )
    parser.add_argument(
        "--num-layers",
        type=int,
        default=num_layers,
        help=f"{prefix}hidden layers (default: %(default)s)",
    )


_TRAINING_HELP: dict[str, str] = {
    "epochs": "passes over the training split",
    "batch_size": "samples per minibatch; an ensemble draws one per member",
    "lr": "Adam learning rate",
    "weight_decay": "Adam weight decay",
    "val_fraction": "share of samples held out for validation",
    "patience": "early-stopping patience in epochs, 0 = off",
    "rollout_steps": "k of the k-step open-loop validation error",
}
"""Trainer field -> help of its flag (:func:`add_training_args`)."""


def add_config_args(parser: argparse.ArgumentParser, config: type, helps: dict[str, str]) -> None:
    """``--<name>`` (``_`` as ``-``) for each ``name`` of ``helps``, in its order, typed and
    defaulted by the field's default in the dataclass ``config``; ``helps[name]`` is its help."""
    for name, text in helps.items():
        default = getattr(config, name)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(default),
            default=default,
            help=f"{text} (default: %(default)s)",
        )


def add_training_args(
    parser: argparse.ArgumentParser, config: type[BCConfig] | type[DynamicsTrainConfig]
) -> None:
    """The trainer flags of ``config``'s fields: ``--epochs``, ``--batch-size``, ``--lr``,
    ``--val-fraction``; for dynamics also ``--weight-decay``, ``--patience``,
    ``--rollout-steps``."""
    add_config_args(
        parser,
        config,
        {name: text for name, text in _TRAINING_HELP.items() if hasattr(config, name)},
    )


def add_bc_args(parser: argparse.ArgumentParser) -> None:
    """The BC flags: :class:`BCConfig`'s training flags and an MLP of 64 x 2, ReLU."""
    add_training_args(parser, BCConfig)
    add_network_args(parser, hid_size=64, num_layers=2)
    add_activation_arg(parser, "relu")


def add_loop_args(
    parser: argparse.ArgumentParser, iterations: str, epochs: int, run_name: str
) -> None:
    """The flags every learning loop through ROS takes: ``--iterations`` (help ``iterations``),
    ``--episodes``, ``--seed``, the learner's ``--epochs`` (default ``epochs``), ``--hid-size``,
    ``--num-layers``, ``--torch-threads``, ``--timeout``, ``--out`` (default a new
    ``runs/<run_name>-<timestamp>``), ``--spec`` and ``--mode``."""
    parser.add_argument(
        "--iterations", type=int, default=3, help=f"{iterations} (default: %(default)s)"
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=2,
        help="episodes per iteration (default: %(default)s)",
    )
    add_seed_arg(parser)
    parser.add_argument(
        "--epochs",
        type=int,
        default=epochs,
        help="learner: (maximum) epochs per training job (default: %(default)s)",
    )
    add_network_args(parser, hid_size=64, num_layers=2, prefix="learner: ")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads of the controller and the learner (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds allowed for each wait (default: %(default)s)",
    )
    parser.add_argument(
        "--out", default=None, help=f"run directory (default: a new runs/{run_name}-<timestamp>)"
    )
    parser.add_argument(
        "--spec",
        default=None,
        metavar="FILE",
        help="robot spec YAML (learned-control export-spec): run on the robot's own topics, the "
        "bridge as its ros2_control driver, the controller in robot mode, the learner "
        "converting the bags with the spec (default: the bridge's observation topic)",
    )
    parser.add_argument(
        "--mode",
        choices=("lockstep", "realtime"),
        default="lockstep",
        help="bridge and controller mode; realtime needs --spec (default: %(default)s)",
    )
