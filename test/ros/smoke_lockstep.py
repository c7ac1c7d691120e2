"""One process, every env: the real sim bridge node and an answering node in this process, over
DDS in the caller's ``ROS_DOMAIN_ID``, step a few lockstep steps per env.

Usage: ``python smoke_lockstep.py ENV_ID...``; prints one JSON line per env: the observations
the answering node received, compared with an offline rollout of the same seed and actions, and
the actions the bridge applied, compared with those sent.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Float64MultiArray

from learned_control import topics
from learned_control.ros import qos
from learned_control.ros.sim_bridge import SimBridge
from learned_control.tasks import get_task

STEPS, SEED, TIMEOUT = 5, 3, 60.0


def lockstep(env_id: str, index: int, executor: SingleThreadedExecutor) -> dict:
    task = get_task(env_id)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(task.action_low, task.action_high) * 0.1 for _ in range(STEPS)]
    seen: list[np.ndarray] = []
    applied: list[np.ndarray] = []
    terminal: list[np.ndarray] = []  # an episode that ends early: its last observation
    answer = Node(f"smoke_controller_{index}")
    command = answer.create_publisher(Float64MultiArray, topics.COMMAND, qos.RELIABLE)

    def on_observation(msg: Float64MultiArray) -> None:
        seen.append(np.array(msg.data))
        if len(seen) <= STEPS:  # one answer per observation, as a controller in lockstep
            command.publish(Float64MultiArray(data=actions[len(seen) - 1].tolist()))

    answer.create_subscription(Float64MultiArray, topics.OBSERVATION, on_observation,
                               qos.LOCKSTEP)
    answer.create_subscription(Float64MultiArray, topics.APPLIED_COMMAND,
                               lambda m: applied.append(np.array(m.data)), qos.RELIABLE)
    answer.create_subscription(Float64MultiArray, topics.EPISODE,
                               lambda m: terminal.append(np.array(m.data[5:])), qos.SUMMARY)
    bridge = SimBridge(f"sim_bridge_{index}")
    bridge.set_parameters([Parameter("task", value=env_id), Parameter("mode", value="lockstep"),
                           Parameter("seed", value=SEED), Parameter("max_episodes", value=1)])
    bridge.trigger_configure()
    assert bridge._state_machine.current_state[1] == "inactive", f"{env_id}: configure failed"
    bridge.trigger_activate()
    executor.add_node(bridge)
    executor.add_node(answer)
    start = time.monotonic()
    try:
        while not terminal and (len(applied) < STEPS or len(seen) < STEPS + 1):
            if time.monotonic() - start > TIMEOUT:
                raise TimeoutError(f"{env_id}: {len(seen)} observations, {len(applied)} applied")
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.remove_node(bridge)
        executor.remove_node(answer)
        bridge.trigger_deactivate()
        bridge.close()
        bridge.destroy_node()
        answer.destroy_node()
    env = task.make_env()
    obs, _ = env.reset(seed=SEED)
    offline = [obs]
    for action in actions:
        obs, _, term, trunc, _ = env.step(action)
        offline.append(obs)
        if term or trunc:
            break
    env.close()
    seen = (seen + terminal)[: len(offline)]
    n = len(offline)
    assert len(seen) == n, f"{env_id}: {len(seen)} observations through ROS, {n} offline"
    return {
        "env": env_id,
        "seconds": round(time.monotonic() - start, 3),
        "observations": len(seen),
        "obs_dim": int(seen[0].size),
        "max_obs_error": float(max(np.abs(a - b).max() for a, b in zip(seen[:n], offline))),
        "compared": n,
        "max_applied_error": float(max(np.abs(a - b).max()
                                       for a, b in zip(applied, actions[: n - 1], strict=True))),
    }


def main(env_ids: list[str]) -> int:
    rclpy.init()
    executor = SingleThreadedExecutor()
    try:
        for index, env_id in enumerate(env_ids):
            print(json.dumps(lockstep(env_id, index, executor)), flush=True)
    finally:
        executor.shutdown()
        rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
