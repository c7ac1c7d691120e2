"""Lockstep through ROS (sim_bridge + controller processes) against the offline rollout, one run.

Measured one after the other in this run, on the same task and policy (a seeded random
``MLPPolicy``; HalfCheetah-v5 by default, whose 1000-step episodes never terminate early):

1. offline: ``env.step`` alone, and ``evaluate()`` (``policy.act`` + ``env.step``) per step;
2. bare rclpy ping-pong between two processes: an observation-sized Float64MultiArray out with the
   lockstep QoS, an action-sized one back with the reliable QoS, the next ping sent from the pong's
   callback (the round trip every lockstep step needs at least); once with rclpy's default
   SingleThreadedExecutor in both processes (the straightforward baseline), once with the
   EventsExecutor our nodes spin;
3. the ROS lockstep loop (:func:`learned_control.ros.graph_run.run_lockstep_graph`): ``sim_bridge``
   and ``controller`` as separate processes, timed from the first to the last episode summary
   (start-up and the first episode excluded); the controller's inference latency p50/p99 is read
   from its ``/diagnostics``;
4. realtime (``--realtime-task``, InvertedPendulum-v5 at its 25 Hz by default): bridge and
   controller in ``mode: realtime`` for ``--realtime-seconds``; the achieved rates are the step and
   command counts in their ``/diagnostics`` over that window, timed where the reports arrive
   (target: within 5% of the configured rate).

Overhead per step = ROS step time - offline step time; target: overhead <= bare
round trip + 0.3 ms, printed against both ping-pongs. Run it in a ROS domain of its own (``ROS_DOMAIN_ID=42 python bench/bridge.py``).

Usage: ``python bench/bridge.py [--task HalfCheetah-v5] [--episodes 4] [--pings 3000]
[--realtime-task InvertedPendulum-v5] [--realtime-seconds 10]``
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
import torch
from rclpy.executors import SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Float64MultiArray

from learned_control.checkpoint import save_checkpoint
from learned_control.evaluation import evaluate
from learned_control.models.policies import MLPPolicy
from learned_control.ros import qos
from learned_control.ros.graph_run import LockstepGraph, run_lockstep_graph
from learned_control.ros.node_utils import array_msg
from learned_control.tasks import get_task

PING, PONG = "bench_ping", "bench_pong"
EXECUTORS = {"single-threaded": SingleThreadedExecutor, "events": EventsExecutor}


def echo(act_dim: int, executor_name: str) -> None:
    """The pong process: answer every ping with an action-sized message; SIGINT ends it."""
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = Node("bench_echo")
    answer = np.zeros(act_dim)
    pub = node.create_publisher(Float64MultiArray, PONG, qos.RELIABLE)
    node.create_subscription(Float64MultiArray, PING,
                             lambda _: pub.publish(array_msg(answer, "command")), qos.LOCKSTEP)
    executor = EXECUTORS[executor_name]()
    executor.add_node(node)
    try:
        while True:  # short waits, so SIGINT's KeyboardInterrupt lands within 0.1 s
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def offline(task_name: str, policy: MLPPolicy, episodes: int, seed: int) -> tuple[float, float]:
    """Seconds per step of ``env.step`` alone and of ``evaluate()`` (policy + step)."""
    env = get_task(task_name).make_env()
    env.reset(seed=seed)
    action = np.zeros(env.action_space.shape)
    steps = 3000
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    step_s = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    result = evaluate(policy, env, episodes, seed)
    rollout_s = (time.perf_counter() - start) / sum(result.lengths)
    env.close()
    return step_s, rollout_s


def spin_until(executor, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        executor.spin_once(timeout_sec=0.05)


def ping_pong(executor_name: str, env: dict, obs_dim: int, act_dim: int, pings: int) -> float:
    """Mean seconds per round trip over ``pings`` round trips after 100 warm-up ones, both
    processes spinning ``executor_name``."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env.get("ROS_DOMAIN_ID", "0")))
    node = Node("bench_observer", context=context)
    executor = EXECUTORS[executor_name](context=context)
    executor.add_node(node)
    proc = subprocess.Popen([sys.executable, __file__, "--echo", "--act-dim", str(act_dim),
                             "--executor", executor_name], env=env)
    ping = node.create_publisher(Float64MultiArray, PING, qos.LOCKSTEP)
    message = array_msg(np.zeros(obs_dim), ",".join(f"o{i}" for i in range(obs_dim)))
    times: list[float] = []

    def on_pong(_msg) -> None:
        times.append(time.perf_counter())
        if len(times) < pings + 100:
            ping.publish(message)

    sub = node.create_subscription(Float64MultiArray, PONG, on_pong, qos.RELIABLE)
    try:
        spin_until(executor, lambda: ping.get_subscription_count() and sub.get_publisher_count(),
                   60, "the echo process")
        ping.publish(message)
        spin_until(executor, lambda: len(times) >= pings + 100, 120, "the ping-pong")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return (times[-1] - times[99]) / pings


def realtime_rates(task_name: str, seconds: float, seed: int, log_dir: Path,
                   domain: int) -> tuple[float, float, float]:
    """Configured rate, achieved bridge step rate and controller command rate (Hz) over
    ``seconds`` of a realtime run (a seeded random policy; episodes reset as they end)."""
    task = get_task(task_name)
    configured = 1.0 / task.dt
    torch.manual_seed(seed)
    checkpoint = save_checkpoint(log_dir / "realtime_policy.pt",
                                 MLPPolicy(task.obs_dim, task.act_dim), task.name)
    counters = {"sim_bridge: bridge": "steps", "controller: control": "commands"}
    reports: dict[str, list[tuple[float, int]]] = {name: [] for name in counters}

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name in counters:
                value = {kv.key: kv.value for kv in status.values}[counters[status.name]]
                reports[status.name].append((time.perf_counter(), int(value)))

    with LockstepGraph(log_dir / "realtime", timeout=120, domain_id=domain) as graph:
        graph.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics,
                                       qos.RELIABLE)
        graph.start("sim_bridge", {"task": task_name, "mode": "realtime", "seed": seed,
                                   "auto_reset": True})
        graph.start("controller", {"task": task_name, "checkpoint": str(checkpoint),
                                   "mode": "realtime", "torch_threads": 1})

        def counting(window: float) -> bool:  # both count, in reports ``window`` s apart
            return all(r and r[-1][1] > 0 and r[-1][0] - r[0][0] >= window
                       for r in reports.values())

        graph.spin_until(lambda: counting(0.0), 120, "the realtime loop")
        for r in reports.values():
            r.clear()
        graph.spin_until(lambda: counting(seconds), seconds + 30, "the measurement window")
    rates = [(r[-1][1] - r[0][1]) / (r[-1][0] - r[0][0]) for r in reports.values()]
    return configured, rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="HalfCheetah-v5")
    parser.add_argument("--episodes", type=int, default=4,
                        help="ROS episodes; the first is warm-up, the rest are timed")
    parser.add_argument("--pings", type=int, default=3000, help="timed ping-pong round trips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--realtime-task", default="InvertedPendulum-v5")
    parser.add_argument("--realtime-seconds", type=float, default=10.0)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--act-dim", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--executor", choices=EXECUTORS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo:
        echo(args.act_dim, args.executor)
        return

    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    task = get_task(args.task)
    policy = MLPPolicy(task.obs_dim, task.act_dim)
    step_s, rollout_s = offline(args.task, policy, args.episodes - 1, args.seed)

    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ROS_DOMAIN_ID": str(domain)}
    rtt_s = {name: ping_pong(name, env, task.obs_dim, task.act_dim, args.pings)
             for name in EXECUTORS}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = save_checkpoint(Path(tmp) / "policy.pt", policy, task.name)
        run = run_lockstep_graph(args.task, checkpoint, args.episodes, args.seed, Path(tmp) / "logs",
                                 torch_threads=args.torch_threads, domain_id=domain)
        ros_s, steps, control = run.seconds_per_step, sum(run.result.lengths[1:]), run.control
        configured_hz, bridge_hz, controller_hz = realtime_rates(
            args.realtime_task, args.realtime_seconds, args.seed, Path(tmp), domain)

    overhead_ms = (ros_s - rollout_s) * 1e3
    print(f"task {args.task}: obs {task.obs_dim}, act {task.act_dim}; {steps} ROS steps timed")
    print(f"{'':42s}{'steps/s':>10s}{'ms/step':>10s}")
    rows = [("raw env.step", step_s), ("offline evaluate (act + step)", rollout_s)]
    rows += [(f"bare ping-pong round trip, {name}", rtt) for name, rtt in rtt_s.items()]
    rows += [("ROS lockstep (bridge+controller)", ros_s)]
    for name, seconds in rows:
        print(f"{name:42s}{1 / seconds:10.0f}{seconds * 1e3:10.3f}")
    print(f"ROS / offline time per step: {ros_s / rollout_s:.1f}x")
    print(f"controller inference latency: p50 {float(control['p50_ms']):.3f} ms, "
          f"p99 {float(control['p99_ms']):.3f} ms (act + publish)")
    met = overhead_ms <= 0.5
    print(f"ROS overhead per step: {overhead_ms:.3f} ms (target <= 0.5 ms: "
          f"{'MET' if met else 'NOT MET'})")
    for name, rtt in rtt_s.items():
        target_ms = rtt * 1e3 + 0.3
        met &= overhead_ms <= target_ms
        print(f"  target <= {name} round trip + 0.3 ms = {target_ms:.3f} ms: "
              f"{'MET' if overhead_ms <= target_ms else 'NOT MET'}")
    print(f"realtime {args.realtime_task}, {args.realtime_seconds:.0f} s at {configured_hz:.1f} Hz "
          "configured (target: within 5%):")
    for name, hz in (("bridge steps", bridge_hz), ("controller commands", controller_hz)):
        error = hz / configured_hz - 1
        met &= abs(error) <= 0.05
        print(f"  {name:20s}{hz:8.2f} Hz ({error:+.1%}): "
              f"{'MET' if abs(error) <= 0.05 else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
