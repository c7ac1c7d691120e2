"""Observation assembly: robot messages as plain samples, and the assembler that turns the
latest sample of each source into the observation vector of an :class:`ObservationSpec`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpecError
from .observation import (
    JOINT_FIELDS,
    ObservationSpec,
    SampleContext,
    SourceSpec,
    compile_features,
)

__all__ = [
    "JointSample",
    "PoseSample",
    "GoalSample",
    "Assembly",
    "ObservationAssembler",
    "stamp_seconds",
    "sample_from_msg",
]


@dataclass(frozen=True)
class JointSample:
    """A JointState message as plain data: names and per-name values (rad, rad/s, N or N m)."""

    names: tuple[str, ...]
    position: Sequence[float]
    velocity: Sequence[float]
    effort: Sequence[float]
    stamp: float


@dataclass(frozen=True)
class PoseSample:
    """A PoseStamped or Odometry message: world position (3, m), orientation ``x,y,z,w`` (4);
    Odometry twists (3 each, m/s and rad/s) in the body frame (REP-105), ``None`` for poses."""

    position: Sequence[float]
    orientation: Sequence[float]
    linear_velocity: Sequence[float] | None
    angular_velocity: Sequence[float] | None
    frame: str
    stamp: float


@dataclass(frozen=True)
class GoalSample:
    """A goal vector (any length) and its stamp (s)."""

    value: Sequence[float]
    stamp: float


@dataclass(frozen=True)
class Assembly:
    """One tick: ``observation`` ``(obs_dim,)`` or ``None`` when a source is stale or missing."""

    observation: np.ndarray | None
    stale: tuple[str, ...]


class ObservationAssembler:
    """Keeps the latest sample per source and assembles the observation vector.

    JointState messages may come in any name order, carry extra joints, or carry only some
    joints (several drivers on ``/joint_states``): each joint value keeps its own stamp, and the
    JointState source is stale while any value the features read is older than ``max_age``.

    Args:
        spec: the observation spec (compiled once here).
    """

    def __init__(self, spec: ObservationSpec) -> None:
        self.spec = spec
        self._fns = [fn for _, fn in compile_features(spec)]
        self.dim = spec.dim
        joints = spec.joints
        self._ctx = SampleContext(len(joints))
        self._spec_index = {n: k for k, n in enumerate(joints)}
        self._pairs_cache: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        self._joint_source = next((s.name for s in spec.sources if s.type == "JointState"), None)
        self._needed = [(f, joints.index(j)) for j, f in spec.joint_fields]
        self._fields = tuple(f for f in JOINT_FIELDS if any(f == g for _, g in spec.joint_fields))
        for src in spec.sources:
            if src.type == "goal" and src.value is not None:
                self._ctx.samples[src.name] = GoalSample(tuple(src.value), math.inf)

    def reset(self) -> None:
        """Forget the unwrapped angles (call at an episode start; samples are kept)."""
        self._ctx.angles.clear()

    def check(self, joint_names: Iterable[str], topics: Iterable[str]) -> None:
        """Configure-time check: SpecError naming any joint or topic the robot lacks."""
        missing_j = sorted(set(self.spec.joints) - set(joint_names))
        if missing_j:
            raise SpecError(
                f"the robot's /joint_states lacks joint(s) {missing_j} named by the "
                "observation spec"
            )
        topics = set(topics)
        for src in self.spec.sources:
            if src.topic and src.topic not in topics and not (src.type == "goal" and src.value):
                raise SpecError(
                    f"source {src.name!r}: topic {src.topic!r} ({src.type}) is not "
                    "published on this robot"
                )

    def update(self, source: str, sample: JointSample | PoseSample | GoalSample) -> bool:
        """Store the latest ``sample`` of ``source`` (any JointState order; extras ignored).

        Returns False, dropping the sample, for a pose in another frame than the spec's.
        """
        if source == self._joint_source:
            assert isinstance(sample, JointSample)
            pairs = self._pairs_cache.get(sample.names)
            if pairs is None:  # (message index, spec joint index) of the joints the spec reads
                pairs = [
                    (i, self._spec_index[n])
                    for i, n in enumerate(sample.names)
                    if n in self._spec_index
                ]
                self._pairs_cache[sample.names] = pairs
            for fld in self._fields:  # only the fields the features read
                msg_vals = getattr(sample, fld)
                if len(msg_vals) == len(sample.names):  # JointState may leave a field empty
                    vals, stamps = self._ctx.jvals[fld], self._ctx.jstamps[fld]
                    for i, k in pairs:
                        vals[k], stamps[k] = msg_vals[i], sample.stamp
            return True
        if isinstance(sample, PoseSample) and sample.frame != self.spec.source(source).frame:
            return False
        self._ctx.samples[source] = sample
        return True

    def _stamp(self, src: SourceSpec) -> float:
        """Stamp (s) of ``src``'s latest sample (see :meth:`stamps`)."""
        if src.name == self._joint_source:
            stamps = self._ctx.jstamps
            return min([stamps[f][k] for f, k in self._needed], default=math.inf)
        s = self._ctx.samples.get(src.name)
        return -math.inf if s is None else s.stamp

    def stamps(self) -> dict[str, float]:
        """Stamp (s) of each source's latest sample: ``-inf`` before the first, ``inf`` for a
        goal given only by parameter; for JointState the oldest value the features read."""
        return {src.name: self._stamp(src) for src in self.spec.sources}

    def stale(self, now: float) -> tuple[str, ...]:
        """Sources with no sample yet or one older than their ``max_age`` at ``now`` (s)."""
        out = []
        for src in self.spec.sources:
            stamp = self._stamp(src)
            if stamp == -math.inf or (src.max_age is not None and now - stamp > src.max_age):
                out.append(src.name)
        return tuple(out)

    def assemble(self, now: float) -> Assembly:
        """The observation ``(obs_dim,)`` at ``now`` (s), or ``None`` plus the stale sources."""
        stale = self.stale(now)
        if stale:
            return Assembly(None, stale)
        vals: list[float] = []
        for fn in self._fns:
            vals.extend(fn(self._ctx))
        return Assembly(np.array(vals, dtype=np.float64), ())


def stamp_seconds(stamp: Any) -> float:
    """A ``builtin_interfaces/Time`` (``sec``, ``nanosec``) in seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def sample_from_msg(
    src: SourceSpec, msg: Any, stamp: float | None = None
) -> JointSample | PoseSample | GoalSample:
    """The sample of source ``src`` a JointState, PoseStamped, Odometry or (goal) PointStamped
    message carries; any object with those fields will do (an rclpy message, a ``rosbags`` one).
    ``stamp`` (s): the sample's time instead of ``header.stamp`` (a bag's receive time)."""
    stamp = stamp_seconds(msg.header.stamp) if stamp is None else stamp
    if src.type == "JointState":
        return JointSample(tuple(msg.name), msg.position, msg.velocity, msg.effort, stamp)
    if src.type == "goal":
        p = msg.point
        size = len(src.value) if src.value is not None else 3
        return GoalSample((p.x, p.y, p.z)[:size], stamp)
    pose = msg.pose.pose if src.type == "Odometry" else msg.pose
    p, q = pose.position, pose.orientation
    lin = ang = None
    if src.type == "Odometry":
        t = msg.twist.twist
        lin, ang = (t.linear.x, t.linear.y, t.linear.z), (t.angular.x, t.angular.y, t.angular.z)
    return PoseSample((p.x, p.y, p.z), (q.x, q.y, q.z, q.w), lin, ang, msg.header.frame_id, stamp)
