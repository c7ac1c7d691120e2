"""Model-based loop on Reacher-v5: collect with the planner, refit the ensemble, repeat.

Target: mean return >= -6 over 10 episodes within 10k env steps. Uniform-random
episodes first (``training.mbrl.random_episodes``, reset seeds 50000+), then rounds: fit a fresh
5 x 3x200 SiLU ensemble on everything so far (``train_dynamics``, fixed epochs, best epoch
restored), run ``--episodes-per-round`` episodes of the default planner on it (reset seeds
40000+), add them to the data. The loop stops at the env-step budget, or once a round's 10
planner episodes average >= -6. The last ensemble is then evaluated with the planner on 10
fresh reset seeds (10000+). Every env step, random ones included, counts toward the budget.

Prints each round (env steps so far, mean and std of its planner episodes, wall time) and the
final evaluation; saves ``returns.json`` and ``returns.png`` (round 0: the random episodes).
Then the same last ensemble plans with each of :data:`FASTER` on the same 10 seeds: plan time
p50/p99 (ms, this process's torch threads) and mean return beside the default's, so a faster
setting is judged at equal control quality (within 5% of the default's return).

Run: ``.venv/bin/python bench/mbrl_reacher.py [--budget 10000] [--out runs/mbrl_reacher]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from learned_control.actors import default_mpc_config, planner_for_task
from learned_control.data.episodes import Episode, Transitions
from learned_control.data.minari_io import rollout_episodes
from learned_control.evaluation import EvalResult, evaluate
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.tasks import get_task
from learned_control.training.dynamics import DynamicsTrainConfig, train_dynamics
from learned_control.training.mbrl import IterationResult, random_episodes, save_curve
from learned_control.utils import seed_everything

TASK = "Reacher-v5"
TARGET = -6.0
FASTER = {
    "icem N/4": dict(optimizer="icem", samples=75, elites=7),
    "icem N/8 I=3": dict(optimizer="icem", samples=38, elites=4, iterations=3),
    "icem N/8 I=3 H=6": dict(optimizer="icem", samples=38, elites=4, iterations=3, horizon=6),
}
"""Planner settings compared with the task's default on the final ensemble (overrides of it)."""


class TimedActor:
    """``actor`` with each ``act`` timed (``ms``: one entry per call)."""

    def __init__(self, actor) -> None:
        self.actor, self.ms = actor, []

    def reset(self) -> None:
        self.actor.reset()

    def act(self, obs):
        start = time.perf_counter()
        action = self.actor.act(obs)
        self.ms.append(1000 * (time.perf_counter() - start))
        return action


def compare_settings(model, task, env, episodes: int, seed: int) -> None:
    """The default planner and each of :data:`FASTER` on ``model``, the same seeds."""
    period = 1000 * task.dt
    print(f"\n{'planner on the final ensemble':<30}{'p50 ms':>8}{'p99 ms':>8}{'period':>8}"
          f"{'return':>16}")
    base = None
    for name, overrides in {"default": {}, **FASTER}.items():
        timed = TimedActor(planner_for_task(model, task, default_mpc_config(TASK, **overrides),
                                            seed=seed))
        result = evaluate(timed, env, episodes=episodes, seed=10_000)
        base = result.mean if base is None else base
        p50, p99 = np.percentile(timed.ms, 50), np.percentile(timed.ms, 99)
        equal = "" if name == "default" else (
            "  equal quality" if result.mean >= base - 0.05 * abs(base) else "  worse")
        print(f"{name:<30}{p50:>8.1f}{p99:>8.1f}{period:>8.0f}{result.mean:>9.2f} +- "
              f"{result.std:4.2f}{equal}", flush=True)


def _result(episodes: list[Episode]) -> EvalResult:
    return EvalResult(returns=[float(e.episode_return) for e in episodes],
                      lengths=[len(e) for e in episodes], successes=[None] * len(episodes),
                      seeds=[int(e.seed) for e in episodes])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=10_000, help="env steps, random included")
    parser.add_argument("--random-steps", type=int, default=5000, help="initial random env steps")
    parser.add_argument("--episodes-per-round", type=int, default=10,
                        help="planner episodes per round")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs per fit")
    parser.add_argument("--eval-episodes", type=int, default=10, help="final evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default="runs/mbrl_reacher", help="folder for the curve")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task, start = get_task(TASK), time.perf_counter()
    env = task.make_env()
    random = random_episodes(task, args.random_steps, 50000 + args.seed)
    planner: list[Episode] = []
    steps = sum(map(len, random))
    episode_steps = env.spec.max_episode_steps  # Reacher never terminates early
    rounds = [IterationResult(0, "", 0, _result(random), "", 0.0)]
    config = DynamicsTrainConfig(epochs=args.epochs, patience=0)
    print(f"random: {len(random)} episodes, {steps} env steps, mean return "
          f"{rounds[0].episodes.mean:.2f}", flush=True)
    while True:
        began = time.perf_counter()
        seed_everything(args.seed)
        model = EnsembleDynamics(task.obs_dim, task.act_dim, members=5, hid_size=200,
                                 num_layers=3, activation="silu")
        data = Transitions.from_episodes(planner + random)
        train_dynamics(model, data, config, args.seed)
        mpc = planner_for_task(model, task, seed=args.seed)
        if steps + args.episodes_per_round * episode_steps > args.budget:
            break
        new = rollout_episodes(mpc, env, args.episodes_per_round,
                               40000 + 100 * len(rounds), progress=False)
        planner += new
        steps += sum(map(len, new))
        rounds.append(IterationResult(len(rounds), f"round {len(rounds)}", len(data),
                                      _result(new), "", time.perf_counter() - began))
        last = rounds[-1].episodes
        print(f"round {len(rounds) - 1}: env steps {steps:6d}  planner episodes "
              f"{last.mean:7.2f} +- {last.std:5.2f}  wall {time.perf_counter() - start:6.0f} s",
              flush=True)
        if last.mean >= TARGET:
            break
    final = evaluate(mpc, env, episodes=args.eval_episodes, seed=10_000)
    met = final.mean >= TARGET and steps <= args.budget
    print(f"final ensemble (trained on {len(data)} transitions), {args.eval_episodes} fresh "
          f"episodes: {final.mean:.2f} +- {final.std:.2f}; {steps} env steps, "
          f"{time.perf_counter() - start:.0f} s wall (target >= {TARGET:g} within "
          f"{args.budget} steps: {'MET' if met else 'NOT MET'})")
    compare_settings(model, task, env, args.eval_episodes, args.seed)
    json_path, png_path = save_curve(rounds, args.out, TASK, "model-based loop (offline)",
                                     first="random actions")
    print(f"curve: {png_path}, {json_path}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
