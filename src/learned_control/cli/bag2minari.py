"""``learned-control bag2minari``: a rosbag2 bag recorded off the bridge into a local Minari
dataset."""

from __future__ import annotations

import argparse

from ..data.bags import bag_to_episodes
from ..data.minari_io import check_new_dataset_id, save_episodes
from .common import add_task_arg, task_from_args

__all__ = ["add_arguments", "run"]


HELP = "convert a recorded rosbag2 bag into a local Minari dataset"

DESCRIPTION = """Read a bag written by the recorder node (sqlite3 or mcap), pair each observation
with the command the bridge applied to it (see learned_control.topics), and store the complete
episodes as a new local Minari dataset under $MINARI_DATASETS_PATH (default ~/.minari/datasets). An
episode cut before its summary is dropped."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag folder")
    parser.add_argument("dataset_id", help="id of the new dataset, '[namespace/]name-v<N>'")
    add_task_arg(parser)
    parser.add_argument(
        "--max-episode-steps",
        type=int,
        default=None,
        help="time limit that marks truncation (default: the task's)",
    )


def run(args: argparse.Namespace) -> int:
    check_new_dataset_id(args.dataset_id)
    task = task_from_args(args)
    episodes = bag_to_episodes(args.bag, task, args.max_episode_steps)
    save_episodes(
        args.dataset_id,
        episodes,
        task.make_env(),
        algorithm_name=f"bag {args.bag}",
        description=f"Recorded through the ROS 2 node graph into the bag {args.bag}.",
    )
    print(
        f"dataset: {args.dataset_id} ({len(episodes)} episodes, "
        f"{sum(len(ep) for ep in episodes)} steps) from {args.bag}"
    )
    return 0
