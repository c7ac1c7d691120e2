"""Goal-conditioned FetchReach: one network cloned from the scripted reach expert, on
fresh random goals.

The expert (:class:`~learned_control.envs.fetch_reach.ReachExpert`, proportional control of the
gripper towards ``desired_goal``) records ``--demos`` episodes (reset seeds 0, 1, ...; the env
samples a random goal per episode); BC trains one MLP on them (goal and robot state in, action
out); both are evaluated on ``--episodes`` episodes with goals the demonstrations never had (seeds
from 10000). Target: the policy reaches >= 95% success. Act latency is per action, batch 1, CPU.

Run: ``.venv/bin/python bench/goal_reach.py [--demos 50] [--episodes 100] [--epochs 50]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from learned_control.data.episodes import Transitions
from learned_control.data.minari_io import rollout_episodes
from learned_control.envs.fetch_reach import ReachExpert
from learned_control.evaluation import evaluate
from learned_control.tasks import get_task
from learned_control.training.bc import BCConfig, mlp_policy_for, train_bc


def act_ms(actor, observations: np.ndarray) -> float:
    """Median milliseconds per ``act`` call over ``observations``."""
    times = []
    for obs in observations:
        start = time.perf_counter()
        actor.act(obs)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=50, help="expert episodes for BC")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes")
    parser.add_argument("--epochs", type=int, default=50, help="BC epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("FetchReach-v4")
    env = task.make_env()
    expert = ReachExpert()
    start = time.perf_counter()
    demos = rollout_episodes(expert, env, args.demos, args.seed, True)
    data = Transitions.from_episodes(demos)
    torch.manual_seed(args.seed)
    policy = mlp_policy_for(task)
    train_bc(policy, data.observations, data.actions, BCConfig(epochs=args.epochs, seed=args.seed),
             progress=False)
    obs = data.observations[:500]
    print(f"FetchReach-v4, random goals: BC 64x2 on {args.demos} expert episodes "
          f"({len(data)} transitions, {args.epochs} epochs), evaluated on {args.episodes} "
          f"episodes with fresh goals (seeds from 10000)")
    print(f"{'actor':<10}{'success':>9}{'return mean':>13}{'act ms':>8}")
    met = False
    for name, actor in (("expert", expert), ("BC", policy)):
        result = evaluate(actor, env, args.episodes, seed=10_000)
        print(f"{name:<10}{result.success_rate:>9.2f}{result.mean:>13.2f}"
              f"{act_ms(actor, obs):>8.3f}")
        if name == "BC":
            met = result.success_rate >= 0.95
            verdict = "MET" if met else "NOT MET"
            print(f"target: BC success >= 0.95 -> {verdict}  ({time.perf_counter() - start:.0f} s)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
