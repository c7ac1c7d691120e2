"""World-model env throughput: env steps per second, learned-model VecEnv vs the real FetchReach.

Measured in one run, printed side by side. (The success-rate benchmark of issue 6 — round 1 and
2 aggregation rounds vs the users' 0.5 / 0.85 and the expert's 0.95 — is not written yet.)

Usage: ``python bench/world_model.py [--num-envs 16] [--steps 200]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from learned_control.models.dynamics import EnsembleDynamics
from learned_control.worldmodel import ModelVecEnv, ensemble_predict, make_fixed_goal_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=16, help="parallel model envs")
    parser.add_argument("--steps", type=int, default=200, help="vector steps of the model env")
    args = parser.parse_args()
    torch.set_num_threads(1)
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
    dyn = EnsembleDynamics(13, 4)  # 5 members x 3 x 200 (engineer 4's defaults)
    venv = ModelVecEnv(ensemble_predict(dyn), starts, num_envs=args.num_envs)
    venv.reset()
    actions = rng.uniform(-1, 1, (args.steps, args.num_envs, 4))
    t0 = time.perf_counter()
    for a in actions:
        venv.step(a)
    model_rate = args.steps * args.num_envs / (time.perf_counter() - t0)
    print(f"real FetchReach:            {real_rate:9.0f} env steps/s")
    print(f"model VecEnv ({args.num_envs} envs, 5x200x3 ensemble, CPU 1 thread): {model_rate:9.0f} env steps/s")
    print(f"ratio model/real: {model_rate / real_rate:.1f}x")


if __name__ == "__main__":
    main()
