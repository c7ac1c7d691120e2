"""Behavior cloning on Pusher-v5 against its expert: expert, BC and random in one run.

1. The SB3 expert (``--expert``, e.g. RUN_DIR/expert.zip of ``bench/pusher_expert.sh``) records
   ``--episodes`` episodes (reset seeds 0, 1, ...) with ``learned-control collect``'s code under
   Minari's public id ``mujoco/pusher/expert-v0`` (a locally made stand-in, in a temporary
   ``$MINARI_DATASETS_PATH`` unless ``--minari-path``); the BC data is read back with
   ``minari.load_dataset`` as a user's script does.
2. Ours: ``train-bc``'s trainer (MLP ``--hid-size`` x ``--num-layers``, ReLU, normalized inputs and
   targets, Adam, MSE), exported to the seed's saved-dict format and loaded back from it; the
   loaded file is what is evaluated.
3. The seed's plain recipe on the same data, written out below: its network (hidden ReLU layers,
   then ``out``; 64 x 2 as in its saved files), standardizing with mean and std + 1e-5 of all the
   data, a shuffled ``DataLoader``, Adam lr 1e-3, MSE, the same epochs and batch size as ours
   unless ``--seed-epochs``/``--seed-batch-size``; saved as its dict and loaded with our loader.
4. Expert, both BC policies and uniform random actions play ``--eval-episodes`` seeded episodes
   (reset seeds from ``--eval-seed``, none seen in the data). Normalized score
   ``100 * (policy - random) / (expert - random)`` on mean returns.

Prints the raw returns and normalized scores, saves ``pusher_bc.png`` and ``pusher_bc.json`` in
``--out``, and exits 1 when ours scores below ``--target`` (default 95).

Usage: ``python bench/pusher_bc.py --expert /tmp/runs-pusher/expert/expert.zip [--episodes 100]
[--eval-episodes 100] [--epochs 100] [--out /tmp/pusher-bc]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

DATASET = "mujoco/pusher/expert-v0"


class SeedNet(nn.Module):
    """The seed's fully connected net: ``(input_dim, output_dim, hid_size, num_layers)``."""

    def __init__(self, input_dim: int, output_dim: int, hid_size: int, num_layers: int) -> None:
        super().__init__()
        sizes = [input_dim] + [hid_size] * num_layers
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(sizes[-1], output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


def seed_recipe(dataset, hid_size: int, num_layers: int, epochs: int, batch_size: int,
                seed: int, path: Path) -> float:
    """Train by the seed's plain loop on a Minari dataset and save its dict; returns seconds."""
    start = time.perf_counter()
    x = np.concatenate([ep.observations[:-1] for ep in dataset.iterate_episodes()])
    y = np.concatenate([ep.actions for ep in dataset.iterate_episodes()])
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    x_mean, x_std = x.mean(0), x.std(0) + 1e-5
    y_mean, y_std = y.mean(0), y.std(0) + 1e-5
    torch.manual_seed(seed)
    net = SeedNet(x.shape[1], y.shape[1], hid_size, num_layers)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset((x - x_mean) / x_std, (y - y_mean) / y_std),
                        batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            loss = nn.functional.mse_loss(net(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    torch.save({"net": net.state_dict(), "hid_size": hid_size, "num_layers": num_layers,
                "X_mean": x_mean, "X_std": x_std, "Y_mean": y_mean, "Y_std": y_std}, path)
    return time.perf_counter() - start


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{n}\n{results[n]['normalized']:.1f}%" for n in names]
    ax.bar(labels, [results[n]["mean"] for n in names],
           yerr=[results[n]["std"] for n in names], capsize=4,
           color=["tab:gray", "tab:green", "tab:blue", "tab:red"][: len(names)])
    ax.set(ylabel="episode return (mean, std)", title=title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expert", required=True, help="SB3 zip of the Pusher-v5 expert")
    parser.add_argument("--episodes", type=int, default=100,
                        help="expert episodes recorded for BC (default: %(default)s)")
    parser.add_argument("--eval-episodes", type=int, default=100,
                        help="seeded evaluation episodes per policy (default: %(default)s)")
    parser.add_argument("--eval-seed", type=int, default=1000,
                        help="first evaluation reset seed (default: %(default)s)")
    parser.add_argument("--hid-size", type=int, default=256, help="ours (default: %(default)s)")
    parser.add_argument("--num-layers", type=int, default=2, help="ours (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=100, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, help="(default: %(default)s)")
    parser.add_argument("--seed-epochs", type=int, default=None,
                        help="the seed recipe's num_epochs (default: --epochs)")
    parser.add_argument("--seed-batch-size", type=int, default=None,
                        help="the seed recipe's batchsize (default: --batch-size)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    parser.add_argument("--target", type=float, default=95.0,
                        help="least normalized score of ours (default: %(default)s)")
    parser.add_argument("--minari-path", default=None,
                        help="MINARI_DATASETS_PATH to write the dataset in (default: a "
                             "temporary folder)")
    parser.add_argument("--out", default="/tmp/pusher-bc", help="(default: %(default)s)")
    parser.add_argument("--torch-threads", type=int, default=1, help="(default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["MINARI_DATASETS_PATH"] = args.minari_path or tempfile.mkdtemp(prefix="minari-")

    import minari

    from learned_control.actors import RandomActor, load_sb3_expert
    from learned_control.checkpoint import export_seed_format, load_checkpoint
    from learned_control.data.minari_io import load_transitions
    from learned_control.evaluation import evaluate
    from learned_control.tasks import get_task
    from learned_control.training.bc import BCConfig, mlp_policy_for, train_bc_run
    from learned_control.training.experts import collect_dataset

    task = get_task("Pusher-v5")
    expert = load_sb3_expert(args.expert, task)
    if DATASET in minari.list_local_datasets():
        minari.delete_dataset(DATASET)
    collect_dataset(expert, task, DATASET, args.episodes, seed=0,
                    algorithm_name=f"SB3/{expert.algo.upper()}")
    dataset = minari.load_dataset(DATASET)
    print(f"dataset {DATASET}: {dataset.total_episodes} episodes, {dataset.total_steps} steps, "
          f"in {os.environ['MINARI_DATASETS_PATH']} (locally made: "
          f"{dataset.storage.metadata.get('locally_made')})")

    transitions, _ = load_transitions(DATASET, task)
    torch.manual_seed(args.seed)
    policy = mlp_policy_for(task, args.hid_size, args.num_layers)
    config = BCConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    start = time.perf_counter()
    result, _ = train_bc_run(policy, transitions, task, config, out / "ours", progress=True)
    ours_s = time.perf_counter() - start
    exported = export_seed_format(policy, out / "ours_seed_format.pt")
    ours = load_checkpoint(exported, action_low=task.action_low,
                           action_high=task.action_high).model
    obs = transitions.observations[:1000]
    assert np.allclose(ours.act(obs), policy.act(obs), atol=1e-5), "seed-format round trip"

    seed_s = seed_recipe(dataset, 64, 2, args.seed_epochs or args.epochs,
                         args.seed_batch_size or args.batch_size, args.seed,
                         out / "seed_recipe.pt")
    seed_policy = load_checkpoint(out / "seed_recipe.pt", action_low=task.action_low,
                                  action_high=task.action_high).model

    env = task.make_env()
    actors = {"expert": expert, f"ours {args.hid_size}x{args.num_layers}": ours,
              "seed recipe 64x2": seed_policy,
              "random": RandomActor(task.action_low, task.action_high, seed=args.seed)}
    evals = {name: evaluate(actor, env, args.eval_episodes, args.eval_seed, progress=True)
             for name, actor in actors.items()}
    lo, hi = evals["random"].mean, evals["expert"].mean
    results = {name: {"mean": r.mean, "std": r.std, "normalized": 100 * (r.mean - lo) / (hi - lo)}
               for name, r in evals.items()}
    print(f"\nPusher-v5, {args.episodes} expert episodes ({len(transitions)} samples), "
          f"{args.eval_episodes} evaluation episodes (seeds from {args.eval_seed}), "
          f"{args.epochs} epochs; train time ours {ours_s:.1f} s (val MSE "
          f"{result.val_losses[-1]:.4f}), seed recipe {seed_s:.1f} s")
    print(f"{'policy':>22} {'return mean':>12} {'std':>7} {'normalized':>11}")
    for name, r in results.items():
        print(f"{name:>22} {r['mean']:>12.2f} {r['std']:>7.2f} {r['normalized']:>10.1f}%")
    ours_score = results[f"ours {args.hid_size}x{args.num_layers}"]["normalized"]
    print(f"target: ours >= {args.target:.0f}% of expert (normalized): "
          f"{'met' if ours_score >= args.target else 'MISSED'} ({ours_score:.1f}%)")
    plot(results, out / "pusher_bc.png",
         f"BC on Pusher-v5 from {args.episodes} expert episodes ({args.eval_episodes} eval eps)")
    (out / "pusher_bc.json").write_text(json.dumps(
        {"args": vars(args), "results": results, "train_s": {"ours": ours_s, "seed": seed_s}},
        indent=2))
    print(f"plot: {out / 'pusher_bc.png'}")
    return 0 if ours_score >= args.target else 1


if __name__ == "__main__":
    raise SystemExit(main())
