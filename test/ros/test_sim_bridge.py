"""The bridge rejects bad commands, clips, holds the robot safe without a controller, never stops."""

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from conftest import diagnostic_values
from learned_control import topics
from learned_control.ros import qos
from learned_control.ros.node_utils import array_msg

pytestmark = pytest.mark.ros


def _collect(graph, topic, msg_type, qos_profile):
    box = []
    graph.node.create_subscription(msg_type, topic, lambda m: box.append(m), qos_profile)
    return box


def test_bad_commands_are_rejected_counted_and_the_bridge_keeps_stepping(graph):
    observations = _collect(graph, topics.OBSERVATION, Float64MultiArray, qos.LOCKSTEP)
    applied = _collect(graph, topics.APPLIED_COMMAND, Float64MultiArray, qos.RELIABLE)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    command = graph.node.create_publisher(Float64MultiArray, topics.COMMAND, qos.RELIABLE)
    graph.start("sim_bridge", task="InvertedPendulum-v5", mode="lockstep")
    graph.spin_until(lambda: observations, 30, "the first observation")

    command.publish(array_msg([0.1, 0.2]))            # wrong length
    command.publish(array_msg([math.nan]))            # NaN
    command.publish(array_msg([math.inf]))            # inf
    command.publish(array_msg([1e300]))               # finite, beyond float32: garbage
    command.publish(array_msg([10.0]))                # out of range: clipped to 3
    graph.spin_until(lambda: applied, 30, "the applied command")
    assert [list(m.data) for m in applied] == [[3.0]]  # only the valid one was applied, clipped
    graph.spin_until(lambda: len(observations) >= 2, 30, "the next observation")

    def counters():
        values = diagnostic_values(diags[-1], "bridge") if diags else None
        return values if values and values["rejected_nonfinite"] == "2" else None

    graph.spin_until(counters, 30, "diagnostics counting the rejections")
    values = counters()
    assert values["rejected_size"] == "1" and values["rejected_overflow"] == "1"
    assert values["clipped"] == "1"
    assert values["accepted"] == "1"
    status = next(s for s in diags[-1].status if s.name.endswith("bridge"))
    assert status.level == bytes([1])
    assert "rejected_nonfinite: 2 in the last 5 s" in status.message

    def quiet():  # the rejections are over: OK again, counts kept
        status = next((s for s in diags[-1].status if s.name.endswith("bridge")), None)
        return status is not None and status.level == bytes([0])

    # a lockstep bridge nobody answers keeps waiting (and warns of it); paused, nothing is wrong
    pause = graph.node.create_client(Trigger, "/sim_bridge/pause")
    assert graph.call(pause, Trigger.Request()).success
    graph.spin_until(quiet, 30, "the level back to OK once the rejections and waits stopped")
    assert diagnostic_values(diags[-1], "bridge")["rejected_nonfinite"] == "2"


@pytest.mark.faults
def test_dead_controller_realtime_bridge_applies_on_timeout_and_keeps_publishing(
        graph, pendulum_policy):
    applied = _collect(graph, topics.APPLIED_COMMAND, Float64MultiArray, qos.RELIABLE)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    graph.start("sim_bridge", task="InvertedPendulum-v5", mode="realtime", command_timeout=0.2,
                on_timeout="zero", auto_reset=True)
    controller = graph.start("controller", task="InvertedPendulum-v5", checkpoint=pendulum_policy,
                             mode="realtime")
    graph.spin_until(lambda: any(m.data[0] != 0.0 for m in applied), 60,
                     "a command from the controller being applied")
    controller.stop(sig=9)  # killed mid-episode, no goodbye
    killed_at = len(applied)
    graph.spin_until(lambda: len(applied) >= killed_at + 30, 30,
                     "the bridge to keep stepping after the controller died")
    # once the timeout has passed, every applied action is the zero action
    assert all(list(m.data) == [0.0] for m in applied[-15:])

    def timeouts():
        values = diagnostic_values(diags[-1], "bridge") if diags else None
        return values if values and int(values["timeouts"]) > 0 else None

    graph.spin_until(timeouts, 30, "diagnostics reporting command timeouts")

    def dead_peer_said():
        status = next((s for s in diags[-1].status if s.name.endswith("bridge")), None)
        return status is not None and status.level == bytes([1]) and (
            "no controller: nothing publishes /command" in status.message)

    graph.spin_until(dead_peer_said, 30, "diagnostics naming the missing controller")


def test_the_bridge_owns_the_goal_of_a_goal_conditioned_task(graph):
    """FetchReach: a goal on ``goal`` in another frame is rejected and counted; one in the world
    frame is the env's goal from the next observation on (``desired_goal``) and over the reset to
    the next episode, and a P-controller in this process that steers the gripper to the observed
    goal ends both episodes with ``is_success`` at that goal."""
    observations, summaries = [], []
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    command = graph.node.create_publisher(Float64MultiArray, topics.COMMAND, qos.RELIABLE)
    goal_pub = graph.node.create_publisher(PointStamped, topics.GOAL, qos.RELIABLE)
    answering = [False]

    def answer(obs):  # P-control of the gripper (obs[3:6]) to the goal (obs[:3])
        command.publish(array_msg([*np.clip(10 * (obs[:3] - obs[3:6]), -1, 1), 0.0]))

    def on_observation(msg):
        observations.append(np.array(msg.data))
        if answering[0]:
            answer(observations[-1])

    graph.node.create_subscription(Float64MultiArray, topics.OBSERVATION, on_observation,
                                   qos.LOCKSTEP)
    graph.node.create_subscription(Float64MultiArray, topics.EPISODE,
                                   lambda m: summaries.append(np.array(m.data)), qos.SUMMARY)
    graph.start("sim_bridge", task="FetchReach-v4", mode="lockstep", max_episodes=2)
    graph.spin_until(lambda: observations and goal_pub.get_subscription_count(), 60,
                     "the first observation and the bridge's goal subscription")
    first = observations[0]
    goal = first[3:6] + np.array([0.08, -0.06, 0.05])  # 11 cm from the gripper's start

    def goal_msg(frame, point):
        msg = PointStamped()
        msg.header.frame_id = frame
        msg.point.x, msg.point.y, msg.point.z = map(float, point)
        return msg

    def bridge_status():
        values = diagnostic_values(diags[-1], "bridge") if diags else None
        return values or {}

    goal_pub.publish(goal_msg("base_link", goal + 1.0))
    goal_pub.publish(goal_msg("world", goal))
    graph.spin_until(lambda: bridge_status().get("goals") == "1", 30, "the goal taken")
    assert bridge_status()["rejected_goals"] == "1"
    assert bridge_status()["goal"] == ",".join(f"{g:.4f}" for g in goal)
    assert not np.allclose(first[:3], goal)  # the first observation had the env's own goal
    answering[0] = True
    answer(first)  # the observation the bridge is waiting on
    graph.spin_until(lambda: len(summaries) == 2, 60, "two episodes")
    assert len(observations) == 2 * 50  # 50-step episodes; terminal observations in summaries
    for obs in observations[1:]:  # every later observation carries the given goal
        np.testing.assert_allclose(obs[:3], goal)
    for summary in summaries:
        assert summary[3] == 1.0  # is_success, with respect to the given goal
        assert np.linalg.norm(summary[5 + 3:5 + 6] - goal) < 0.05  # terminal gripper position
