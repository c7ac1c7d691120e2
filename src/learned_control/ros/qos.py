"""Named QoS profiles, so every node picks them by purpose."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

__all__ = ["SENSOR", "RELIABLE", "LOCKSTEP", "LATCHED", "SUMMARY", "RECORDING"]

SENSOR = qos_profile_sensor_data
"""Best-effort, keep last 5: realtime state streams (joint_states, observation in realtime)."""

RELIABLE = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
"""Reliable, keep last 10: commands, rewards, episode summaries, diagnostics."""

LOCKSTEP = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
"""Reliable and latched, depth 1: the lockstep observation, so a controller that (re)joins late
still receives the observation the bridge is waiting on, exactly once."""

LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
"""Reliable transient-local: model updates and one-shot metadata."""

SUMMARY = QoSProfile(
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
"""Reliable, transient-local, last 100: episode summaries, so a monitor (rqt, a test, the demo)
that matches the bridge late still receives the episodes that ended before it joined."""

RECORDING = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
"""Deep reliable queue for the recorder, so bursts are not dropped."""
