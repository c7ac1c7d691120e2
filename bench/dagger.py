"""DAgger vs plain BC with the shared TQC experts on Hopper-v5, Walker2d-v5 and HalfCheetah-v5.

Expert returns quoted from ``../shared/experts/README.md`` (TQC trained on the v3 envs, 10 seeded
deterministic episodes on v5): HalfCheetah 12103 (std 123), Hopper 3547 (std 298), Walker2d 4499
(std 27); they are measured again here in the same run.
Target: DAgger >= 90% of the expert on all three.

    .venv/bin/python bench/dagger.py

(defaults: 128 x 3 ReLU MLP, BC 200 epochs, batch 256, lr 1e-3; 5 demo episodes, 8 iterations of
5 learner episodes, beta 0; the returned policy is the iterate best on 10 learner-only validation
episodes (seeds 30000..30009); 10 evaluation episodes, seeds 0..9; 1 torch thread). Prints
each task's table (mean return and % of expert per iteration) and exits non-zero when a task
misses the target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from rich.console import Console

from learned_control.actors import load_sb3_expert
from learned_control.tasks import get_task
from learned_control.training.bc import BCConfig
from learned_control.training.dagger import DAggerConfig, dagger_table, plot_dagger, run_dagger

EXPERTS = Path(__file__).resolve().parents[2] / "shared" / "experts"
TASKS = {"Hopper-v5": "tqc_Hopper.zip", "Walker2d-v5": "tqc_Walker2d.zip",
         "HalfCheetah-v5": "tqc_HalfCheetah.zip"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--demo-episodes", type=int, default=5)
    parser.add_argument("--rollout-episodes", type=int, default=5)
    parser.add_argument("--validation-episodes", type=int,
                        default=DAggerConfig().validation_episodes)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hid-size", type=int, default=128,
                        help="width of the policy MLP's hidden layers")
    parser.add_argument("--num-layers", type=int, default=3, help="hidden layers of the policy MLP")
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/bench_dagger")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(width=120)  # the table stays whole in a log file
    missed = 0
    for name in args.tasks:
        task = get_task(name)
        expert = load_sb3_expert(EXPERTS / TASKS[name], task)
        config = DAggerConfig(iterations=args.iterations, demo_episodes=args.demo_episodes,
                              rollout_episodes=args.rollout_episodes,
                              validation_episodes=args.validation_episodes,
                              eval_episodes=args.eval_episodes, beta=args.beta,
                              hid_size=args.hid_size, num_layers=args.num_layers,
                              bc=BCConfig(epochs=args.epochs, batch_size=args.batch_size,
                                          lr=args.lr, val_fraction=0.0, seed=args.seed),
                              seed=args.seed)
        result = run_dagger(task, expert, config)
        console.print(dagger_table(result, f"DAgger on {name}"))
        plot_dagger(result, out / f"dagger_{name}.png", f"DAgger on {name}")
        pct = result.percent_of_expert(result.final.result.mean)
        missed += pct < 90
        console.print(f"{name}: DAgger ({result.final.name}, best on validation) {pct:.1f}% of expert "
                      f"({'meets' if pct >= 90 else 'misses'} the 90% target)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
