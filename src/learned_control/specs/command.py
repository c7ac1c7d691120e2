"""The command spec, and how a policy action becomes a controller command (and back)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SpecError

__all__ = [
    "CommandSpec",
    "Command",
    "CommandShaper",
    "TRAJECTORY_POINT_FIELDS",
    "command_to_action",
]

COMMAND_TYPES = ("Float64MultiArray", "JointTrajectory")
TRAJECTORY_POINT_FIELDS = {"effort": "effort", "position": "positions", "velocity": "velocities"}
"""The JointTrajectoryPoint field each command interface's values go in."""
INTERFACES = tuple(TRAJECTORY_POINT_FIELDS)


@dataclass(frozen=True)
class CommandSpec:
    """How an action becomes a ros2_control command.

    Args:
        topic: controller command topic, e.g. ``/effort_controller/commands``.
        type: ``Float64MultiArray`` (forward_command_controller) or ``JointTrajectory`` (one point
            at ``time_from_start = period``).
        joints: the controller's ``joints`` parameter order.
        action_joints: the joint of each action element, in policy order (same set as ``joints``).
        low: per controller joint lower limit (action units); values below are clipped and counted.
        high: per controller joint upper limit.
        max_delta: largest change per tick per controller joint; ``None``: no rate limit.
        period: control period (s), the JointTrajectory point's ``time_from_start``.
        interface: JointTrajectory field the values go in: effort, position or velocity.
    """

    topic: str
    type: str
    joints: tuple[str, ...]
    action_joints: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    max_delta: tuple[float, ...] | None = None
    period: float = 0.05
    interface: str = "effort"

    def __post_init__(self) -> None:
        if self.type not in COMMAND_TYPES:
            raise SpecError(f"command: type {self.type!r}, expected one of {COMMAND_TYPES}")
        if self.interface not in INTERFACES:
            raise SpecError(f"command: interface {self.interface!r}, expected one of {INTERFACES}")
        if (
            len(set(self.joints)) != len(self.joints)
            or set(self.joints) != set(self.action_joints)
            or len(self.action_joints) != len(self.joints)
        ):
            raise SpecError(
                f"command: joints {list(self.joints)} and action_joints "
                f"{list(self.action_joints)} must name the same joints once each"
            )
        n = len(self.joints)
        for key in ("low", "high", "max_delta"):
            val = getattr(self, key)
            if val is not None and len(val) != n:
                raise SpecError(
                    f"command: {key} has {len(val)} values, expected {n} (one per joint)"
                )
        for j, lo, hi in zip(self.joints, self.low, self.high, strict=True):
            if not lo <= hi:
                raise SpecError(f"command: joint {j!r} low={lo} > high={hi}")
        if self.max_delta is not None and min(self.max_delta) <= 0:
            raise SpecError(f"command: max_delta={list(self.max_delta)}, expected all > 0")
        if not self.period > 0:
            raise SpecError(f"command: period={self.period!r}, expected > 0 seconds")


@dataclass(frozen=True)
class Command:
    """A shaped command: ``values`` in controller joint order; for JointTrajectory one point at
    ``time_from_start`` (s) in field ``interface``."""

    joint_names: tuple[str, ...]
    values: np.ndarray
    type: str
    interface: str
    time_from_start: float


class CommandShaper:
    """Action (policy order) -> controller-ordered, clipped, rate-limited :class:`Command`.

    ``clip_counts[j]`` counts the ticks controller joint ``j`` was clipped to its limits.
    """

    def __init__(self, spec: CommandSpec) -> None:
        self.spec = spec
        self._order = np.array([spec.action_joints.index(j) for j in spec.joints])
        self._low, self._high = np.array(spec.low), np.array(spec.high)
        self._delta = None if spec.max_delta is None else np.array(spec.max_delta)
        self.clip_counts = np.zeros(len(spec.joints), dtype=np.int64)
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous command (the next one is not rate limited)."""
        self._prev = None

    def shape(self, action: np.ndarray) -> Command:
        """``action`` ``(act_dim,)`` in policy order -> the command to publish."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self._order.shape:
            raise SpecError(
                f"command: action of shape {action.shape}, expected "
                f"{self._order.shape} (one per joint {list(self.spec.action_joints)})"
            )
        vals = action[self._order]
        clipped = np.clip(vals, self._low, self._high)
        self.clip_counts += clipped != vals
        if self._delta is not None and self._prev is not None:
            clipped = np.clip(clipped, self._prev - self._delta, self._prev + self._delta)
        self._prev = clipped
        return Command(
            self.spec.joints, clipped, self.spec.type, self.spec.interface, self.spec.period
        )


def command_to_action(
    spec: CommandSpec, joint_names: Sequence[str] | None, values: Sequence[float]
) -> np.ndarray:
    """A received controller command -> the action ``(act_dim,)`` in policy order.

    Args:
        spec: the command spec.
        joint_names: the message's joint names (JointTrajectory), ``None`` for a
            Float64MultiArray (values in ``spec.joints`` order).
        values: one value per joint.

    Raises:
        SpecError: names that are not the controller's joints, or a wrong number of values.
    """
    names = tuple(spec.joints) if joint_names is None else tuple(joint_names)
    if sorted(names) != sorted(spec.joints) or len(values) != len(names):
        raise SpecError(
            f"command for joints {list(names)} with {len(values)} values rejected: "
            f"the controller takes one value for each of {list(spec.joints)}"
        )
    by_name = dict(zip(names, values, strict=True))
    return np.array([by_name[j] for j in spec.action_joints], dtype=np.float64)
