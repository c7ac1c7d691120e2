"""CEM planner benchmark: the straightforward CEM loop vs ours, in one run.

Part 1, the :data:`WORKLOAD` (H=10, I=20, N=1000, K=200, one 2x100 ReLU net on
InvertedPendulum): time per plan of the straightforward CEM loop (samples batched, Python loops
over iterations and horizon, ``nn.Sequential`` + normalizer tensors), of our
:class:`MPCController` on the same workload, and of the workload's matrix products alone (the
floor: no sampling, reward or activation), alternated repeat by repeat; the ratio; and the share
of this machine's fp32 matmul peak (2048^2 matmul, same thread count, measured in this run) that
each reaches.

Part 2, each task's default planner config (``learned_control/config/<task>.yaml``) with the
ensemble its model would have, at the controller node's torch threads (``torch_threads: 1`` in
those files): p50/p99 per plan against the task's control period; beside it, for comparison, iCEM
with a quarter of the samples and elites (the default's other settings; not part of the target).

Part 3, the realtime tick beside the background planner
(:class:`~learned_control.runtime.background_planner.BackgroundPlanner`) at InvertedPendulum's
40 ms period, with plans made to take about three periods: how late each tick wakes with nothing
to do (the floor), when it plans itself (the straightforward way) and when it reads the
background plan. Target: background p99 <= 1 ms.

Run: ``.venv/bin/python bench/planner.py [--threads 2] [--repeats 15] [--parts 123]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch
from torch import nn

from learned_control.actors import default_mpc_config, planner_for_task
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.planning.cem import CEMConfig
from learned_control.planning.mpc import MPCConfig, MPCController
from learned_control.runtime.background_planner import BackgroundPlanner
from learned_control.tasks import get_task, make_env

WORKLOAD = dict(horizon=10, iterations=20, samples=1000, elites=200, hidden=100, layers=2)
"""Part 1: CEM horizon H, iterations I, samples N, elites K; the net's hidden width and layers."""


class PlainDynamics(nn.Module):
    """A deterministic dynamics MLP as ``nn.Sequential`` plus normalizer tensors:
    ``s' = s + net((x - X_mean) / X_std) * Y_std + Y_mean`` with ``x = [s, a]``."""

    def __init__(self, obs_dim: int, act_dim: int, hid: int, layers: int) -> None:
        super().__init__()
        mods, size = [], obs_dim + act_dim
        for _ in range(layers):
            mods += [nn.Linear(size, hid), nn.ReLU()]
            size = hid
        self.net = nn.Sequential(*mods, nn.Linear(size, obs_dim))
        self.X_mean, self.X_std = torch.zeros(obs_dim + act_dim), torch.ones(obs_dim + act_dim)
        self.Y_mean, self.Y_std = torch.zeros(obs_dim), torch.ones(obs_dim)

    def predict(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([s, a], dim=1) - self.X_mean) / self.X_std
        return s + self.net(x) * self.Y_std + self.Y_mean


def shaped_reward(s: torch.Tensor) -> torch.Tensor:
    """``InvertedPendulum-v5/shaped`` of states ``(N, 4)``: ``-x^2/5 - theta^2 + 1``, minus 2
    when ``|theta| > 0.2`` or ``|x| > 1``; shape ``(N,)``."""
    x, theta = s[:, 0], s[:, 1]
    r = -x**2 / 5 - theta**2 + 1
    return r - 2.0 * ((theta.abs() > 0.2) | (x.abs() > 1)).float()


@torch.no_grad()
def straightforward_cem(model: PlainDynamics, obs: np.ndarray, low: float,
                        high: float) -> np.ndarray:
    """The straightforward CEM loop: mean 0 / std 1, std floor 0.5, clamp, sum of rewards, first
    mean action."""
    h, n, k = WORKLOAD["horizon"], WORKLOAD["samples"], WORKLOAD["elites"]
    mean, std = torch.zeros(h, 1), torch.ones(h, 1)
    s0 = torch.as_tensor(obs, dtype=torch.float32)
    for _ in range(WORKLOAD["iterations"]):
        actions = (mean + std * torch.randn(n, h, 1)).clamp(low, high)
        returns = torch.zeros(n)
        s = s0.repeat(n, 1)
        for t in range(h):
            s = model.predict(s, actions[:, t])
            returns += shaped_reward(s)
        elites = actions[returns.topk(k).indices]
        mean, std = elites.mean(0), elites.std(0).clamp(min=0.5)
    return mean[0].numpy()


def matmuls_only(obs_dim: int, act_dim: int):
    """The workload's matrix products and nothing else (no CEM, reward or activation):
    ``I x H`` passes of ``N`` rows through the ``2x100`` layers. A bound no planner of this
    workload beats on this machine."""
    hid, n = WORKLOAD["hidden"], WORKLOAD["samples"]
    sizes = [obs_dim + act_dim] + [hid] * WORKLOAD["layers"] + [obs_dim]
    weights = [torch.randn(i, o) for i, o in zip(sizes[:-1], sizes[1:])]
    x = torch.randn(n, sizes[0])

    def run() -> None:
        for _ in range(WORKLOAD["iterations"] * WORKLOAD["horizon"]):
            h = x
            for w in weights:
                h = h @ w
    return run


def matmul_peak(repeats: int = 10) -> float:
    """fp32 2048^2 matmul GFLOP/s (best of ``repeats``)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * 2048**3 / best / 1e9


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def workload_gflop(obs_dim: int, act_dim: int) -> float:
    """Matmul GFLOP of one plan of the workload (2 flops per multiply-add)."""
    hid, layers = WORKLOAD["hidden"], WORKLOAD["layers"]
    per_row = (obs_dim + act_dim) * hid + (layers - 1) * hid * hid + hid * obs_dim
    return 2 * per_row * WORKLOAD["samples"] * WORKLOAD["horizon"] * WORKLOAD["iterations"] / 1e9


def part1(repeats: int) -> bool:
    task = get_task("InvertedPendulum-v5")
    torch.manual_seed(0)
    plain = PlainDynamics(task.obs_dim, task.act_dim, WORKLOAD["hidden"], WORKLOAD["layers"]).eval()
    ours_model = EnsembleDynamics(task.obs_dim, task.act_dim, members=1,
                                  hid_size=WORKLOAD["hidden"], num_layers=WORKLOAD["layers"],
                                  activation="relu")
    cem = CEMConfig(horizon=WORKLOAD["horizon"], samples=WORKLOAD["samples"],
                    elites=WORKLOAD["elites"], iterations=WORKLOAD["iterations"], alpha=0.0,
                    init_std=1.0, std_floor=0.5, warm_start=False)
    ours = planner_for_task(ours_model, task, MPCConfig(cem, reward="InvertedPendulum-v5/shaped"))
    obs = np.array([0.05, 0.02, 0.0, 0.0])
    gflop = workload_gflop(task.obs_dim, task.act_dim)
    peak = matmul_peak()
    floor = matmuls_only(task.obs_dim, task.act_dim)
    t_plain, t_ours, t_floor = [], [], []
    for _ in range(2):  # warm-up
        straightforward_cem(plain, obs, -3.0, 3.0)
        ours.act(obs)
        floor()
    for _ in range(repeats):  # alternate so that load from other processes hits all alike
        t_plain.append(_time(lambda: straightforward_cem(plain, obs, -3.0, 3.0)))
        t_ours.append(_time(lambda: ours.act(obs)))
        t_floor.append(_time(floor))
    peak_after = matmul_peak()
    mp, mo, mf = (float(np.median(t)) for t in (t_plain, t_ours, t_floor))
    print(f"threads={torch.get_num_threads()}  matmul peak fp32 2048^2: {peak:.1f} GFLOP/s "
          f"(before) {peak_after:.1f} (after); using the max")
    peak = max(peak, peak_after)
    print(f"workload: H={WORKLOAD['horizon']} I={WORKLOAD['iterations']} "
          f"N={WORKLOAD['samples']} K={WORKLOAD['elites']} 2x{WORKLOAD['hidden']} ReLU -> "
          f"{gflop:.2f} GFLOP per plan")
    print(f"{'planner':<16}{'median ms/plan':>16}{'GFLOP/s':>10}{'% of peak':>11}")
    for name, t in (("straightforward", mp), ("ours", mo), ("matmuls only", mf)):
        print(f"{name:<16}{1000 * t:>16.1f}{gflop / t:>10.1f}{100 * gflop / t / peak:>10.1f}%")
    print(f"ours takes {mo / mf:.2f}x the time of its matrix products alone (the floor); the "
          f"straightforward loop {mp / mf:.2f}x")
    ratio = mp / mo
    met = ratio >= 2 or gflop / mo >= 0.75 * peak
    print(f"speed-up ours vs straightforward: {ratio:.2f}x (target >= 2x) | ours "
          f"{100 * gflop / mo / peak:.0f}% of peak (target >= 75%) -> "
          f"{'MET' if met else 'NOT MET'}")
    return met


DEFAULT_MODELS = {  # the ensemble each task's default config plans through
    "InvertedPendulum-v5": dict(members=5, hid_size=32, num_layers=2, activation="relu"),
    "Reacher-v5": dict(members=5, hid_size=200, num_layers=3),
    "Pusher-v5": dict(members=5, hid_size=200, num_layers=3),
    "HalfCheetah-v5": dict(members=5, hid_size=200, num_layers=3),
}


def icem_quarter(config: MPCConfig) -> MPCConfig:
    """``config`` with iCEM and a quarter of its samples and elites."""
    cem = config.cem
    return dataclasses.replace(config, cem=dataclasses.replace(
        cem, optimizer="icem", samples=max(1, cem.samples // 4), elites=max(1, cem.elites // 4)))


def plan_ms(mpc: MPCController, obs: np.ndarray, plans: int) -> np.ndarray:
    """``(plans,)`` ms per ``mpc.act(obs)``, after 3 warm-up plans."""
    for _ in range(3):
        mpc.act(obs)
    return np.array([_time(lambda: mpc.act(obs)) for _ in range(plans)]) * 1000


def part2(plans: int) -> bool:
    print(f"\ntorch threads {torch.get_num_threads()}")
    print(f"{'task':<22}{'model':<12}{'planner':<22}{'p50 ms':>8}{'p99 ms':>8}{'period ms':>10}"
          "  p99 <= period/2")
    met = True
    for name, kw in DEFAULT_MODELS.items():
        task = get_task(name)
        env = make_env(name)
        period = task.dt * 1000
        obs, _ = env.reset(seed=0)
        env.close()
        model = EnsembleDynamics(task.obs_dim, task.act_dim, **kw)
        default = default_mpc_config(name)
        for config in (default, icem_quarter(default)):
            mpc = planner_for_task(model, task, config)
            times = plan_ms(mpc, obs, plans)
            p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
            members = f"{kw['members']}x{kw['num_layers']}x{kw['hid_size']}"
            planner = f"{config.cem.optimizer} N={config.cem.samples} K={config.cem.elites}"
            print(f"{name:<22}{members:<12}{planner:<22}{p50:>8.1f}{p99:>8.1f}{period:>10.1f}  "
                  f"{'yes' if p99 <= period / 2 else 'NO'}")
            if config is default:
                met &= bool(p99 <= period / 2)
    return met


def tick_lateness_ms(period: float, ticks: int, on_tick) -> np.ndarray:
    """``(ticks,)`` ms each tick of a ``period`` (s) loop woke after its due time, running
    ``on_tick(now)`` at each (as the controller's timer does)."""
    late, due = [], time.monotonic() + period
    for _ in range(ticks):
        while (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        now = time.monotonic()
        late.append(now - due)
        on_tick(now)
        due += period
    return 1000 * np.array(late)


def part3(ticks: int) -> bool:
    """Tick jitter at InvertedPendulum's 40 ms period while each plan takes about three periods:
    ticks with nothing to do (the floor of this machine's timers), ticks that plan (the
    straightforward way: every tick late by a plan), ticks that read the background planner's
    current plan. Target: background p99 <= 1 ms."""
    name = "InvertedPendulum-v5"
    task = get_task(name)
    period = task.dt
    model = EnsembleDynamics(task.obs_dim, task.act_dim, **DEFAULT_MODELS[name])
    default = default_mpc_config(name)
    obs = np.zeros(task.obs_dim)
    one = float(np.median(plan_ms(planner_for_task(model, task, default), obs, 5))) / 1000
    iterations = max(1, round(3 * period / (one / default.cem.iterations)))
    config = dataclasses.replace(default, cem=dataclasses.replace(default.cem,
                                                                  iterations=iterations))
    mpc = planner_for_task(model, task, config)
    plan = float(np.median(plan_ms(mpc, obs, 3)))
    print(f"\ntick jitter at {1000 * period:.0f} ms, plans of {iterations} CEM iterations "
          f"({plan:.0f} ms, {plan / 1000 / period:.1f} periods), torch threads "
          f"{torch.get_num_threads()}")
    background = BackgroundPlanner(lambda o, shift: mpc.plan(o, shift=shift), period, 1.0)
    commanded = [0]

    def from_plan(now: float) -> None:
        commanded[0] += background.action(now)[0] is not None
        background.submit(obs, now - period / 2)  # a sensor sample from half a period ago

    rows = [
        ("no planner (floor)", tick_lateness_ms(period, ticks, lambda now: None)),
        ("plan in the tick", tick_lateness_ms(period, max(10, ticks // 10),
                                              lambda now: mpc.act(obs))),
        ("background planner", tick_lateness_ms(period, ticks, from_plan)),
    ]
    background.close()
    print(f"{'ticks':<22}{'p50 ms late':>12}{'p99 ms late':>12}{'max ms':>9}")
    for label, late in rows:
        print(f"{label:<22}{np.percentile(late, 50):>12.2f}{np.percentile(late, 99):>12.2f}"
              f"{late.max():>9.2f}")
    p99 = float(np.percentile(rows[-1][1], 99))
    print(f"background: {commanded[0]} of {ticks} ticks commanded from "
          f"{background.plan_stats.count} plans; p99 {p99:.2f} ms (target <= 1 ms) -> "
          f"{'MET' if p99 <= 1.0 else 'NOT MET'}")
    return p99 <= 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of part 1 (default: %(default)s)")
    parser.add_argument("--controller-threads", type=int, default=1,
                        help="torch threads of part 2, as the controller node runs (default: "
                             "%(default)s)")
    parser.add_argument("--repeats", type=int, default=15, help="plans per planner in part 1")
    parser.add_argument("--plans", type=int, default=200, help="plans per task in part 2")
    parser.add_argument("--ticks", type=int, default=250, help="ticks per row in part 3")
    parser.add_argument("--parts", default="123", help="which parts to run (default: all)")
    args = parser.parse_args()
    met = True
    torch.set_num_threads(args.threads)
    if "1" in args.parts:
        met &= part1(args.repeats)
    torch.set_num_threads(args.controller_threads)
    if "2" in args.parts:
        met &= part2(args.plans)
    if "3" in args.parts:
        met &= part3(args.ticks)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
