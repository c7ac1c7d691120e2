"""``learned-control dagger-loop``: DAgger through the ROS node graph, unattended for k
iterations (:func:`learned_control.ros.dagger_loop.run_dagger_loop`)."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from ..utils import new_run_dir
from .common import add_loop_args, add_task_arg, task_from_args
from .mbrl_loop import show_iteration, show_loop

__all__ = ["add_arguments", "run"]

FIRST = "the expert driving"


HELP = (
    "DAgger through ROS: the policy drives, the expert labels, the learner retrains and "
    "hot-swaps, k times"
)

DESCRIPTION = """Record seeded lockstep episodes with the expert driving, train a BC policy on them
with the learner node (labels: the expert's), then k times: run episodes with the policy driving
while the controller's expert labels every observation (expert_command) and the recorder writes a
new bag, and have the learner retrain on every bag so far while the controller hot-swaps the new
checkpoint. Prints the return per iteration and saves returns.json and returns.png in the run
directory. With --spec the loop runs on the robot's own topics (lockstep or --mode realtime): the
controller in robot mode drives, the recorder records the spec's topics, the learner converts them
with the spec and the expert relabels them as they load; the bridge's episode summaries only
report the returns."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arg(parser)
    parser.add_argument(
        "--expert",
        required=True,
        help="expert: policy checkpoint, SB3 .zip, or cem:<dynamics checkpoint>",
    )
    add_loop_args(
        parser, "DAgger iterations k after the expert's episodes", epochs=50, run_name="dagger-loop"
    )


def run(args: argparse.Namespace) -> int:
    from ..ros.dagger_loop import run_dagger_loop

    task = task_from_args(args)
    out = Path(args.out) if args.out else new_run_dir("runs", "dagger-loop")
    learner = {"epochs": args.epochs, "hid_size": args.hid_size, "num_layers": args.num_layers}
    results = run_dagger_loop(
        task,
        args.expert,
        args.iterations,
        args.episodes,
        args.seed,
        out,
        learner,
        args.torch_threads,
        args.timeout,
        on_iteration=partial(show_iteration, first=FIRST),
        spec_file=args.spec,
        mode=args.mode,
    )
    show_loop(results, f"{task.name}: DAgger through ROS", out, FIRST)
    return 0
