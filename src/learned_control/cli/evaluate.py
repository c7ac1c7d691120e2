"""``learned-control evaluate``: seeded episodes of a checkpoint or an SB3 zip."""

from __future__ import annotations

import argparse
import json

from ..actors import load_actor
from ..evaluation import EvalResult, evaluate
from ..utils import configure_torch, new_run_dir, resolve_device
from .common import add_runtime_args, add_task_arg, task_from_args

__all__ = ["add_arguments", "run", "plot_returns", "format_success"]


HELP = "evaluate a policy checkpoint or an SB3 zip on seeded episodes"

DESCRIPTION = """Run seeded episodes (reset seeds SEED, SEED+1, ...) with deterministic actions and
print the mean and std of the return and the success rate (n/a when the env reports none)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policy",
        help="a policy checkpoint (.pt), an SB3 model (.zip), cem:DYNAMICS.pt (the CEM planner "
        "over a dynamics model) or random",
    )
    add_task_arg(parser)
    parser.add_argument(
        "--episodes", type=int, default=10, help="number of episodes (default: %(default)s)"
    )
    parser.add_argument(
        "--plot", action="store_true", help="save RUN_DIR/returns.png and RUN_DIR/returns.json"
    )
    add_runtime_args(parser)


def plot_returns(result: EvalResult, path, title: str) -> None:
    """Bar chart of per-episode returns with the mean as a line (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([str(s) for s in result.seeds], result.returns)
    ax.axhline(result.mean, color="k", linestyle="--", label=f"mean {result.mean:.1f}")
    ax.set(xlabel="episode seed", ylabel="return", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_success(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2f}"


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    task = task_from_args(args)
    actor = load_actor(args.policy, task, str(resolve_device(args.device)))
    result = evaluate(actor, task.make_env(), args.episodes, args.seed, progress=True)
    print(f"episodes: {len(result.returns)}")
    print(f"mean_return: {result.mean:.4f}")
    print(f"std_return: {result.std:.4f}")
    print(f"success: {format_success(result.success_rate)}")
    if args.plot:
        run_dir = new_run_dir(args.runs_dir, "evaluate")
        plot_returns(result, run_dir / "returns.png", f"{args.policy} on {task.name}")
        (run_dir / "returns.json").write_text(
            json.dumps(
                {
                    "policy": str(args.policy),
                    "task": task.name,
                    **result.summary(),
                    "returns": result.returns,
                    "seeds": result.seeds,
                },
                indent=2,
            )
        )
        print(f"run directory: {run_dir}")
    return 0
