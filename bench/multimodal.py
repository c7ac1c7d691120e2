"""Multimodal benchmark on the PointMaze forks: which policy classes keep both routes.

Per fork map (``narrow`` and ``wide``, :data:`learned_control.envs.pointmaze_fork.FORK_MAPS`):
collects expert demonstrations from random start cells into a local Minari dataset, trains
every policy class on them with the shared BC trainer at the ``multimodal`` preset
(:data:`learned_control.models.policy_classes.PRESETS`, the table ``learned-control train-bc
--preset multimodal`` uses), and prints per class (expert first): success and clean rate
(success with no wall contact) over seeded episodes from random starts and from the exact tie
start, the share of each route from the tie, and act latency (batch 1, CPU: mean ms per action
with chunks amortized, and ms of a call that predicts a chunk). Then the maps side by side, and
the targets: exits 1 when one is missed. Saves the actions sampled at the tie point per class
and one rollout per route as pictures, and every figure as ``results.json``, in the run directory.

    python bench/multimodal.py [--maps narrow wide] [--classes discrete ...] [--demos 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from learned_control.data.minari_io import load_transitions, save_episodes  # noqa: E402
from learned_control.envs.pointmaze_fork import (FORK_MAPS, ForkExpert,  # noqa: E402
                                                 WallContacts, expert_demos, fork_map_of,
                                                 make_fork_env, reset_fork, route_of,
                                                 run_episode)
from learned_control.models.policy_classes import POLICY_CLASSES, PRESETS  # noqa: E402
from learned_control.models.policy_classes import make_policy  # noqa: E402
from learned_control.training.bc import BCConfig, bc_targets, train_bc  # noqa: E402
from learned_control.utils import new_run_dir  # noqa: E402

CLASSES = ("mse", "gaussian", "mixture", "cvae", "discrete", "diffusion")
PRESET = PRESETS["multimodal"]
MAX_MS_PER_ACT = 5.0
TARGETS = {  # class -> (success, tie clean, each route from the tie) lower bounds, on every map
    "mixture": (0.95, 0.90, 0.10),
    "cvae": (0.85, 0.80, 0.0),
    "discrete": (0.85, 0.80, 0.0),
    "diffusion": (0.95, 0.90, 0.10),
}


def evaluate_actor(env, actor, reset, episodes: int, tie_episodes: int, seed: int) -> dict:
    """Success / clean rates from random starts and from the tie, route shares, rollouts."""
    fork_map = fork_map_of(env)
    contacts, rng = WallContacts(env), np.random.default_rng(seed + 7)
    rows = []
    for i in range(episodes):
        cell = fork_map.free_cells[int(rng.integers(len(fork_map.free_cells)))]
        reset(cell, i)
        rows.append(run_episode(env, actor, cell, seed + 10_000 + i, contacts))
    tie = []
    for i in range(tie_episodes):
        reset(fork_map.tie, 1000 + i)
        tie.append(run_episode(env, actor, fork_map.tie, seed + 20_000 + i, contacts))

    def rates(eps):
        return (float(np.mean([e["success"] for e in eps])),
                float(np.mean([e["success"] and e["contacts"] == 0 for e in eps])))

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


def row(name: str, r: dict) -> str:
    return (f"{name:10s} {r['random'][0]:5.0%} {r['random'][1]:5.0%} | {r['tie'][0]:8.0%} "
            f"{r['tie'][1]:9.0%} {r['left']:5.0%} {r['right']:5.0%} | {r['ms'][0]:6.2f} "
            f"{r['ms'][1]:7.2f} {r['train_s']:7.0f}")


def run_map(fork_map: str, args, run_dir) -> dict:
    """Every class of ``args.classes`` on one fork map: results per class (expert first)."""
    env = make_fork_env(fork_map)
    start = time.perf_counter()
    dataset_id = save_episodes(f"pointmaze-fork/{fork_map}-expert-{int(time.time())}-v0",
                               expert_demos(env, args.demos, args.seed), env,
                               algorithm_name="ForkExpert")
    data, _ = load_transitions(dataset_id)
    print(f"\n== map {fork_map}: dataset {dataset_id}: {len(data)} transitions from "
          f"{args.demos} demos ({time.perf_counter() - start:.0f} s)", flush=True)

    expert = ForkExpert(env, seed=args.seed + 1)
    results = {"expert": evaluate_actor(env, expert, lambda cell, _i: expert.reset(cell),
                                        args.episodes, args.tie_episodes, args.seed)}
    results["expert"].update(ms=(float("nan"), float("nan")), train_s=float("nan"))
    tie_obs = reset_fork(env, fork_map_of(env).tie, 0)
    samples = {}
    print(f"{'class':10s} {'succ':>5s} {'clean':>5s} | {'tie succ':>8s} {'tie clean':>9s} "
          f"{'left':>5s} {'right':>5s} | {'ms/act':>6s} {'ms/pred':>7s} {'train s':>7s}",
          flush=True)
    print(row("expert", results["expert"]), flush=True)
    low, high = env.action_space.low, env.action_space.high
    for name in args.classes:
        preset = PRESET[name]
        extra = {} if name == "mse" else {"seed": args.seed, "chunk_size": preset.chunk_size,
                                          "execute_steps": preset.execute_steps}
        torch.manual_seed(args.seed)
        policy = make_policy(name, data.obs_dim, data.act_dim, low, high,
                             hid_size=preset.hid_size, num_layers=preset.num_layers,
                             **extra, **preset.options)
        config = BCConfig(epochs=args.epochs or preset.epochs, batch_size=preset.batch_size,
                          lr=preset.lr, seed=args.seed)
        t0 = time.perf_counter()
        train_bc(policy, data.observations, bc_targets(data, policy), config, progress=False)
        train_s = time.perf_counter() - t0

        def reset(_cell, i, policy=policy):
            policy.reset(seed=i)

        r = evaluate_actor(env, policy.act, reset, args.episodes, args.tie_episodes, args.seed)
        r.update(ms=latency_ms(policy, tie_obs), train_s=train_s)
        results[name] = r
        samples[name] = policy.act(np.repeat(tie_obs[None], 200, axis=0))
        print(row(name, r), flush=True)
    plot_map(fork_map, env, results, samples, run_dir)
    env.close()
    return results


def plot_map(fork_map: str, env, results: dict, samples: dict, run_dir) -> None:
    """``tie_actions_<map>.png`` (actions sampled at the tie per class) and
    ``tie_rollouts_<map>.png`` (one rollout per route of the expert, mixture, discrete and
    diffusion)."""
    fig, axes = plt.subplots(1, max(len(samples), 1), figsize=(3 * max(len(samples), 1), 3),
                             squeeze=False)
    for ax, (name, acts) in zip(axes[0], samples.items()):
        ax.scatter(acts[:, 0], acts[:, 1], s=4)
        ax.set(title=name, xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xlabel="force x")
    axes[0][0].set_ylabel("force y")
    fig.suptitle(f"actions sampled at the tie start ({fork_map} map)")
    fig.tight_layout()
    fig.savefig(run_dir / f"tie_actions_{fork_map}.png", dpi=100)
    plt.close(fig)
    spec = fork_map_of(env)
    half = np.array([len(spec.rows[0]), len(spec.rows)]) / 2 - 1
    fig, ax = plt.subplots(figsize=(4, 4))
    for cls, r in results.items():
        for route, xy in r["rollouts"].items():
            if cls in ("expert", "mixture", "discrete", "diffusion"):
                ax.plot(xy[:, 0], xy[:, 1], label=f"{cls} {route}")
    lo, hi = spec.block
    ax.add_patch(plt.Rectangle(tuple(lo), *(hi - lo), color="gray"))
    ax.set(xlim=(-half[0], half[0]), ylim=(-half[1], half[1]), aspect="equal",
           title=f"rollouts from the tie ({fork_map} map)")
    ax.legend(fontsize=6)
    fig.savefig(run_dir / f"tie_rollouts_{fork_map}.png", dpi=100)
    plt.close(fig)


def missed_targets(by_map: dict) -> list[str]:
    """Every target missed, as ``map class: what``."""
    missed = []
    for fork_map, results in by_map.items():
        for name, r in results.items():
            if name == "expert":
                continue
            if r["ms"][0] > MAX_MS_PER_ACT:
                missed.append(f"{fork_map} {name}: {r['ms'][0]:.2f} ms per act > "
                              f"{MAX_MS_PER_ACT}")
            if name not in TARGETS:
                continue
            success, tie_clean, route = TARGETS[name]
            if r["random"][0] < success:
                missed.append(f"{fork_map} {name}: success {r['random'][0]:.0%} < {success:.0%}")
            if r["tie"][1] < tie_clean:
                missed.append(f"{fork_map} {name}: tie clean {r['tie'][1]:.0%} < "
                              f"{tie_clean:.0%}")
            if min(r["left"], r["right"]) < route:
                missed.append(f"{fork_map} {name}: a route from the tie under {route:.0%}")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=list(FORK_MAPS), choices=sorted(FORK_MAPS),
                        help="fork maps (default: all)")
    parser.add_argument("--classes", "--policies", nargs="+", default=list(CLASSES),
                        choices=sorted(POLICY_CLASSES), help="policy classes (default: all)")
    parser.add_argument("--demos", type=int, default=500, help="expert demonstrations")
    parser.add_argument("--episodes", type=int, default=100, help="eval episodes, random starts")
    parser.add_argument("--tie-episodes", type=int, default=20, help="eval episodes from the tie")
    parser.add_argument("--epochs", type=int, default=None,
                        help="BC epochs of every class (default: the preset's per class)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs", help="runs directory")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run_dir = new_run_dir(args.out, "multimodal")
    print(f"run directory: {run_dir}", flush=True)
    for name in args.classes:
        print(f"{name}: {PRESET[name].describe()}"
              + (f" (epochs {args.epochs} given)" if args.epochs else ""), flush=True)
    os.environ.setdefault("MINARI_DATASETS_PATH", tempfile.mkdtemp(prefix="minari_"))
    start = time.perf_counter()
    by_map = {fork_map: run_map(fork_map, args, run_dir) for fork_map in args.maps}

    print("\n== side by side: success / clean / tie clean / left-right from the tie", flush=True)
    print(f"{'class':10s} " + " ".join(f"{m:>28s}" for m in args.maps))
    for name in ("expert", *args.classes):
        cells = []
        for fork_map in args.maps:
            r = by_map[fork_map][name]
            cells.append(f"{r['random'][0]:4.0%} {r['random'][1]:4.0%} {r['tie'][1]:4.0%} "
                         f"{r['left']:4.0%}/{r['right']:<4.0%}")
        print(f"{name:10s} " + " ".join(f"{c:>28s}" for c in cells))
    (run_dir / "results.json").write_text(json.dumps(
        {m: {c: {k: v for k, v in r.items() if k != "rollouts"} for c, r in res.items()}
         for m, res in by_map.items()}, indent=1))
    missed = missed_targets(by_map)
    print(f"pictures and results.json in {run_dir}; total {time.perf_counter() - start:.0f} s")
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
