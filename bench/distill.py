"""Distil the CEM-MPC planner into an MLP policy by DAgger on InvertedPendulum-v5 and Reacher-v5.

Target: the distilled policy keeps >= 95% of the planner's return at a fraction of its
latency per action. "% of planner" is ``100 * policy / planner`` on InvertedPendulum and the
normalized score ``100 * (policy - random) / (planner - random)`` on Reacher (negative returns;
random policy measured in the same run, raw returns beside it).

Per task, in one run:

1. **Dynamics** (the model-based loop's core, offline): ``training.mbrl.random_episodes``
   (uniform random actions, whole episodes within ``random_steps``, reset seeds 50000+), then
   ``rounds`` times: fit a fresh ensemble with ``training.dynamics.train_dynamics`` (``epochs``,
   no early stopping, best epoch restored, seed 0), collect ``episodes_per_round`` episodes with
   the default planner on it (reset seeds 40000+), and refit on everything. Planner episodes come
   first and random ones last, as the ROS loop's learner reads its bags (``iteration-NN`` before
   ``random``), so the validation tail is random data. InvertedPendulum: 5 x 2x64 ReLU (the
   ``mbrl-loop`` learner's defaults), 2000 random steps + 3 rounds x 2 planner episodes, 200
   epochs per fit. Reacher: 5 x 3x200 SiLU (``bench/mbrl_reacher.py``'s ensemble, the one
   ``bench/planner.py`` times its default config with), 5000 random steps (100 episodes) +
   1 round x 5 planner episodes (250 steps), 60 epochs per fit. The final fit is saved as
   ``OUT/dynamics_<task>.pt``.
2. **Expert**: ``cem:OUT/dynamics_<task>.pt`` through ``actors.load_actor``, i.e.
   ``MPCController`` with the task's default config (``learned_control/config/<task>.yaml``),
   seed 0.
3. **DAgger** (``training.dagger.run_dagger``, beta 0, a fresh 2x64 ReLU MLP per iteration):
   BC on the planner's demo episodes, then iterations of learner rollouts relabelled by the
   planner. Planner, random, BC-at-equal-data and every iteration are evaluated on the same
   seeded episodes (seeds 0, 1, ...).
4. **Latency**: along ``latency_episodes`` planner-driven episodes (reset seeds 30000+), each
   observation goes to ``planner.act(obs)`` and ``policy.act(obs)`` one after the other (the
   order alternating per step), timed with ``time.perf_counter``; median and p99 per action.

Run (``--threads 1`` on 2 CPU cores; writes ``OUT/distill.json`` and the plots, and exits
non-zero when a task misses the target):

    .venv/bin/python bench/distill.py [--tasks InvertedPendulum-v5 Reacher-v5] \
        [--out runs/bench_distill]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from learned_control.actors import Actor, load_actor, planner_for_task
from learned_control.checkpoint import save_checkpoint
from learned_control.data.episodes import Episode, Transitions
from learned_control.data.minari_io import rollout_episodes
from learned_control.evaluation import run_episode
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.tasks import Task, get_task
from learned_control.training.bc import BCConfig
from learned_control.training.dagger import (DAggerConfig, DAggerResult, dagger_table, plot_dagger,
                                             run_dagger)
from learned_control.training.dynamics import DynamicsTrainConfig, train_dynamics
from learned_control.training.mbrl import random_episodes
from learned_control.utils import seed_everything

TARGET = 95.0
"""Minimum % of the planner's return (normalized score where returns are negative)."""


@dataclass
class Recipe:
    """Per-task settings of the bench.

    Attributes:
        model: ``EnsembleDynamics`` keyword arguments (members, hid_size, num_layers, activation).
        random_steps: budget of the initial uniform-random data, env steps (whole episodes).
        rounds: planner data-collection rounds before the final fit.
        episodes_per_round: planner episodes per round.
        epochs: dynamics training epochs per fit (no early stopping; best epoch restored).
        normalized: report the normalized score (returns can be negative) instead of % of raw.
        dagger: DAgger settings (iterations, episodes, BC hyperparameters).
        latency_episodes: planner-driven episodes whose observations are timed.
    """

    model: dict
    random_steps: int
    rounds: int
    episodes_per_round: int
    epochs: int
    normalized: bool
    dagger: DAggerConfig = field(default_factory=DAggerConfig)
    latency_episodes: int = 1


def distill_dagger(iterations: int, episodes: int, eval_episodes: int,
                   bc_epochs: int) -> DAggerConfig:
    """DAgger settings of the bench: ``episodes`` planner demo episodes and as many learner
    rollouts per iteration, the last iterate returned (no validation episodes, as measured) and
    BC on every sample (no validation split)."""
    return DAggerConfig(iterations=iterations, demo_episodes=episodes, rollout_episodes=episodes,
                        eval_episodes=eval_episodes, validation_episodes=0,
                        bc=BCConfig(epochs=bc_epochs, val_fraction=0.0))


RECIPES = {
    "InvertedPendulum-v5": Recipe(
        model=dict(members=5, hid_size=64, num_layers=2, activation="relu"), random_steps=2000,
        rounds=3, episodes_per_round=2, epochs=200, normalized=False,
        dagger=distill_dagger(iterations=3, episodes=1, eval_episodes=5, bc_epochs=100),
        latency_episodes=1),  # 1000 steps when it balances
    "Reacher-v5": Recipe(
        model=dict(members=5, hid_size=200, num_layers=3, activation="silu"), random_steps=5000,
        rounds=1, episodes_per_round=5, epochs=60, normalized=True,
        dagger=distill_dagger(iterations=4, episodes=4, eval_episodes=10, bc_epochs=200),
        latency_episodes=4),  # 50 steps each
}


def fit_dynamics(task: Task, recipe: Recipe, seed: int) -> tuple[EnsembleDynamics, dict]:
    """The ensemble of step 1 (module docstring) and what it was trained on."""
    env = task.make_env()
    random = random_episodes(task, recipe.random_steps, 50000 + seed)
    planner: list[Episode] = []
    config = DynamicsTrainConfig(epochs=recipe.epochs, patience=0)
    rounds = []
    for r in range(recipe.rounds + 1):
        seed_everything(seed)  # initial weights, as the learner node does
        model = EnsembleDynamics(task.obs_dim, task.act_dim, **recipe.model)
        history = train_dynamics(model, Transitions.from_episodes(planner + random), config, seed)
        if r == recipe.rounds:
            break
        mpc = planner_for_task(model, task, seed=seed)
        new = rollout_episodes(mpc, env, recipe.episodes_per_round, 40000 + 100 * r, progress=False)
        planner += new
        rounds.append([round(float(e.episode_return), 2) for e in new])
        print(f"  {task.name} dynamics round {r + 1}: planner episode returns {rounds[-1]}",
              flush=True)
    env.close()
    info = {"random_transitions": sum(map(len, random)), "random_episodes": len(random),
            "planner_transitions": sum(map(len, planner)), "planner_round_returns": rounds,
            "best_epoch": history.best_epoch,
            "val_one_step_mse": history.val_one_step_mse[history.best_epoch]}
    return model, info


def time_side_by_side(planner: Actor, policy: Actor, task: Task, episodes: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per ``act(obs)`` of ``planner`` and ``policy`` on the same observations, shape
    ``(steps,)`` each, along planner-driven episodes (reset seeds 30000, 30001, ...)."""
    times: tuple[list[float], list[float]] = ([], [])

    class _Both:
        def reset(self) -> None:
            planner.reset()
            policy.reset()

        def act(self, obs: np.ndarray) -> np.ndarray:
            out = {}
            for k in ((0, 1) if len(times[0]) % 2 == 0 else (1, 0)):
                actor = (planner, policy)[k]
                start = time.perf_counter()
                out[k] = actor.act(obs)
                times[k].append(time.perf_counter() - start)
            return out[0]

    env = task.make_env()
    for i in range(episodes):
        run_episode(_Both(), env, 30000 + i)
    env.close()
    return np.array(times[0]), np.array(times[1])


def percent(result: DAggerResult, mean: float, normalized: bool) -> float:
    return result.normalized(mean) if normalized else result.percent_of_expert(mean)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seed", type=int, default=0, help="seed of data, training, evaluation")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default="runs/bench_distill",
                        help="folder for checkpoints, plots and distill.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=160)
    rows, start = [], time.perf_counter()
    for name in args.tasks:
        task, recipe, t0 = get_task(name), RECIPES[name], time.perf_counter()
        model, info = fit_dynamics(task, recipe, args.seed)
        path = save_checkpoint(out / f"dynamics_{name}.pt", model, name,
                               metadata={"trainer": "bench/distill.py", **info})
        info["dynamics_wall_s"] = time.perf_counter() - t0
        console.print(f"{name}: dynamics trained on {info['random_transitions']} random + "
                      f"{info['planner_transitions']} planner transitions in "
                      f"{info['dynamics_wall_s']:.0f} s")
        expert = load_actor(f"cem:{path}", task)
        recipe.dagger.seed = recipe.dagger.bc.seed = args.seed
        result = run_dagger(task, expert, recipe.dagger, progress=False)
        console.print(dagger_table(result, f"DAgger from the CEM planner on {name}"))
        plot_dagger(result, out / f"distill_{name}.png", f"DAgger from the CEM planner on {name}")
        planner_s, policy_s = time_side_by_side(expert, result.policy, task,
                                                recipe.latency_episodes)
        rows.append({
            "task": name, "planner": result.expert.summary(),
            "policy": result.final.result.summary(),
            "random": result.random.summary(), "bc_equal": result.bc_equal.result.summary(),
            "samples": result.final.data_size,
            "percent": percent(result, result.final.result.mean, recipe.normalized),
            "metric": "normalized" if recipe.normalized else "% of raw",
            "planner_ms": [1e3 * np.median(planner_s), 1e3 * np.percentile(planner_s, 99)],
            "policy_ms": [1e3 * np.median(policy_s), 1e3 * np.percentile(policy_s, 99)],
            "timed_steps": len(planner_s), "dynamics": info, "wall_s": time.perf_counter() - t0})
        console.print(f"{name}: {rows[-1]['wall_s']:.0f} s")
    table = Table(title=f"CEM planner distilled by DAgger (target >= {TARGET:.0f}% of planner)")
    for col in ("task", "planner return", "policy return", "random", "% of planner",
                "planner ms p50 / p99", "policy ms p50 / p99", "latency ratio", "target"):
        table.add_column(col, justify="left" if col == "task" else "right", no_wrap=col == "task")
    for row in rows:
        p, q, r = row["planner"], row["policy"], row["random"]
        met = row["percent"] >= TARGET and row["policy_ms"][0] < row["planner_ms"][0]
        row["met"] = bool(met)
        table.add_row(row["task"], f"{p['mean']:.2f} ± {p['std']:.2f}",
                      f"{q['mean']:.2f} ± {q['std']:.2f}", f"{r['mean']:.2f}",
                      f"{row['percent']:.1f} ({row['metric']})",
                      f"{row['planner_ms'][0]:.2f} / {row['planner_ms'][1]:.2f}",
                      f"{row['policy_ms'][0]:.3f} / {row['policy_ms'][1]:.3f}",
                      f"{row['planner_ms'][0] / row['policy_ms'][0]:.0f}x",
                      "MET" if met else "NOT MET")
    console.print(table)
    wall = time.perf_counter() - start
    console.print(f"evaluation episodes per policy: "
                  f"{', '.join(f'{n} {RECIPES[n].dagger.eval_episodes}' for n in args.tasks)}; "
                  f"latency over {', '.join(str(r['timed_steps']) for r in rows)} observations; "
                  f"threads {args.threads}; wall {wall:.0f} s")
    (out / "distill.json").write_text(json.dumps({"rows": rows, "wall_s": wall}, indent=1,
                                                 default=float))
    console.print(f"plots and checkpoints: {out}")
    return 0 if all(row["met"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
