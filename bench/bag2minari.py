"""bag2minari conversion rate beside reading the same bag with rosbags alone, in one run.

For each kind of bag (the pendulum's robot spec topics: JointState sources and a
Float64MultiArray command; the standard observation/command topics), ``--steps`` steps in
episodes of 1000 with a reward and a summary each are written to an mcap bag
(:func:`episodes_to_bag`). Then, alternated ``--repeats`` times, best of each:

- the floor: open the bag with rosbags' ``Reader`` and deserialise every message it holds
  (what any converter must do at least);
- the conversion: :func:`convert_bag` from the same bag (read, assemble, pair, check, build the
  episodes), as ``bag2minari`` runs it (without the Minari write, which does not depend on the
  bag).

Prints steps/s of both and the ratio; target: conversion >= 50% of the floor's rate; exits 1 when
missed. Saves ``rates.png`` in the run directory it prints.

Run: ``.venv/bin/python bench/bag2minari.py [--steps 20000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from learned_control.data.bags import typestore
from learned_control.data.episodes import Episode
from learned_control.data.robot_bags import convert_bag, episodes_to_bag
from learned_control.specs import default_specs
from learned_control.tasks import get_task

TARGET = 0.5
"""Conversion rate / floor rate to reach."""


def episodes(task, steps: int, rng: np.random.Generator) -> list[Episode]:
    """Episodes of 1000 steps (the last one shorter) of random values of the task's sizes."""
    out = []
    while steps > 0:
        n = min(1000, steps)
        obs, acts = rng.normal(size=(n + 1, task.obs_dim)), rng.normal(size=(n, task.act_dim))
        out.append(Episode(obs, acts, rng.normal(size=n), np.zeros(n, bool),
                           np.eye(1, n, n - 1, dtype=bool)[0]))
        steps -= n
    return out


def floor(path: Path) -> float:
    """Seconds to read and deserialise every message of the bag with rosbags."""
    from rosbags.rosbag2 import Reader

    store = typestore()
    start = time.perf_counter()
    with Reader(path) as reader:
        for conn, _, raw in reader.messages():
            store.deserialize_cdr(raw, conn.msgtype)
    return time.perf_counter() - start


def convert(path: Path, task, specs) -> tuple[float, int]:
    """Seconds to convert the bag, and the steps converted."""
    start = time.perf_counter()
    result = convert_bag(path, task, specs)
    return time.perf_counter() - start, sum(len(ep) for ep in result.episodes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="steps per bag")
    parser.add_argument("--repeats", type=int, default=3, help="alternated timings, best kept")
    parser.add_argument("--runs-dir", default="runs", help="where the plot goes")
    args = parser.parse_args()
    task = get_task("InvertedPendulum-v5")
    specs = default_specs(task.name)
    eps = episodes(task, args.steps, np.random.default_rng(0))
    run_dir = Path(args.runs_dir) / f"bench-bag2minari-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in (("spec topics", specs), ("standard topics", None)):
            path = episodes_to_bag(Path(tmp) / name.replace(" ", "_"), eps, task, spec, "mcap")
            floors, converts = [], []
            for _ in range(args.repeats):
                floors.append(floor(path))
                seconds, steps = convert(path, task, spec)
                converts.append(seconds)
            assert steps == args.steps, (steps, args.steps)
            floor_rate, rate = args.steps / min(floors), args.steps / min(converts)
            ratio = rate / floor_rate
            ok &= ratio >= TARGET
            rows.append((name, floor_rate, rate, ratio))
    print(f"{'bag':<16} {'rosbags read (floor)':>21} {'bag2minari':>12} {'ratio':>7}  "
          f"({args.steps} steps, mcap, best of {args.repeats})")
    for name, floor_rate, rate, ratio in rows:
        print(f"{name:<16} {floor_rate:>15.0f} st/s {rate:>7.0f} st/s {ratio:>6.0%}  "
              f"{'met' if ratio >= TARGET else 'MISSED'} (target >= {TARGET:.0%})")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r[1] for r in rows], 0.4, label="rosbags read + deserialise (floor)")
    ax.bar(x + 0.2, [r[2] for r in rows], 0.4, label="bag2minari conversion")
    ax.set_xticks(x, [r[0] for r in rows])
    ax.set_ylabel("steps / s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "rates.png")
    print(f"plot: {run_dir / 'rates.png'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
