"""Multimodal benchmark on the PointMaze fork: which policy classes keep both routes.

Collects expert demonstrations from random start cells into a local Minari dataset, trains
every policy class on them with the shared BC trainer, and prints per class (expert first):
success and clean rate (success with no wall contact) over seeded episodes from random starts
and from the exact tie start, the share of each route from the tie, and act latency (batch 1,
CPU: mean ms per action with chunks amortized, and ms of a call that predicts a chunk). Every
class but mse predicts chunks of 4 actions and executes all 4 (``--chunk-size``,
``--execute-steps``). Saves the actions sampled at the tie point per class and one rollout per
route as pictures in the run directory.

    python bench/multimodal.py [--demos 500] [--epochs 60] [--out runs]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from learned_control.data.minari_io import load_transitions, save_episodes  # noqa: E402
from learned_control.envs.pointmaze_fork import (FREE_CELLS, TIE_CELL, ForkExpert,  # noqa: E402
                                                 WallContacts, expert_demos, make_fork_env,
                                                 reset_fork, route_of, run_episode)
from learned_control.models.policy_classes import POLICY_CLASSES, make_policy  # noqa: E402
from learned_control.training.bc import BCConfig, bc_targets, train_bc  # noqa: E402
from learned_control.utils import new_run_dir  # noqa: E402

CLASSES = ("mse", "gaussian", "mixture", "cvae", "discrete", "diffusion")


def evaluate_actor(env, actor, reset, episodes: int, tie_episodes: int, seed: int) -> dict:
    """Success / clean rates from random starts and from the tie, route shares, rollouts."""
    contacts, rng = WallContacts(env), np.random.default_rng(seed + 7)
    rows = []
    for i in range(episodes):
        cell = FREE_CELLS[int(rng.integers(len(FREE_CELLS)))]
        reset(cell, i)
        rows.append(run_episode(env, actor, cell, seed + 10_000 + i, contacts))
    tie = []
    for i in range(tie_episodes):
        reset(TIE_CELL, 1000 + i)
        tie.append(run_episode(env, actor, TIE_CELL, seed + 20_000 + i, contacts))

    def rates(eps):
        return (np.mean([e["success"] for e in eps]),
                np.mean([e["success"] and e["contacts"] == 0 for e in eps]))

    reached = {route_of(e["xy"][:, 0]): e["xy"] for e in tie if e["success"]}  # one per route
    routes = [route_of(e["xy"][:, 0]) for e in tie if e["success"]]
    return {"random": rates(rows), "tie": rates(tie),
            "left": routes.count("left") / len(tie), "right": routes.count("right") / len(tie),
            "rollouts": reached}


def latency_ms(policy, obs: np.ndarray, repeats: int = 200) -> tuple[float, float]:
    """Mean ms per ``act`` call at batch 1 (chunks amortized) and the median ms of a call that
    predicts a fresh chunk (what a controller waits at worst)."""
    calls, predictions = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        policy.act(obs)
        calls.append(time.perf_counter() - start)
    for _ in range(repeats // 4):
        policy.reset()  # empties the chunk queue
        start = time.perf_counter()
        policy.act(obs)
        predictions.append(time.perf_counter() - start)
    return 1000 * float(np.mean(calls)), 1000 * float(np.median(predictions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=500, help="expert demonstrations")
    parser.add_argument("--episodes", type=int, default=100, help="eval episodes, random starts")
    parser.add_argument("--tie-episodes", type=int, default=20, help="eval episodes from the tie")
    parser.add_argument("--epochs", type=int, default=60, help="BC epochs per class")
    parser.add_argument("--diffusion-epochs", type=int, default=200, help="BC epochs, diffusion")
    parser.add_argument("--discrete-epochs", type=int, default=20,
                        help="BC epochs, discrete (one pass per action dimension: 16 per chunk)")
    parser.add_argument("--batch-size", type=int, default=256, help="BC batch size")
    parser.add_argument("--chunk-size", type=int, default=4,
                        help="actions predicted per call by every class but mse")
    parser.add_argument("--execute-steps", type=int, default=4,
                        help="actions of each chunk executed before predicting again")
    parser.add_argument("--classes", nargs="+", default=list(CLASSES),
                        choices=sorted(POLICY_CLASSES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs", help="runs directory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    run_dir = new_run_dir(args.out, "multimodal")
    print(f"run directory: {run_dir}", flush=True)
    os.environ.setdefault("MINARI_DATASETS_PATH", tempfile.mkdtemp(prefix="minari_"))
    env = make_fork_env()

    start = time.perf_counter()
    dataset_id = save_episodes(f"pointmaze-fork/expert-{int(time.time())}-v0",
                               expert_demos(env, args.demos, args.seed), env,
                               algorithm_name="ForkExpert")
    data, _ = load_transitions(dataset_id)
    print(f"dataset {dataset_id}: {len(data)} transitions from {args.demos} demos "
          f"({time.perf_counter() - start:.0f} s)", flush=True)

    expert = ForkExpert(env, seed=args.seed + 1)
    results = {"expert": evaluate_actor(env, expert, lambda cell, _i: expert.reset(cell),
                                        args.episodes, args.tie_episodes, args.seed)}
    results["expert"]["ms"] = (float("nan"), float("nan"))
    tie_obs = reset_fork(env, TIE_CELL, 0)
    samples = {}
    header = (f"{'class':10s} {'succ':>5s} {'clean':>5s} | {'tie succ':>8s} {'tie clean':>9s} "
              f"{'left':>5s} {'right':>5s} | {'ms/act':>6s} {'ms/pred':>7s} {'train s':>7s}")
    print(header, flush=True)

    def row(name, r, train_s=float("nan")):
        print(f"{name:10s} {r['random'][0]:5.0%} {r['random'][1]:5.0%} | {r['tie'][0]:8.0%} "
              f"{r['tie'][1]:9.0%} {r['left']:5.0%} {r['right']:5.0%} | {r['ms'][0]:6.2f} "
              f"{r['ms'][1]:7.2f} "
              f"{train_s:7.0f}", flush=True)

    row("expert", results["expert"])
    low, high = env.action_space.low, env.action_space.high
    for name in args.classes:
        extra = {} if name == "mse" else {"seed": args.seed, "chunk_size": args.chunk_size,
                                          "execute_steps": args.execute_steps}
        policy = make_policy(name, data.obs_dim, data.act_dim, low, high, hid_size=256,
                             num_layers=3, **extra)
        epochs = {"diffusion": args.diffusion_epochs, "discrete": args.discrete_epochs}.get(
            name, args.epochs)
        t0 = time.perf_counter()
        train_bc(policy, data.observations, bc_targets(data, policy),
                 BCConfig(epochs=epochs, batch_size=args.batch_size, lr=1e-3, seed=args.seed),
                 progress=False)
        train_s = time.perf_counter() - t0

        def reset(_cell, i, policy=policy):
            policy.reset(seed=i) if name != "mse" else policy.reset()

        r = evaluate_actor(env, policy.act, reset, args.episodes, args.tie_episodes, args.seed)
        r["ms"] = latency_ms(policy, tie_obs)
        results[name] = r
        samples[name] = policy.act(np.repeat(tie_obs[None], 200, axis=0))
        row(name, r, train_s)

    fig, axes = plt.subplots(1, len(samples), figsize=(3 * len(samples), 3), squeeze=False)
    for ax, (name, acts) in zip(axes[0], samples.items()):
        ax.scatter(acts[:, 0], acts[:, 1], s=4)
        ax.set(title=name, xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xlabel="force x")
    axes[0][0].set_ylabel("force y")
    fig.suptitle("actions sampled at the tie start")
    fig.tight_layout()
    fig.savefig(run_dir / "tie_actions.png", dpi=100)
    fig, ax = plt.subplots(figsize=(4, 4))
    for cls, r in results.items():
        for route, xy in r["rollouts"].items():
            if cls in ("expert", "diffusion", "mixture"):
                ax.plot(xy[:, 0], xy[:, 1], label=f"{cls} {route}")
    ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, color="gray"))
    ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal", title="rollouts from the tie")
    ax.legend(fontsize=6)
    fig.savefig(run_dir / "tie_rollouts.png", dpi=100)
    print(f"pictures: {run_dir / 'tie_actions.png'}, {run_dir / 'tie_rollouts.png'}; "
          f"total {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
