"""BC training throughput: our trainer vs the plain TensorDataset + DataLoader loop.

Same data (a Pusher-sized synthetic set: 23-D observations, 7-D actions from a fixed
nonlinear expert plus noise), same train/validation split and normalizer statistics, same
network (MLP 64 x 2, ReLU), same Adam lr and epochs, measured one after the other in this run.
The plain loop is Adam on the MSE of normalized data, batches from
``DataLoader(TensorDataset(X, Y), batch_size, shuffle=True)``. Our time includes a validation pass
after every epoch; the plain loop is timed without one.
Each pair is run ``--repeats`` times, alternating, and the median samples/s of each is printed
(the cores are shared, so single runs are noisy).

Usage: ``python bench/bc_train.py [--samples 100000] [--epochs 5] [--repeats 3]
[--torch-threads 1]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from learned_control.models.policies import MLPPolicy
from learned_control.training.bc import BCConfig, split_indices, train_bc


def synthetic_pusher(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(samples, 23)`` observations and ``(samples, 7)`` actions in [-2, 2]."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(samples, 23)) * rng.uniform(0.1, 3.0, size=23)
    w1, w2 = rng.normal(size=(23, 32)) / 5, rng.normal(size=(32, 7)) / 3
    act = 2 * np.tanh(np.tanh(obs @ w1) @ w2) + 0.05 * rng.normal(size=(samples, 7))
    return obs.astype(np.float32), act.astype(np.float32)


def plain_loop(obs: np.ndarray, act: np.ndarray, config: BCConfig) -> tuple[float, float]:
    """The plain TensorDataset + DataLoader loop; returns (samples/s, final validation MSE)."""
    train_idx, val_idx = split_indices(len(obs), config.val_fraction, config.seed)
    x, y = torch.as_tensor(obs), torch.as_tensor(act)
    x_mean, x_std = x[train_idx].mean(0), x[train_idx].std(0, unbiased=False) + 1e-5
    y_mean, y_std = y[train_idx].mean(0), y[train_idx].std(0, unbiased=False) + 1e-5
    xn, yn = (x - x_mean) / x_std, (y - y_mean) / y_std
    torch.manual_seed(config.seed)
    policy = MLPPolicy(obs.shape[1], act.shape[1], hid_size=64, num_layers=2)
    net = policy.net
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    loader = DataLoader(TensorDataset(xn[train_idx], yn[train_idx]), batch_size=config.batch_size,
                        shuffle=True)
    start = time.perf_counter()
    for _ in range(config.epochs):
        for xb, yb in loader:
            loss = torch.nn.functional.mse_loss(net(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        val = torch.nn.functional.mse_loss(net(xn[val_idx]), yn[val_idx]).item()
    return len(train_idx) * config.epochs / seconds, val


def ours(obs: np.ndarray, act: np.ndarray, config: BCConfig) -> tuple[float, float]:
    torch.manual_seed(config.seed)
    policy = MLPPolicy(obs.shape[1], act.shape[1], hid_size=64, num_layers=2)
    result = train_bc(policy, obs, act, config, progress=False)
    return result.samples_per_second, result.val_losses[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000,
                        help="dataset size (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs per run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating runs of each loop; medians are printed "
                             "(default: %(default)s)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads for both (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    obs, act = synthetic_pusher(args.samples)
    print(f"BC training throughput, {args.samples} samples (23 -> 7, MLP 64x2), {args.epochs} "
          f"epochs, median of {args.repeats} alternating runs, {args.torch_threads} thread(s), "
          f"torch {torch.__version__}")
    header = (f"{'batch':>6} {'ours samples/s':>15} {'plain samples/s':>16} {'ratio':>6} "
              f"{'ours val MSE':>13} {'plain val MSE':>14} {'val diff':>9}")
    print(header)
    print("-" * len(header))
    met = False
    for batch in (256, 1024):
        config = BCConfig(epochs=args.epochs, batch_size=batch, val_fraction=0.1, seed=0)
        runs = [(ours(obs, act, config), plain_loop(obs, act, config))
                for _ in range(args.repeats)]
        ours_sps = float(np.median([o[0] for o, _ in runs]))
        plain_sps = float(np.median([u[0] for _, u in runs]))
        ours_val, plain_val = runs[0][0][1], runs[0][1][1]  # seeded: the same in every repeat
        print(f"{batch:>6} {ours_sps:>15.0f} {plain_sps:>16.0f} {ours_sps / plain_sps:>5.2f}x "
              f"{ours_val:>13.5f} {plain_val:>14.5f} {100 * (ours_val / plain_val - 1):>+8.1f}%")
        met = ours_sps / plain_sps >= 3 and abs(ours_val / plain_val - 1) <= 0.05  # batch 1024
    print(f"target: ratio >= 3x at batch 1024 with validation loss within 5%: "
          f"{'MET' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
