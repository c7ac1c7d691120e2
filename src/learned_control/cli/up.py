"""``learned-control up``: the node graph as separate processes, without ``ros2 launch``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..bringup import INTERFACES, Bringup
from ..errors import ConfigError
from ..params import parameter_file, ros_arg
from ..runtime.supervisor import ProcessSpec, supervise
from .common import add_task_arg, task_from_args

__all__ = ["add_arguments", "run", "graph_specs", "discovery_env", "DISCOVERY_RANGES"]

DISCOVERY_RANGES = {"localhost": "LOCALHOST", "subnet": "SUBNET"}
"""``--discovery`` choice -> ``ROS_AUTOMATIC_DISCOVERY_RANGE`` (ROS 2 Iron and later)."""


HELP = "run sim_bridge + controller (+ recorder, learner) as supervised processes"

DESCRIPTION = """Start the nodes of launch/sim.launch.py as separate processes with the same
parameter file (--ros-args --params-file <task>.yaml from the installed package, default.yaml for
a task without its own) and --task/--env-kwargs as parameters, stream their logs with node
prefixes, and stop all of them on Ctrl-C (SIGINT, then SIGTERM, then SIGKILL) or as soon as one
dies or fails to configure, naming it (exit code non-zero: the node's own, 128 + N when killed by
signal N); with --respawn a dead node is restarted instead. The graph: the bridge as a simulator
(--interface sim) or as a ros2_control-shaped driver (--interface driver --spec-file), the bridge
alone (--bridge-only), or no bridge against the robot's own drivers (--no-bridge --spec-file);
--namespace puts it under a namespace, --learner adds the learner, --record the recorder."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arg(parser)
    parser.add_argument(
        "--checkpoint",
        default="",
        help="policy checkpoint (.pt), or a dynamics checkpoint with --actor cem; needed "
        "exactly when the controller runs",
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
    graph = parser.add_argument_group("graph")
    graph.add_argument(
        "--interface",
        choices=tuple(INTERFACES),
        default="",
        help="the bridge's: sim (the observation vector) or driver (the topics of a "
        "ros2_control robot with mocap, from --spec-file; the controller runs in robot mode) "
        "(default: sim)",
    )
    graph.add_argument(
        "--spec-file",
        default="",
        help="robot spec YAML (learned-control export-spec) for --interface driver or "
        "--no-bridge: given to the bridge, the controller and the recorder",
    )
    graph.add_argument(
        "--namespace",
        default="",
        help="ROS namespace of every node and its topics (robot1); with the bridge the "
        "absolute /joint_states, /clock and spec topics move under it too",
    )
    only = graph.add_mutually_exclusive_group()
    only.add_argument(
        "--bridge-only",
        action="store_true",
        help="no controller (for a controller of your own): no checkpoint needed",
    )
    only.add_argument(
        "--no-bridge",
        action="store_true",
        help="no bridge: the robot's own drivers publish (needs --spec-file); controller, "
        "recorder and learner only",
    )
    graph.add_argument(
        "--learner",
        action="store_true",
        help="also run the learner node (its parameters from the parameter file; trains "
        "what the controller runs, on ~/train)",
    )
    graph.add_argument(
        "--learner-sources",
        nargs="+",
        default=[],
        metavar="SOURCE",
        help="with --learner: its sources (bags, folders of bags, Minari ids)",
    )
    parser.add_argument("--record", default="", help="path of a new bag to record into")
    parser.add_argument(
        "--record-topics",
        nargs="+",
        default=[],
        metavar="TOPIC",
        help="with --record: record only these topics, each NAME or NAME:pkg/msg/Type "
        "(default: the bridge's topics, command and expert_command included; with a spec "
        "file its topics and assembled_observation)",
    )
    parser.add_argument(
        "--params-file",
        default=None,
        help="parameter file (default: the installed package's config/<task>.yaml, else "
        "config/default.yaml)",
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
        "--respawn",
        action="store_true",
        help="restart a node that dies (it configures and activates again) instead of stopping "
        "the graph, as ros2 launch's respawn; a node whose configuration is wrong (exit code 2) "
        "still stops it",
    )
    parser.add_argument(
        "--respawn-delay",
        type=float,
        default=1.0,
        help="with --respawn: seconds before a dead node is restarted (default: %(default)s)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds each stop signal is given before escalating (default: %(default)s)",
    )


def graph_specs(
    graph: Bringup, params_file: Path, discovery: str = "localhost"
) -> list[ProcessSpec]:
    """One process per node of ``graph``, in start order, each with the environment of
    :func:`discovery_env`, ``params_file``, the graph's namespace and remappings, and its
    parameters as ``-p`` overrides."""
    env = {"PYTHONUNBUFFERED": "1", **discovery_env(discovery)}
    ros_args = ["-r", f"__ns:={graph.namespace}"] if graph.namespace else []
    for source, target in graph.remappings():
        ros_args += ["-r", f"{source}:={target}"]
    specs = []
    for name in graph.nodes:
        argv = [sys.executable, "-m", f"learned_control.ros.{name}", "--ros-args"]
        argv += ["--params-file", str(params_file), *ros_args]
        for key, value in graph.parameters(name).items():
            argv += ["-p", f"{key}:={ros_arg(value)}"]
        specs.append(ProcessSpec(name, argv, env))
    return specs


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
    graph = Bringup(
        task.name,
        task.env_kwargs_json,
        mode=args.mode,
        interface=args.interface,
        spec_file=args.spec_file,
        namespace=args.namespace,
        bridge=not args.no_bridge,
        controller=not args.bridge_only,
        learner=args.learner,
        checkpoint=args.checkpoint,
        actor=args.actor,
        expert=args.expert,
        record=args.record,
        record_topics=args.record_topics,
        learner_sources=args.learner_sources,
    )
    params = Path(args.params_file) if args.params_file else parameter_file(task.name)
    if not params.is_file():
        raise ConfigError(f"no parameter file {params}; pass --params-file")
    graph.check_parameter_file(params)
    if graph.controller and not Path(args.checkpoint).is_file():
        raise ConfigError(f"no checkpoint file {args.checkpoint}")
    if args.record and Path(args.record).exists():
        raise ConfigError(f"bag path {args.record} already exists; give a new path")
    what = ", ".join(graph.nodes)
    print(
        f"up: {task.name} ({args.mode}; {what}"
        + (f" under {graph.namespace}" if graph.namespace else "")
        + (f", actor {args.actor}" if graph.controller else "")
        + f") with {params}"
        + (f", recording into {args.record}" if args.record else "")
        + f", discovery {os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE') or args.discovery}",
        flush=True,
    )
    return supervise(
        graph_specs(graph, params, args.discovery),
        grace_s=args.grace,
        respawn=args.respawn,
        respawn_delay_s=args.respawn_delay,
    )
