"""``learned-control collect``: roll an expert out into a new local Minari dataset."""

from __future__ import annotations

import argparse

import numpy as np

from ..actors import SB3Actor, load_actor
from ..training.experts import collect_dataset
from ..utils import configure_torch, resolve_device
from .common import add_runtime_args, add_task_arg, task_from_args

__all__ = ["add_arguments", "run"]


HELP = "roll out an expert into a new local Minari dataset"

DESCRIPTION = """Roll out an expert (a stable-baselines3 .zip, loaded without unpickling, or a
learned_control checkpoint) and store the episodes as a local Minari dataset under
$MINARI_DATASETS_PATH (default ~/.minari/datasets). Under the id of a public Minari dataset
that this package knows (mujoco/pusher/expert-v0), the dataset is a local stand-in for it: same
env spec, spaces and episode length, its metadata saying that it is locally made; then
minari.load_dataset(id) finds it with no download."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expert",
        required=True,
        help="the expert: an SB3 .zip, a policy .pt, cem:DYNAMICS.pt or random",
    )
    parser.add_argument(
        "--dataset-id",
        required=True,
        help="id of the new dataset, '[namespace/]name-v<N>', e.g. "
        "learned_control/pendulum-expert-v0",
    )
    add_task_arg(parser)
    parser.add_argument(
        "--episodes", type=int, default=20, help="episodes to record (default: %(default)s)"
    )
    parser.add_argument(
        "--noise-std",
        type=float,
        default=0.0,
        help="Gaussian action noise, as a fraction of the action half-range; the "
        "noisy action is applied and recorded (default: %(default)s)",
    )
    add_runtime_args(parser)


def run(args: argparse.Namespace) -> int:
    configure_torch(args.torch_threads)
    task = task_from_args(args)
    actor = load_actor(args.expert, task, str(resolve_device(args.device)))
    episodes = collect_dataset(
        actor,
        task,
        args.dataset_id,
        args.episodes,
        args.seed,
        args.noise_std,
        # Minari's form for SB3 experts (e.g. SB3/SAC), else the expert as given
        algorithm_name=f"SB3/{actor.algo.upper()}" if isinstance(actor, SB3Actor) else args.expert,
    )
    returns = [ep.episode_return for ep in episodes]
    print(
        f"dataset: {args.dataset_id} ({len(episodes)} episodes, "
        f"{sum(len(ep) for ep in episodes)} steps)"
    )
    print(f"collected return: {np.mean(returns):.2f} +- {np.std(returns):.2f}")
    return 0
