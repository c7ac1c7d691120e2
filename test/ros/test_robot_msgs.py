"""Robot message conversion without DDS: a JointTrajectory command carries its values in the
JointTrajectoryPoint field of its interface, and reads back the same."""

import numpy as np
import pytest

from learned_control.ros.robot_msgs import command_msg, command_values
from learned_control.specs import Command


@pytest.mark.parametrize(("interface", "field"), [("effort", "effort"),
                                                  ("position", "positions"),
                                                  ("velocity", "velocities")])
def test_trajectory_command_uses_the_point_field_of_its_interface(interface, field):
    command = Command(joint_names=("a", "b"), values=np.array([0.25, -1.5]),
                      type="JointTrajectory", interface=interface, time_from_start=0.02)
    msg = command_msg(command)
    point = msg.points[0]
    assert list(getattr(point, field)) == [0.25, -1.5]
    assert all(len(getattr(point, other)) == 0
               for other in ("positions", "velocities", "effort") if other != field)
    assert (point.time_from_start.sec, point.time_from_start.nanosec) == (0, 20_000_000)
    assert command_values(msg, interface) == (["a", "b"], [0.25, -1.5])
