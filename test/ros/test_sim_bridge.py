"""The bridge rejects bad commands, clips, holds the robot safe without a controller, never stops."""

import math

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Float64MultiArray

from conftest import diagnostic_values
from learned_control.ros import qos, topics
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
    command.publish(array_msg([10.0]))                # out of range: clipped to 3
    graph.spin_until(lambda: applied, 30, "the applied command")
    assert [list(m.data) for m in applied] == [[3.0]]  # only the valid one was applied, clipped
    graph.spin_until(lambda: len(observations) >= 2, 30, "the next observation")

    def counters():
        values = diagnostic_values(diags[-1], "bridge") if diags else None
        return values if values and values["rejected_nonfinite"] == "2" else None

    graph.spin_until(counters, 30, "diagnostics counting the rejections")
    values = counters()
    assert values["rejected_size"] == "1"
    assert values["clipped"] == "1"
    assert values["accepted"] == "1"


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
