"""``learned-control minari2bag``: a Minari dataset written as a rosbag2 bag of a robot's topics."""

from __future__ import annotations

import argparse

from ..data.bags import STORAGES
from ..data.minari_io import load_episodes
from ..data.robot_bags import episodes_to_bag
from ..errors import ConfigError
from ..specs import load_specs
from ..tasks import get_task
from .common import add_task_arg

__all__ = ["add_arguments", "run"]


HELP = "write a Minari dataset as a rosbag2 bag of a spec's topics or the standard topics"

DESCRIPTION = """Write every episode of a Minari dataset into a new bag that robot tools can replay
(ros2 bag play): per step, with --spec, the source messages that assemble to the observation
(JointState, PoseStamped, Odometry, PointStamped goal, stamped with the step time) and the command
on the spec's command topic (unshaped, in its joint order); with --standard, 'observation' and
'command' (Float64MultiArray). Both add 'reward' per step and the bridge's 'episode' summary
(length, return, seed, terminal observation) per episode, with a 1 s pause between episodes. Steps
are the spec's command period apart (--standard: the task's dt). bag2minari reads the bag back to
the same observations, actions, rewards and terminations (terminations follow the time-limit rule:
an episode shorter than the task's time limit is terminated; episodes that do not are reported).
A spec feature that is not a plain read of a joint, body or goal value (cos, sin, sub, ...) cannot
be written from an observation: use --standard."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset_id", help="a local Minari dataset id")
    parser.add_argument("out", help="folder of the new bag (must not exist)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--spec", metavar="FILE", help="robot spec file: write its topics")
    which.add_argument(
        "--standard",
        action="store_true",
        help="write the standard observation/command/reward topics",
    )
    add_task_arg(parser)
    parser.set_defaults(task=None)
    for action in parser._actions:
        if action.dest == "task":
            action.help = "the dataset's task (default: the spec's, else the dataset's env id)"
    parser.add_argument(
        "--storage", choices=STORAGES, default="mcap", help="bag storage (default: %(default)s)"
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="fetch the dataset from the Minari server when it is not local",
    )


def run(args: argparse.Namespace) -> int:
    specs = load_specs(args.spec) if args.spec else None
    if specs is not None:
        if args.task is not None and args.task != specs.task:
            raise ConfigError(f"--task {args.task} but the spec {args.spec} is for {specs.task}")
        task = get_task(specs.task, specs.env_kwargs)
        episodes, _ = load_episodes(args.dataset_id, task, args.download)
    elif args.task is not None:
        task = get_task(args.task, args.env_kwargs)
        episodes, _ = load_episodes(args.dataset_id, task, args.download)
    else:
        episodes, env = load_episodes(args.dataset_id, None, args.download)
        if env.spec is None:
            raise ConfigError(f"dataset {args.dataset_id} names no env; give --task")
        task = get_task(env.spec.id, env.spec.kwargs or None)
    path = episodes_to_bag(args.out, episodes, task, specs, args.storage)
    limit = task.max_episode_steps
    off_rule = sum(
        limit is not None and bool(ep.terminations[-1]) != (len(ep) < limit) for ep in episodes
    )
    if off_rule:
        print(
            f"note: {off_rule} episode(s) end terminated/truncated against the time-limit rule "
            f"(limit {limit}); a conversion back reads them by that rule"
        )
    print(
        f"bag: {path} ({len(episodes)} episodes, {sum(len(ep) for ep in episodes)} steps, "
        f"{'the topics of ' + args.spec if args.spec else 'the standard topics'}, {args.storage})"
    )
    return 0
