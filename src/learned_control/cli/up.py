"""``learned-control up``: the node graph as separate processes, without ``ros2 launch``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ConfigError
from ..params import parameter_file, ros_string
from ..runtime.supervisor import ProcessSpec, supervise
from .common import add_task_arg, task_from_args

__all__ = ["add_arguments", "run", "graph_specs", "discovery_env", "DISCOVERY_RANGES"]

DISCOVERY_RANGES = {"localhost": "LOCALHOST", "subnet": "SUBNET"}
"""``--discovery`` choice -> ``ROS_AUTOMATIC_DISCOVERY_RANGE`` (ROS 2 Iron and later)."""


HELP = "run sim_bridge + controller (+ recorder) as supervised processes"

DESCRIPTION = """Start the nodes of launch/sim.launch.py as separate processes with the same
parameter file (--ros-args --params-file <task>.yaml, default.yaml for a task without its own)
and --task/--env-kwargs as parameters, stream their logs with node prefixes,
and stop all of them on Ctrl-C (SIGINT, then SIGTERM, then SIGKILL) or as soon as one dies (exit
code non-zero)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arg(parser)
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="policy checkpoint (.pt), or a dynamics checkpoint with --actor cem",
    )
    parser.add_argument(
        "--actor",
        choices=("policy", "cem"),
        default="policy",
        help="what computes the action: the policy, or the CEM-MPC planner over "
        "the dynamics checkpoint with the task's planner settings from the "
        "parameter file (default: %(default)s)",
    )
    parser.add_argument(
        "--expert",
        default="",
        help="DAgger labeller: an expert (policy .pt, SB3 .zip or cem:<dynamics "
        ".pt>) acting on every observation beside the actor; its action "
        "goes to expert_command, recorded with --record",
    )
    parser.add_argument(
        "--mode",
        choices=("lockstep", "realtime"),
        default="lockstep",
        help="bridge/controller mode (default: %(default)s)",
    )
    parser.add_argument("--record", default="", help="path of a new bag to record into")
    parser.add_argument(
        "--params-file",
        default=None,
        help="parameter file (default: the package's config/<task>.yaml)",
    )
    parser.add_argument(
        "--discovery",
        choices=tuple(DISCOVERY_RANGES),
        default="localhost",
        help="DDS discovery range of the nodes: this host only, or the subnet for drivers on "
        "another computer; a ROS_AUTOMATIC_DISCOVERY_RANGE already set in the environment "
        "is kept (default: %(default)s)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds each stop signal is given before escalating (default: %(default)s)",
    )


def graph_specs(
    task: str,
    checkpoint: str,
    mode: str,
    record: str,
    params_file: Path,
    actor: str = "policy",
    expert: str = "",
    discovery: str = "localhost",
    env_kwargs: str = "",
) -> list[ProcessSpec]:
    """The recorder (when ``record``), the controller and the bridge, in start order, each with
    the environment of :func:`discovery_env`; the controller and the bridge get ``task`` and
    ``env_kwargs`` (a JSON object string, empty: none) as parameters."""
    env = {"PYTHONUNBUFFERED": "1", **discovery_env(discovery)}

    def node(name: str, **params: str) -> ProcessSpec:
        argv = [
            sys.executable,
            "-m",
            f"learned_control.ros.{name}",
            "--ros-args",
            "--params-file",
            str(params_file),
        ]
        for key, value in params.items():
            argv += ["-p", f"{key}:={value}"]
        return ProcessSpec(name, argv, env)

    specs = [node("recorder", bag=record, mode=mode)] if record else []
    bridge = {"wait_for_recorder": "true"} if record else {}  # the bag starts at step 0
    labeller = {"expert": expert} if expert else {}
    task_params = {"task": task, **({"env_kwargs": ros_string(env_kwargs)} if env_kwargs else {})}
    return specs + [
        node(
            "controller", **task_params, checkpoint=checkpoint, mode=mode, actor=actor, **labeller
        ),
        node("sim_bridge", **task_params, mode=mode, **bridge),
    ]


def discovery_env(discovery: str) -> dict[str, str]:
    """``ROS_AUTOMATIC_DISCOVERY_RANGE`` for ``discovery`` (a key of :data:`DISCOVERY_RANGES`),
    or nothing when the environment already sets it (the user's choice stands)."""
    if discovery not in DISCOVERY_RANGES:
        raise ConfigError(f"unknown discovery range {discovery!r}; one of {list(DISCOVERY_RANGES)}")
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE"):
        return {}
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": DISCOVERY_RANGES[discovery]}


def run(args: argparse.Namespace) -> int:
    task = task_from_args(args)
    params = Path(args.params_file) if args.params_file else parameter_file(task.name)
    if not params.is_file():
        raise ConfigError(f"no parameter file {params}; pass --params-file")
    if not Path(args.checkpoint).is_file():
        raise ConfigError(f"no checkpoint file {args.checkpoint}")
    if args.record and Path(args.record).exists():
        raise ConfigError(f"bag path {args.record} already exists; give a new path")
    print(
        f"up: {task.name} ({args.mode}, actor {args.actor}) with {params}"
        + (f", recording into {args.record}" if args.record else "")
        + f", discovery {os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE') or args.discovery}",
        flush=True,
    )
    return supervise(
        graph_specs(
            task.name,
            args.checkpoint,
            args.mode,
            args.record,
            params,
            args.actor,
            args.expert,
            args.discovery,
            task.env_kwargs_json,
        ),
        grace_s=args.grace,
    )
