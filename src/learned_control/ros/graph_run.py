"""Run the node graph in lockstep for seeded episodes and watch it: what ``demo`` and
``bench/bridge.py`` do through ROS.

``sim_bridge``, ``controller`` and (with a bag) ``recorder`` run as separate processes, as
``learned-control up`` starts them. The bridge starts inactive and is activated through its
standard ``change_state`` service only once the recorder reports (on ``/diagnostics``) that it has
matched the bridge's publishers, so the bag holds every episode from its first step. An observer
node in this process collects the ``episode`` summaries and the controller's diagnostics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from ..errors import LearnedControlError
from ..evaluation import EvalResult
from ..supervisor import stop_processes
from . import qos, topics

__all__ = ["GraphRun", "run_lockstep_graph"]

BRIDGE_TOPICS = ("observation", "applied_command", "reward", "episode")


@dataclass
class GraphRun:
    """What a lockstep run through the graph measured.

    Attributes:
        result: returns, lengths, successes and seeds from the bridge's ``episode`` summaries.
        seconds_per_step: wall time per env step from the first summary to the last (the first
            episode is warm-up); ``nan`` for a single episode.
        control: the controller's last ``control`` diagnostics (``p50_ms``, ``p99_ms``, ...).
        bag: the recorded bag, when one was asked for.
    """

    result: EvalResult
    seconds_per_step: float
    control: dict[str, str] = field(default_factory=dict)
    bag: Path | None = None


class _Observer:
    """An rclpy node in a private context: episode summaries and diagnostics, by node."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("graph_run_observer", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.summaries: list[tuple[float, list[float]]] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.node.create_subscription(
            Float64MultiArray, topics.EPISODE,
            lambda m: self.summaries.append((time.perf_counter(), list(m.data))), qos.SUMMARY)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics,
                                      qos.RELIABLE)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def status(self, name: str) -> dict[str, str]:
        return self.diagnostics.get(name, {})

    def spin_until(self, condition, timeout: float, what: str, procs) -> None:
        """Spin until ``condition()``; fail naming ``what`` on timeout or when a node died."""
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [name for name, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                reason = f"{', '.join(dead)} exited" if dead else f"timed out after {timeout} s"
                raise LearnedControlError(f"graph run: {reason} while waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def run_lockstep_graph(task: str, checkpoint: str | os.PathLike, episodes: int, seed: int,
                       log_dir: str | os.PathLike, bag: str | os.PathLike | None = None,
                       torch_threads: int = 1, timeout: float = 600.0,
                       domain_id: int | None = None) -> GraphRun:
    """``episodes`` lockstep episodes (reset seeds ``seed``, ``seed + 1``, ...) through the graph.

    Args:
        task: registry task name.
        checkpoint: the controller's policy checkpoint.
        episodes: episodes to run; the bridge stops stepping after them.
        seed: reset seed of the first episode.
        log_dir: each node's output goes to ``<log_dir>/<node>.log``.
        bag: record into this new bag (mcap) when given.
        torch_threads: the controller's torch threads.
        timeout: seconds allowed for start-up and for the episodes.
        domain_id: ROS domain of the graph; default ``$ROS_DOMAIN_ID`` (else 0).

    Raises:
        LearnedControlError: a node exited or the run timed out (node logs name why).
    """
    domain = domain_id if domain_id is not None else int(os.environ.get("ROS_DOMAIN_ID", "0"))
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "PYTHONUNBUFFERED": "1"}
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    nodes = {"controller": {"task": task, "checkpoint": str(checkpoint), "mode": "lockstep",
                            "torch_threads": torch_threads},
             "sim_bridge": {"task": task, "seed": seed, "mode": "lockstep",
                            "max_episodes": episodes, "publish_clock": False, "autostart": False}}
    if bag is not None:
        nodes = {"recorder": {"bag": str(bag), "storage": "mcap", "mode": "lockstep"}, **nodes}
    observer = _Observer(domain)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, params in nodes.items():
            argv = [sys.executable, "-m", f"learned_control.ros.{name}", "--ros-args"]
            for key, value in params.items():
                argv += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
            with open(log_dir / f"{name}.log", "w") as log:
                procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        change = observer.node.create_client(ChangeState, "/sim_bridge/change_state")

        def transition(transition_id: int) -> None:
            observer.spin_until(change.service_is_ready, timeout, "the bridge's services", procs)
            future = change.call_async(ChangeState.Request(
                transition=Transition(id=transition_id)))
            observer.spin_until(future.done, timeout, "a bridge transition", procs)
            if not future.result().success:
                raise LearnedControlError(f"graph run: the bridge refused transition "
                                          f"{transition_id}; see {log_dir / 'sim_bridge.log'}")

        transition(Transition.TRANSITION_CONFIGURE)
        if bag is not None:
            recording = "recorder: recording"
            observer.spin_until(lambda: all(
                int(observer.status(recording).get(f"publishers//{t}", 0)) >= 1
                for t in BRIDGE_TOPICS), timeout, "the recorder to match the bridge", procs)
        observer.spin_until(lambda: observer.status("controller: control").get("state") == "active",
                            timeout, "the controller to become active", procs)
        transition(Transition.TRANSITION_ACTIVATE)
        observer.spin_until(lambda: len(observer.summaries) >= episodes, timeout,
                            f"{episodes} episodes", procs)
        steps = int(sum(s[2] for _, s in observer.summaries[:episodes]))
        observer.spin_until(lambda: int(observer.status("controller: control").get("count", 0))
                            >= steps, 10, "the controller's final diagnostics", procs)
        if bag is not None:
            observer.spin_until(lambda: int(observer.status("recorder: recording").get(
                "written//episode", 0)) >= episodes, timeout, "the recorder's last episode", procs)
    finally:
        stop_processes(procs, grace_s=10.0)
        observer.close()
    summaries = [s for _, s in observer.summaries[:episodes]]
    result = EvalResult(returns=[s[1] for s in summaries], lengths=[int(s[2]) for s in summaries],
                        successes=[None if s[3] != s[3] else bool(s[3]) for s in summaries],
                        seeds=[int(s[4]) for s in summaries])
    timed = sum(result.lengths[1:])
    span = observer.summaries[episodes - 1][0] - observer.summaries[0][0]
    return GraphRun(result, span / timed if timed else float("nan"),
                    observer.status("controller: control"), Path(bag) if bag is not None else None)
