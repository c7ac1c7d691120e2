"""DAgger vs plain BC with the shared TQC experts on Hopper-v5, Walker2d-v5 and HalfCheetah-v5.

Expert returns quoted from ``../shared/experts/README.md`` (TQC trained on the v3 envs, 10 seeded
deterministic episodes on v5): HalfCheetah 12103 (std 123), Hopper 3547 (std 298), Walker2d 4499
(std 27); they are measured again here in the same run.
Target: DAgger >= 90% of the expert on all three.

    .venv/bin/python bench/dagger.py

(defaults: 128 x 3 ReLU MLP, BC 200 epochs, batch 256, lr 1e-3; 5 demo episodes, 8 iterations of
5 learner episodes, beta 0; the returned policy is the iterate best on 10 learner-only validation
episodes (seeds 30000..30009); 10 evaluation episodes, seeds 0..9; 1 torch thread). Measured with
these defaults, one task after another on a shared 2-core CPU, 20 min in all; mean return over the
10 evaluation episodes (% of expert):

    task            expert    BC equal data     DAgger returned (iteration)
    Hopper-v5       3547.2    1450.3 (40.9%)    3648.9 (102.9%, iter 8)
    Walker2d-v5     4498.8    1856.3 (41.3%)    4562.6 (101.4%, iter 6)
    HalfCheetah-v5  12103.3   10615.6 (87.7%)   11557.9 (95.5%, iter 5)

By iteration (% of expert, iteration 0 = BC on the demos) the return swings, since every
iteration retrains from scratch: Walker2d 36.7 17.6 76.2 86.5 72.7 98.6 101.4 49.8 84.3 (the last
iterate alone would miss 90%), Hopper 38.0 9.1 8.7 67.3 46.5 102.8 44.2 76.9 102.9, HalfCheetah
40.4 28.9 74.9 85.9 95.4 95.5 95.5 88.1 96.6. Selecting on validation, as Ross et al. (2011) do, is
what makes the result dependable; 5 validation episodes were too few (a first run with 5 picked
Walker2d's iteration 3, 86.5%, whose falls its validation seeds happened to miss), hence 10.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
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
        console.print(f"{name}: DAgger ({result.final.name}, best on validation) {pct:.1f}% of expert "
                      f"({'meets' if pct >= 90 else 'misses'} the 90% target)")


if __name__ == "__main__":
    main()
