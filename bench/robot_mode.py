"""Robot-mode cost per tick: spec-based observation assembly + command shaping vs the plain path.

Per task, one seeded episode of driver-shaped samples (:func:`driver_samples`, taken once up
front so the simulator is not timed) is replayed, and per tick we time, alternating in this run:

- plain: the ``observation`` topic path of the controller — the message's float list to an
  ``(obs_dim,)`` array, and the action back to a float list for the command message;
- robot: every source sample stored in the :class:`ObservationAssembler` (JointState name
  lookup, stale check), the observation assembled from the spec, the action shaped by the
  :class:`CommandShaper` (reorder, clip and count, rate limit) and turned into a float list.

Message <-> sample conversion in the ROS node is not included (the nodes come later).
Prints the median per-tick time of each over ``--repeats`` alternated passes and the extra per
tick. Target: <= 0.2 ms extra per tick.

Usage: ``python bench/robot_mode.py [--steps 1000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import numpy as np

from learned_control.specs import CommandShaper, ObservationAssembler, default_specs, driver_samples
from learned_control.tasks import get_task

TASKS = ("InvertedPendulum-v5", "Reacher-v5", "Pusher-v5", "HalfCheetah-v5", "Hopper-v5")
TARGET_MS = 0.2


def record(task: str, steps: int, seed: int) -> tuple[list, list, list]:
    """Per step: the env observation as a list, the driver samples and an action."""
    specs = default_specs(task)
    env = get_task(task).make_env()
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    u = env.unwrapped
    plain, samples, actions = [], [], []
    for k in range(steps):
        plain.append(obs.tolist())
        samples.append(list(driver_samples(specs.observation, u.model, u.data, k * u.dt).items()))
        action = env.action_space.sample()
        actions.append(action)
        obs, _, term, trunc, _ = env.step(action)
        if term or trunc:
            obs, _ = env.reset()
    return plain, samples, actions


def time_plain(plain: list, actions: list) -> float:
    start = time.perf_counter()
    for data, action in zip(plain, actions, strict=True):
        np.asarray(data, dtype=np.float64)
        action.astype(np.float64).tolist()
    return (time.perf_counter() - start) / len(plain)


def time_robot(task: str, samples: list, actions: list, dt: float) -> float:
    specs = default_specs(task)
    # a rate limit too, so that every shaping step is exercised
    cmd = dataclasses.replace(specs.command, max_delta=tuple(0.5 for _ in specs.command.joints))
    asm, shaper = ObservationAssembler(specs.observation), CommandShaper(cmd)
    start = time.perf_counter()
    for k, (tick, action) in enumerate(zip(samples, actions, strict=True)):
        for name, sample in tick:
            asm.update(name, sample)
        out = asm.assemble(k * dt)
        assert out.observation is not None
        shaper.shape(action).values.tolist()
    return (time.perf_counter() - start) / len(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="ticks per pass (default: 1000)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternated passes per path; the median is printed (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="episode seed (default: 0)")
    args = parser.parse_args()
    print(f"{'task':<22}{'plain us/tick':>15}{'robot us/tick':>15}{'extra us/tick':>15}"
          f"{'ratio':>8}  target <= {TARGET_MS * 1000:.0f} us extra")
    met = True
    for task in TASKS:
        plain, samples, actions = record(task, args.steps, args.seed)
        dt = get_task(task).dt
        p_times, r_times = [], []
        for _ in range(args.repeats):
            p_times.append(time_plain(plain, actions))
            r_times.append(time_robot(task, samples, actions, dt))
        p, r = statistics.median(p_times) * 1e6, statistics.median(r_times) * 1e6
        verdict = "met" if r - p <= TARGET_MS * 1000 else "NOT met"
        print(f"{task:<22}{p:>15.1f}{r:>15.1f}{r - p:>15.1f}{r / p:>8.1f}  {verdict}")
        met &= r - p <= TARGET_MS * 1000
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
