"""``learned-control dagger``: DAgger with an SB3 expert, one of our checkpoints or the CEM
planner."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from ..actors import load_actor
from ..checkpoint import save_checkpoint
from ..training.dagger import DAggerConfig, dagger_table, plot_dagger, run_dagger
from ..utils import configure_torch, new_run_dir, resolve_device, seed_everything
from .common import (
    add_bc_args,
    add_eval_episodes_arg,
    add_runtime_args,
    add_task_arg,
    bc_config_from_args,
    task_from_args,
)

__all__ = ["register", "run"]


DESCRIPTION = """BC on expert demonstrations, then ITERATIONS rounds of: roll out the learner
(expert action with probability beta), label the visited states with the expert, aggregate, retrain
from scratch; returns the iterate best on validation episodes. Compares with plain BC on as many
expert samples. Writes RUN_DIR/policy.pt, RUN_DIR/dagger.png and RUN_DIR/dagger.json."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dagger",
        help="DAgger: BC on expert demos, then relabel the learner's states",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--expert",
        required=True,
        help="expert: SB3 .zip, policy checkpoint, or cem:<dynamics checkpoint>",
    )
    add_task_arg(parser)
    defaults = DAggerConfig()
    parser.add_argument(
        "--iterations",
        type=int,
        default=defaults.iterations,
        help="DAgger iterations after the initial BC (default: %(default)s)",
    )
    parser.add_argument(
        "--demo-episodes",
        type=int,
        default=defaults.demo_episodes,
        help="expert episodes for the initial BC (default: %(default)s)",
    )
    parser.add_argument(
        "--rollout-episodes",
        type=int,
        default=defaults.rollout_episodes,
        help="learner episodes relabelled per iteration (default: %(default)s)",
    )
    add_eval_episodes_arg(parser, defaults.eval_episodes)
    parser.add_argument(
        "--validation-episodes",
        type=int,
        default=defaults.validation_episodes,
        help="learner-only episodes per policy that pick the returned one; 0: "
        "the last iterate (default: %(default)s)",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=defaults.beta,
        help="probability of the expert's action at iteration 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--beta-decay",
        type=float,
        default=defaults.beta_decay,
        help="factor on beta per further iteration (default: %(default)s)",
    )
    add_bc_args(parser)
    add_runtime_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    config = DAggerConfig(
        iterations=args.iterations,
        demo_episodes=args.demo_episodes,
        rollout_episodes=args.rollout_episodes,
        validation_episodes=args.validation_episodes,
        eval_episodes=args.eval_episodes,
        beta=args.beta,
        beta_decay=args.beta_decay,
        hid_size=args.hid_size,
        num_layers=args.num_layers,
        activation=args.activation,
        bc=bc_config_from_args(args),
        seed=args.seed,
    )
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
