"""``learned-control mbrl-loop``: the model-based (PETS-style) loop through the ROS node graph,
unattended for k iterations (:func:`learned_control.ros.mbrl_loop.run_mbrl_loop`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.mbrl import IterationResult
from ..utils import new_run_dir
from .common import add_loop_args, add_task_arg, task_from_args

__all__ = ["add_arguments", "run", "show_iteration", "show_loop"]


HELP = "PETS-style loop through ROS: plan, record, refit, hot-swap, k times"

DESCRIPTION = """Write at most --initial-random-steps random-policy transitions as a bag, train a
dynamics ensemble on it with the learner node, then k times: run seeded lockstep episodes with the
controller planning (CEM-MPC, settings from <task>.yaml) while the recorder writes a new bag,
and have the learner refit on every bag so far while the controller hot-swaps the new checkpoint.
Prints the return per iteration and saves returns.json and returns.png in the run directory.
With --spec the loop runs on the robot's own topics (lockstep or --mode realtime): the bridge is
the robot's ros2_control driver, the recorder records the spec's topics, the learner converts them
with the spec; the bridge's episode summaries only report the returns."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arg(parser)
    add_loop_args(parser, "planning iterations k", epochs=200, run_name="mbrl-loop")
    parser.add_argument(
        "--initial-random-steps",
        type=int,
        default=2000,
        help="at most this many random-policy transitions (default: %(default)s)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=0,
        help="learner: early-stopping patience, 0 = off (default: %(default)s)",
    )
    parser.add_argument(
        "--members", type=int, default=5, help="learner: ensemble size (default: %(default)s)"
    )


def show_iteration(result: IterationResult, first: str = "random policy") -> None:
    """One line per finished iteration of a loop through ROS (iteration 0 is ``first``)."""
    from rich.console import Console

    what = first if result.iteration == 0 else result.model
    episodes = result.episodes
    Console().print(
        f"iteration {result.iteration} ({what}): {len(episodes.returns)} episodes, "
        f"return {episodes.mean:.1f} +- {episodes.std:.1f}"
    )


def show_loop(
    results: list[IterationResult], title: str, out: Path, first: str = "random policy"
) -> None:
    """The table of a finished loop through ROS and where its curve, returns and bags are."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in (
        "iteration",
        "model",
        "trained on",
        "episodes",
        "return mean",
        "return std",
        "lengths",
        "wall s",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results:
        lengths = r.episodes.lengths
        table.add_row(
            str(r.iteration),
            r.model or first,
            str(r.trained_on),
            str(len(lengths)),
            f"{r.episodes.mean:.1f}",
            f"{r.episodes.std:.1f}",
            " ".join(map(str, lengths)) if len(lengths) <= 5 else f"{min(lengths)}..{max(lengths)}",
            f"{r.wall_s:.0f}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"curve: {out / 'returns.png'}\nreturns: {out / 'returns.json'}\nbags: {out / 'bags'}"
    )


def run(args: argparse.Namespace) -> int:
    from ..ros.mbrl_loop import run_mbrl_loop

    task = task_from_args(args)
    out = Path(args.out) if args.out else new_run_dir("runs", "mbrl-loop")
    learner = {
        "epochs": args.epochs,
        "patience": args.patience,
        "hid_size": args.hid_size,
        "num_layers": args.num_layers,
        "members": args.members,
    }
    results = run_mbrl_loop(
        task,
        args.iterations,
        args.episodes,
        args.seed,
        out,
        args.initial_random_steps,
        learner,
        args.torch_threads,
        args.timeout,
        on_iteration=show_iteration,
        spec_file=args.spec,
        mode=args.mode,
    )
    show_loop(results, f"{task.name}: model-based loop through ROS", out)
    return 0
