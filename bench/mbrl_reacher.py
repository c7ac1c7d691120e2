"""Model-based loop on Reacher-v5: collect with the planner, refit the ensemble, repeat.

Target (issue 4): mean return >= -6 over 10 evaluation episodes within 10k env steps of
collected data. Prints the curve (env steps vs mean collection return), the final evaluation
with the wall time, and saves the curve as a PNG.

Run: ``.venv/bin/python bench/mbrl_reacher.py [--budget 10000] [--out runs/mbrl_reacher]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from learned_control.data.episodes import Episode, Transitions
from learned_control.evaluation import evaluate, run_episode
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.planning.mpc import MPCController, default_mpc_config
from learned_control.tasks import get_task, make_env
from learned_control.training.dynamics import DynamicsTrainConfig, train_dynamics

TASK = "Reacher-v5"


class _Random:
    def __init__(self, env, seed: int) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.space.sample()


def _episode(actor, env, seed: int) -> Episode:
    rows: list[tuple[np.ndarray, np.ndarray, float]] = []
    ret, steps, _ = run_episode(actor, env, seed, on_step=lambda o, a, r: rows.append((o, a, r)))
    obs = [o for o, _, _ in rows] + [env.unwrapped._get_obs()]
    return Episode(np.array(obs), np.array([a for _, a, _ in rows]), np.array([r for *_, r in rows]),
                   np.zeros(steps, bool), np.eye(steps, dtype=bool)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=10_000, help="env steps of collected data")
    parser.add_argument("--random-episodes", type=int, default=5, help="initial random episodes")
    parser.add_argument("--episodes-per-round", type=int, default=5, help="planner episodes per refit")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per refit")
    parser.add_argument("--eval-episodes", type=int, default=10, help="final evaluation episodes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default="runs/mbrl_reacher", help="folder for the curve PNG")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task, env, start = get_task(TASK), make_env(TASK), time.perf_counter()
    episodes = [_episode(_Random(env, s), env, s) for s in range(args.random_episodes)]
    steps, curve, seed = sum(map(len, episodes)), [], 1000
    model = EnsembleDynamics(task.obs_dim, task.act_dim, members=5, hid_size=200, num_layers=3)
    while steps < args.budget:
        train_dynamics(model, Transitions.from_episodes(episodes),
                       DynamicsTrainConfig(epochs=args.epochs, patience=5), seed=seed)
        mpc = MPCController(model, TASK, default_mpc_config(TASK), seed=seed)
        new = [_episode(mpc, env, seed + i) for i in range(args.episodes_per_round)]
        seed += len(new)
        episodes += new
        steps += sum(map(len, new))
        curve.append((steps, float(np.mean([e.episode_return for e in new]))))
        print(f"env steps {steps:6d}  mean return {curve[-1][1]:8.2f}  "
              f"wall {time.perf_counter() - start:7.0f} s", flush=True)
    result = evaluate(MPCController(model, TASK, default_mpc_config(TASK)), env,
                      episodes=args.eval_episodes,
                      seed=10_000)
    wall = time.perf_counter() - start
    print(f"final: mean return {result.mean:.2f} +- {result.std:.2f} over {args.eval_episodes} episodes after "
          f"{steps} env steps, {wall:.0f} s wall (target >= -6: "
          f"{'MET' if result.mean >= -6 else 'NOT MET'})")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(*zip(*curve), marker="o")
    ax.axhline(-6, color="gray", linestyle=":", label="target -6")
    ax.set(xlabel="env steps", ylabel="mean return of collection episodes", title=TASK)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curve.png")
    print(f"curve: {out / 'curve.png'}")


if __name__ == "__main__":
    main()
