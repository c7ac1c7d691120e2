"""Named QoS profiles, so every node picks them by purpose."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

__all__ = ["SENSOR", "RELIABLE", "LOCKSTEP", "LOCKSTEP_ANSWER", "LATCHED", "SUMMARY", "RECORDING"]

SENSOR = qos_profile_sensor_data
"""Best-effort, keep last 5: realtime state streams (joint_states, observation in realtime)."""

RELIABLE = QoSProfile(
    depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
)
"""Reliable, keep last 10: where the newest samples are what counts (diagnostics, goals, a
bridge's command reader)."""

LOCKSTEP = QoSProfile(
    depth=1000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
"""The bridge's lockstep observation writer: reliable, with a history of 1000 as
:data:`RECORDING`; transient-local, so a recorder that matches late still gets the observation
the bridge is waiting on."""

LOCKSTEP_ANSWER = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
    history=HistoryPolicy.KEEP_LAST,
)
"""A lockstep controller's observation reader: live samples only, never the writer's history, so
every observation is answered exactly once (a controller that joins mid-episode is sent the one
the bridge is waiting on again)."""

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
"""Both ends of a topic a recorder must not miss (applied commands, rewards, commands, expert
labels, a driver's state topics): the writer keeps 1000 samples, so a reliable reader that falls
behind for a moment (a recorder on a loaded machine, with lockstep at hundreds of steps per
second) is repaired from them instead of losing what a history of 10 already replaced; the
reader queues as many, so bursts are not dropped."""
