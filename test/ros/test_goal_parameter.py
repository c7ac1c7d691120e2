"""Robot mode: the goal from the ``goal`` parameter or the goal topic, whichever came last; with
neither no command, said on /diagnostics. The test is the robot (Reacher at 50 Hz)."""

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, PoseStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Float64MultiArray

from conftest import diagnostic_values
from learned_control import topics
from learned_control.ros import qos
from learned_control.ros.controller import ASSEMBLED_OBSERVATION
from learned_control.specs import default_specs, dump_specs
from test_robot_mode import _collect, _joint_state, _random_policy

pytestmark = pytest.mark.ros

TASK = "Reacher-v5"


def _goal_topic_only_spec(tmp_path) -> str:
    """Reacher's spec with its goal on /goal only (no default value): a point, x and y read."""
    data = yaml.safe_load(dump_specs(default_specs(TASK)))
    (target,) = [s for s in data["observation"]["sources"] if s["type"] == "goal"]
    del target["value"]

    def point_xy(expr):  # each read of the goal: x and y of the point
        if isinstance(expr, dict):
            if expr.get("goal") == target["name"]:
                expr.update(size=3, index=[0, 1])
            for value in expr.values():
                point_xy(value)
        elif isinstance(expr, list):
            for value in expr:
                point_xy(value)

    point_xy(data["observation"]["features"])
    path = tmp_path / "reacher.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _goal(values) -> Parameter:
    return Parameter(name="goal", value=ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=list(values)))


def test_goal_from_the_parameter_or_the_topic_and_none_means_no_command(graph, tmp_path):
    commands = _collect(graph, "/effort_controller/commands", Float64MultiArray)
    assembled = _collect(graph, ASSEMBLED_OBSERVATION, Float64MultiArray)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray)
    joints = graph.node.create_publisher(type(_joint_state([], [], 0.0)), topics.JOINT_STATES,
                                         qos.RELIABLE)
    pose = graph.node.create_publisher(PoseStamped, "/fingertip/pose", qos.RELIABLE)
    goal_pub = graph.node.create_publisher(PointStamped, "/goal", qos.RELIABLE)

    def publish():
        now = graph.node.get_clock().now().to_msg()
        js = _joint_state(["joint0", "joint1"], [0.1, 0.2], 0.0)
        js.header.stamp = now
        joints.publish(js)
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = now, "world"
        msg.pose.position.x, msg.pose.orientation.w = 0.2, 1.0
        pose.publish(msg)

    graph.node.create_timer(0.02, publish)
    graph.start("controller", task=TASK, checkpoint=_random_policy(TASK, tmp_path / "p.pt"),
                mode="realtime", rate_hz=50.0, spec_file=_goal_topic_only_spec(tmp_path))

    def control():
        for msg in reversed(diags):
            for status in msg.status:
                if status.name.endswith("control") and status.message != "unconfigured":
                    return status, diagnostic_values(msg, "control")
        return None

    graph.spin_until(lambda: (c := control()) is not None and c[1].get("state") == "active"
                     and int(c[1]["stale_skips"]) > 0, 60, "the controller waiting for a goal")
    status, values = control()
    assert "no goal yet on /goal or parameter 'goal'; not commanding" in status.message
    assert values["stale_sources"] == "target" and not commands

    set_params = graph.node.create_client(SetParameters, "/controller/set_parameters")
    (wrong,) = graph.call(set_params, SetParameters.Request(parameters=[_goal([0.1, -0.1])])
                          ).results
    assert not wrong.successful and "goal of size 2 refused" in wrong.reason
    assert not commands  # a refused goal changes nothing
    (ok,) = graph.call(set_params, SetParameters.Request(parameters=[_goal([0.1, -0.1, 0.0])])
                       ).results
    assert ok.successful, ok.reason
    graph.spin_until(lambda: len(commands) >= 5, 30, "commands once the goal is set")
    np.testing.assert_allclose(assembled[-1].data[4:6], [0.1, -0.1], rtol=0, atol=1e-12)

    msg = PointStamped()  # a goal message is newer: it stands
    msg.header.frame_id = "world"
    msg.header.stamp = graph.node.get_clock().now().to_msg()
    msg.point.x, msg.point.y = 0.05, 0.02
    goal_pub.publish(msg)
    graph.spin_until(lambda: np.allclose(assembled[-1].data[4:6], [0.05, 0.02]), 30,
                     "the topic's goal in the observation")
    graph.call(set_params, SetParameters.Request(parameters=[_goal([-0.1, 0.15, 0.0])]))
    graph.spin_until(lambda: np.allclose(assembled[-1].data[4:6], [-0.1, 0.15]), 30,
                     "the parameter's new goal in the observation")
