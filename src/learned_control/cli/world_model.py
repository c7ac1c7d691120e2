"""``learned-control world-model``: the fixed-goal FetchReach world-model recipe end to end."""

from __future__ import annotations

import argparse
import dataclasses

from ..training.world_model import WorldModelConfig, run_world_model
from ..utils import config_from, configure_torch, new_run_dir, resolve_device
from .common import add_activation_arg, add_config_args, add_runtime_args

__all__ = ["add_arguments", "run"]

HELP = "FetchReach: PPO expert -> data -> world model -> PPO in the model"

DESCRIPTION = """The world-model recipe on the fixed-goal FetchReach: a PPO expert (best checkpoint
by SB3's EvalCallback), its transitions as a Minari dataset, a dynamics ensemble, PPO trained
inside the model, real-env evaluations (fixed goal with stochastic actions; random goals with the
deterministic policy) and data-aggregation rounds. Prints a table by round and the real env steps
of each stage. Writes RUN_DIR/policy.pt (a policy checkpoint for task FetchReach-v4), expert/,
round<k>/ (dynamics.pt, curves.png), rounds.txt, rounds.json, rounds.png and result.json."""

_FLAG_HELP = {
    "expert_steps": "real env steps of PPO expert training (a multiple of n_steps * n_envs)",
    "collect_steps": "real env steps of expert data collection",
    "aggregation_steps": "real env steps of learner rollouts per aggregation round",
    "rounds": "aggregation rounds after the first model",
    "model_ppo_steps": "PPO steps inside the learned model per round",
    "n_steps": "PPO rollout length per env",
    "n_envs": "parallel real envs of the expert",
    "model_envs": "parallel learned-model envs",
    "hidden": "width of the one tanh layer of the PPO policy and value nets",
    "batch_size": "PPO minibatch",
    "eval_every": "real env steps between the expert's callback evaluations",
    "eval_callback_episodes": "episodes per callback evaluation",
    "eval_episodes": "episodes of each real-env evaluation per round",
    "members": "dynamics ensemble size",
    "hid_size": "dynamics hidden width",
    "num_layers": "dynamics hidden layers",
    "epochs": "dynamics training epochs (maximum)",
    "lr": "dynamics Adam learning rate",
    "model_batch_size": "dynamics minibatch per member",
    "val_fraction": "share of transitions held out for validation",
    "patience": "dynamics early-stopping patience in epochs, 0 = off",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser, WorldModelConfig, _FLAG_HELP)
    parser.add_argument(
        "--dataset-prefix",
        default=None,
        help="Minari ids PREFIX-collect-v0, PREFIX-round<k>-v0; none: learned_control/<run dir "
        "name> (default: %(default)s)",
    )
    parser.add_argument(
        "--random-goals",
        action="store_true",
        help="train on the standard random-goal FetchReach (the env's goals, 50-step "
        "episodes scored at their last step, the same shaped reward) instead of the fixed "
        "goal: expert, data and the model env",
    )
    parser.add_argument(
        "--ppo-from-scratch",
        action="store_true",
        help="one PPO from scratch, continued across rounds (default: each "
        "round's PPO starts from the expert's policy and value nets)",
    )
    parser.add_argument(
        "--hidden-sizes",
        type=int,
        nargs="+",
        metavar="W",
        help="dynamics hidden widths in order, instead of --hid-size x --num-layers (the small "
        "MLP world model: --members 1 --hidden-sizes 32 64 --activation relu --lr 1e-4 "
        "--patience 0)",
    )
    add_activation_arg(parser, WorldModelConfig.activation)
    parser.add_argument(
        "--probabilistic",
        action="store_true",
        help="Gaussian dynamics (NLL) instead of deterministic (MSE); the model env steps its mean",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_runtime_args(parser)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    prefix = args.dataset_prefix
    config = config_from(
        WorldModelConfig,
        args,
        ppo_from_expert=not args.ppo_from_scratch,
        device=str(resolve_device(args.device)),
        dataset_prefix=WorldModelConfig.dataset_prefix if prefix is None else prefix,
    )  # checked first
    run_dir = new_run_dir(args.runs_dir, "world-model")
    if prefix is None:
        config = dataclasses.replace(config, dataset_prefix=f"learned_control/{run_dir.name}")
    print(f"run directory: {run_dir}")
    result = run_world_model(config, run_dir, progress=not args.no_progress)
    steps = result.real_steps
    print(
        "real env steps: "
        + ", ".join(f"{k} {v}" for k, v in steps.items() if k != "aggregation")
        + f", aggregation {steps['aggregation']} (total for training "
        f"{result.rounds[-1]['real_steps']})"
    )
    print(f"Minari datasets: {', '.join(result.datasets)}")
    print(f"policy: {result.checkpoint}")
    return 0
