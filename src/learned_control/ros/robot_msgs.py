"""Standard robot messages <-> the core spec samples and commands (conversion only).

JointState, PoseStamped, Odometry and PointStamped become :mod:`learned_control.specs` samples
(:func:`~learned_control.specs.sample_from_msg`, stamps in seconds from ``header.stamp``); a
:class:`~learned_control.specs.Command` becomes a Float64MultiArray (forward_command_controller)
or a one-point JointTrajectory.
"""

from __future__ import annotations

from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import PointStamped, PoseStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ..specs import (
    TRAJECTORY_POINT_FIELDS,
    Command,
    GoalSample,
    JointSample,
    PoseSample,
    SourceSpec,
    sample_from_msg,
    stamp_seconds,
)
from .node_utils import array_msg

__all__ = [
    "MSG_TYPES",
    "stamp_seconds",
    "to_stamp",
    "sample_from_msg",
    "msg_from_sample",
    "command_msg",
    "command_values",
]

MSG_TYPES = {
    "JointState": JointState,
    "PoseStamped": PoseStamped,
    "Odometry": Odometry,
    "goal": PointStamped,
}
"""Message type of each source type (a goal topic carries PointStamped)."""


def to_stamp(seconds: float) -> Time:
    sec = int(seconds)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


def msg_from_sample(src: SourceSpec, sample: JointSample | PoseSample | GoalSample):
    """The message a driver publishes for ``sample`` of source ``src`` (inverse of
    :func:`sample_from_msg`)."""
    msg = MSG_TYPES[src.type]()
    msg.header.stamp = to_stamp(sample.stamp)
    if isinstance(sample, JointSample):
        msg.name, msg.position = list(sample.names), list(sample.position)
        msg.velocity, msg.effort = list(sample.velocity), list(sample.effort)
        return msg
    msg.header.frame_id = src.frame
    if isinstance(sample, GoalSample):
        vals = [*sample.value, 0.0, 0.0, 0.0]
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in vals[:3])
        return msg
    pose = msg.pose.pose if src.type == "Odometry" else msg.pose
    pose.position.x, pose.position.y, pose.position.z = sample.position
    o = pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in sample.orientation)
    if src.type == "Odometry":
        msg.child_frame_id = src.sim_body or src.name
        if sample.linear_velocity is None or sample.angular_velocity is None:
            raise ValueError(f"{src.name}: an Odometry sample needs its twist")
        t = msg.twist.twist
        t.linear.x, t.linear.y, t.linear.z = sample.linear_velocity
        t.angular.x, t.angular.y, t.angular.z = sample.angular_velocity
    return msg


def command_msg(command: Command):
    """A Float64MultiArray (values in controller joint order) or a one-point JointTrajectory
    (values in ``command.interface``, at ``time_from_start``)."""
    if command.type == "Float64MultiArray":
        return array_msg(command.values, ",".join(command.joint_names))
    sec = int(command.time_from_start)
    point = JointTrajectoryPoint(
        time_from_start=Duration(sec=sec, nanosec=int(round((command.time_from_start - sec) * 1e9)))
    )
    setattr(point, TRAJECTORY_POINT_FIELDS[command.interface], [float(v) for v in command.values])
    return JointTrajectory(joint_names=list(command.joint_names), points=[point])


def command_values(msg, interface: str) -> tuple[list[str] | None, list[float]]:
    """``(joint names or None, values)`` of a received Float64MultiArray or JointTrajectory
    (its first point's ``interface`` field; an empty trajectory gives no values)."""
    if isinstance(msg, JointTrajectory):
        values = (
            list(getattr(msg.points[0], TRAJECTORY_POINT_FIELDS[interface])) if msg.points else []
        )
        return list(msg.joint_names), values
    return None, list(msg.data)
