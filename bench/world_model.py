"""World-model benchmarks on the real FetchReach.

Default: env throughput, steps per second of the learned-model VecEnv vs the real env, side by side.
``--success``: the whole pipeline (:func:`run_world_model`, the default budgets) and its
real-env success after the first model and after the aggregation rounds, next to the fixed-goal
recipe's reference figures (0.5, 0.85, expert 0.95) and the targets (0.9, 0.95 on random goals).

Usage: ``python bench/world_model.py [--num-envs 16] [--steps 200]``,
``python bench/world_model.py --success [--random-goals] [--small-mlp-world-model] [--rounds 2]
[--seed 0] [--out runs/bench-wm]`` (``--small-mlp-world-model``: the small 32-64 MLP as the world
model instead of our ensemble, the baseline)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from learned_control.envs.fetch_reach import make_fixed_goal_env
from learned_control.envs.model_env import ModelVecEnv, ensemble_predict
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.training.world_model import (
    SMALL_MLP_WORLD_MODEL,
    WorldModelConfig,
    run_world_model,
)
from learned_control.utils import new_run_dir


def success(args: argparse.Namespace) -> bool:
    """Run the pipeline at the default budgets and compare with the reference figures."""
    run_dir = new_run_dir(args.out, "bench-world-model")
    config = WorldModelConfig(
        rounds=args.rounds,
        random_goals=args.random_goals,
        seed=args.seed,
        dataset_prefix=f"learned_control/{run_dir.name}",
        **(SMALL_MLP_WORLD_MODEL if args.small_mlp_world_model else {}),
    )
    print(f"run directory: {run_dir}\nconfig: {dataclasses.asdict(config)}")
    t0 = time.perf_counter()
    result = run_world_model(config, run_dir, progress=False)
    minutes = (time.perf_counter() - t0) / 60
    first, last = result.rounds[0], result.rounds[-1]
    print(f"real env steps: {result.real_steps}; wall {minutes:.1f} min on CPU")
    print(
        f"{'':34s}{'fixed goal, stochastic':>24s}{'random goals, deterministic':>30s}"
        f"{'ref':>7s}{'target':>8s}"
    )
    missed = False
    for name, row, ref, target in (
        ("expert", result.expert, 0.95, None),
        ("round 0 (first model)", first, 0.5, 0.9),
        (f"round {last['round']} (after aggregation)", last, 0.85, 0.95),
    ):
        print(
            f"{name:34s}{row['fixed_stochastic']['success']:24.2f}"
            f"{row['random_deterministic']['success']:30.2f}{ref:7.2f}"
            f"{'-' if target is None else f'{target:.2f}':>8s}"
        )
        if target is not None and row["random_deterministic"]["success"] < target:
            missed = True
    print("targets (random goals):", "NOT MET" if missed else "MET")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=16, help="parallel model envs")
    parser.add_argument("--steps", type=int, default=200, help="vector steps of the model env")
    parser.add_argument("--success", action="store_true", help="run the success benchmark instead")
    parser.add_argument(
        "--random-goals", action="store_true", help="--success: train on random goals"
    )
    parser.add_argument(
        "--small-mlp-world-model",
        action="store_true",
        help="--success: the small 32-64 MLP as the world model (baseline)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="--success: aggregation rounds")
    parser.add_argument("--seed", type=int, default=0, help="--success: the pipeline's seed")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="--success: runs folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.success:
        return 1 if success(args) else 0
    rng = np.random.default_rng(0)
    env = make_fixed_goal_env()
    starts = np.stack([env.reset(seed=s)[0] for s in range(16)]).astype(np.float32)
    real_steps = args.steps * 4
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(real_steps):
        if any(env.step(rng.uniform(-1, 1, 4))[2:4]):
            env.reset()
    real_rate = real_steps / (time.perf_counter() - t0)
    dyn = EnsembleDynamics(13, 4)  # 5 members x 3 x 200 (the ensemble's defaults)
    venv = ModelVecEnv(ensemble_predict(dyn), starts, num_envs=args.num_envs)
    venv.reset()
    actions = rng.uniform(-1, 1, (args.steps, args.num_envs, 4))
    t0 = time.perf_counter()
    for a in actions:
        venv.step(a)
    model_rate = args.steps * args.num_envs / (time.perf_counter() - t0)
    print(f"real FetchReach:            {real_rate:9.0f} env steps/s")
    print(
        f"model VecEnv ({args.num_envs} envs, 5x200x3 ensemble, CPU 1 thread): "
        f"{model_rate:9.0f} env steps/s"
    )
    print(f"ratio model/real: {model_rate / real_rate:.1f}x (no target: a measurement)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
