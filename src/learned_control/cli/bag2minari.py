"""``learned-control bag2minari``: any rosbag2 bag (the recorder's, a robot's, another tool's)
into a local Minari dataset."""

from __future__ import annotations

import argparse

from ..data.minari_io import check_new_dataset_id, save_episodes
from ..data.robot_bags import DEFAULT_GAP_S, convert_any_bag
from ..errors import ConfigError
from ..specs import load_specs
from ..tasks import get_task
from .common import add_task_arg

__all__ = ["add_arguments", "run"]


HELP = "convert a rosbag2 bag (recorder, robot drivers, ros2 bag record) into a Minari dataset"

DESCRIPTION = f"""Read a bag (sqlite3 or mcap) and store its episodes as a new local Minari dataset
under $MINARI_DATASETS_PATH (default ~/.minari/datasets).

Steps, one per command in receive order: with --spec, the observation is assembled from the
spec's source topics (JointState, PoseStamped, Odometry, goal) by the controller's assembler and
the action is read from the spec's command topic (Float64MultiArray in its joint order, or a
JointTrajectory's first point); each command answers the newest samples received before it, or
with --lockstep (a controller in lockstep, e.g. on the bridge as a driver) the oldest source stamp
no command answered yet, the controller's own rule, whatever order the recorder wrote messages
that arrived together in. Without --spec, a bag of the bridge's topics pairs each observation with
the command the bridge applied (applied_command), and a bag of only the standard topics
(observation, command, reward) pairs each observation with the first command received after it.
A step whose source is older than its max_age when the command came is stale: it is dropped and
SPLITS the episode there (never paired silently).

Episode boundaries, first found: the bridge's 'episode' summaries (each episode checked against
its length; one that does not pair is dropped, the rest re-aligned); else --episode-topic
(every message starts an episode); else the controller's lifecycle transitions
(<controller>/transition_event); else pauses between commands longer than --gap s. Without a
summary an episode ends at the first observation after its last command.

Rewards: the bag's 'reward' topic when it pairs one reward per step; else, with --task given,
the task's reward and termination functions (a task without them gets zeros, said so); else
zeros, never terminated. With --task and no summaries, terminations come from the task's
termination function. The dataset's description says which. A bag without metadata.yaml (its
recorder was killed) is reindexed first, with a one-line notice (see bag-reindex). Default gap:
{DEFAULT_GAP_S} s."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag folder")
    parser.add_argument("dataset_id", help="id of the new dataset, '[namespace/]name-v<N>'")
    add_task_arg(parser)
    parser.set_defaults(task=None)  # given: rewards from the task's functions
    for action in parser._actions:  # the default is the spec's task, else InvertedPendulum-v5
        if action.dest == "task":
            action.help = (
                "the dataset's task (default: the spec's, else InvertedPendulum-v5); given, "
                "rewards and terminations come from its functions where the bag has none"
            )
    parser.add_argument(
        "--spec",
        default=None,
        metavar="FILE",
        help="robot spec file (export-spec): observations from its sources, actions from its "
        "command topic; its task is the dataset's",
    )
    parser.add_argument(
        "--episode-topic",
        default=None,
        metavar="TOPIC",
        help="marker topic whose messages start episodes (when the bag has no summaries)",
    )
    parser.add_argument(
        "--controller",
        default="controller",
        metavar="NAME",
        help="the controller node whose transition_event marks episodes (default: %(default)s)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=DEFAULT_GAP_S,
        metavar="S",
        help="a pause between commands longer than this ends an episode (default: %(default)s)",
    )
    parser.add_argument(
        "--lockstep",
        action="store_true",
        help="(with --spec) the controller ran in lockstep: each command answers the oldest "
        "source stamp no command answered yet (default: the newest samples received before it)",
    )
    parser.add_argument(
        "--max-episode-steps",
        type=int,
        default=None,
        help="time limit that marks truncation (default: the task's)",
    )


def run(args: argparse.Namespace) -> int:
    check_new_dataset_id(args.dataset_id)
    if not args.gap > 0:
        raise ConfigError(f"--gap {args.gap}: expected a positive number of seconds")
    specs = load_specs(args.spec) if args.spec else None
    if specs is not None and args.task is not None and args.task != specs.task:
        raise ConfigError(f"--task {args.task} but the spec {args.spec} is for {specs.task}")
    if specs is not None:
        task = get_task(specs.task, specs.env_kwargs)
    else:
        task = get_task(args.task or "InvertedPendulum-v5", args.env_kwargs)
    result = convert_any_bag(
        args.bag,
        task,
        specs,
        episode_topic=args.episode_topic,
        gap=args.gap,
        task_rewards=args.task is not None,
        max_episode_steps=args.max_episode_steps,
        controller=args.controller,
        lockstep=args.lockstep,
    )
    save_episodes(
        args.dataset_id,
        result.episodes,
        task.make_env(),
        algorithm_name=f"bag {args.bag}",
        description=f"Converted from the bag {args.bag}. {result.describe()}",
    )
    for note in result.notes:
        print(f"left out: {note}")
    print(
        f"dataset: {args.dataset_id} ({len(result.episodes)} episodes, "
        f"{sum(len(ep) for ep in result.episodes)} steps) from {args.bag}; episodes from "
        f"{result.boundaries}; rewards from {result.rewards}"
    )
    return 0
