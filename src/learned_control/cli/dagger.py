"""``learned-control dagger``: DAgger with an SB3 expert, one of our checkpoints or the CEM
planner."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from ..actors import load_actor
from ..checkpoint import save_checkpoint
from ..training.bc import BCConfig
from ..training.dagger import DAggerConfig, dagger_table, plot_dagger, run_dagger
from ..utils import config_from, configure_torch, new_run_dir, resolve_device, seed_everything
from .common import add_bc_args, add_config_args, add_runtime_args, add_task_arg, task_from_args

__all__ = ["add_arguments", "run"]


HELP = "DAgger: BC on expert demos, then relabel the learner's states"

DESCRIPTION = """BC on expert demonstrations, then ITERATIONS rounds of: roll out the learner
(expert action with probability beta), label the visited states with the expert, aggregate, retrain
from scratch; returns the iterate best on validation episodes. Compares with plain BC on as many
expert samples. Writes RUN_DIR/policy.pt, RUN_DIR/dagger.png and RUN_DIR/dagger.json."""


_FLAG_HELP = {
    "iterations": "DAgger iterations after the initial BC",
    "demo_episodes": "expert episodes for the initial BC",
    "rollout_episodes": "learner episodes relabelled per iteration",
    "eval_episodes": "seeded evaluation episodes per policy",
    "validation_episodes": "learner-only episodes per policy that pick the returned one; 0: the "
    "last iterate",
    "beta": "probability of the expert's action at iteration 1",
    "beta_decay": "factor on beta per further iteration",
}
"""DAggerConfig field -> help of its flag, in the order of ``--help``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expert",
        required=True,
        help="expert: SB3 .zip, policy checkpoint, or cem:<dynamics checkpoint>",
    )
    add_task_arg(parser)
    add_config_args(parser, DAggerConfig, _FLAG_HELP)
    add_bc_args(parser)
    add_runtime_args(parser)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    config = config_from(DAggerConfig, args, bc=config_from(BCConfig, args))
    seed_everything(args.seed)
    task = task_from_args(args)
    device = str(resolve_device(args.device))
    expert = load_actor(args.expert, task, device)
    run_dir = new_run_dir(args.runs_dir, f"dagger-{task.name}")
    result = run_dagger(task, expert, config, device)
    save_checkpoint(
        run_dir / "policy.pt",
        result.policy,
        task,
        {"trainer": "dagger", "expert": args.expert, **result.summary()},
    )
    plot_dagger(result, run_dir / "dagger.png", title=f"DAgger on {task.name}")
    (run_dir / "dagger.json").write_text(json.dumps(result.summary(), indent=2))
    Console().print(dagger_table(result, f"DAgger on {task.name}"))
    print(f"run directory: {run_dir}")
    return 0
