"""Observation and command specs: how a policy's vectors map onto standard robot topics.

A robot does not publish our ``observation`` vector. An :class:`ObservationSpec` says how to
assemble it from the latest samples of a robot's sources (``/joint_states``, PoseStamped or
Odometry topics, goals given by parameter or topic); a :class:`CommandSpec` says how an action
becomes a ros2_control command (joint order, limits, rate limit, message type). Both live in one
editable YAML file (:func:`dump_specs`, :func:`load_specs`); each registry task has a default one
(``specs/<task>.yaml``, :func:`default_specs`).

Feature expressions (each a one-key mapping plus options), evaluated into a flat vector:

- ``{joint: NAME, field: position|velocity|effort}`` -> 1 value from the JointState source.
- ``{body: SOURCE, field: position|orientation|linear_velocity|angular_velocity, index: [..]}``
  -> a PoseStamped/Odometry field (orientation is ``x, y, z, w``; Odometry twists are in the body
  frame, REP-105).
- ``{to_world: SOURCE, field: linear_velocity|angular_velocity, index: [..]}`` -> an Odometry
  twist rotated from the body frame into the world frame.
- ``{goal: SOURCE, index: [..]}`` -> a goal vector (parameter ``value`` or topic).
- ``{const: [..]}``; ``{cos: EXPR}``; ``{sin: EXPR}``; ``{sub: [EXPR, EXPR]}`` (a - b);
  ``{clip: EXPR, low: L, high: H}``; ``{angle: EXPR, axis: [x, y, z]}`` -> the rotation angle (rad)
  about ``axis`` of an orientation quaternion, unwrapped over time (a change under pi per tick;
  :meth:`ObservationAssembler.reset` restarts from the principal value).

The ROS nodes only convert messages into :class:`JointSample`/:class:`PoseSample`/
:class:`GoalSample`; :func:`driver_samples` produces the same samples from a MuJoCo env.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import SpecError
from ..tasks import get_task

__all__ = [
    "SourceSpec", "Feature", "ObservationSpec", "CommandSpec", "RobotSpecs",
    "JointSample", "PoseSample", "GoalSample", "Assembly", "ObservationAssembler",
    "Command", "CommandShaper", "command_to_action", "load_specs", "dump_specs",
    "specs_from_dict", "default_specs", "specs_for", "driver_samples",
]

SOURCE_TYPES = ("JointState", "PoseStamped", "Odometry", "goal")
COMMAND_TYPES = ("Float64MultiArray", "JointTrajectory")
INTERFACES = ("effort", "position", "velocity")
JOINT_FIELDS = ("position", "velocity", "effort")
BODY_FIELDS = {"position": 3, "orientation": 4, "linear_velocity": 3, "angular_velocity": 3}
NOT_EXPRESSIBLE = {
    "Ant-v5": "its observation holds 78 contact-force values (cfrc_ext) that no standard robot "
              "topic carries",
}


@dataclass(frozen=True)
class SourceSpec:
    """One input of the observation.

    Args:
        name: key the features refer to.
        type: ``JointState``, ``PoseStamped``, ``Odometry`` or ``goal``.
        topic: ROS topic; for a goal ``None`` means parameter only.
        max_age: samples older than this (s) make the source stale; ``None``: never stale (a
            goal given only by parameter never is).
        frame: the world frame a pose must be expressed in (``header.frame_id``); samples in
            another frame are dropped.
        value: goal default (parameter), any length; only for ``goal``.
        sim_body: MuJoCo body the driver-shaped simulator reports for a pose source
            (default: ``name``).
        sim_joints: MuJoCo joints whose positions hold a goal in simulation.
    """

    name: str
    type: str
    topic: str | None = None
    max_age: float | None = 0.1
    frame: str = "world"
    value: tuple[float, ...] | None = None
    sim_body: str | None = None
    sim_joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"source {self.name!r}"
        if self.type not in SOURCE_TYPES:
            raise SpecError(f"{where}: type {self.type!r}, expected one of {SOURCE_TYPES}")
        if self.type != "goal" and not self.topic:
            raise SpecError(f"{where}: a {self.type} source needs a topic")
        if self.type == "goal" and self.topic is None and self.value is None:
            raise SpecError(f"{where}: a goal needs a topic or a value (parameter)")
        if self.max_age is not None and not self.max_age > 0:
            raise SpecError(f"{where}: max_age={self.max_age!r}, expected > 0 seconds or null")
        if self.value is not None and self.type != "goal":
            raise SpecError(f"{where}: value is only for goal sources")


@dataclass(frozen=True)
class Feature:
    """A named block of the observation: ``expr`` (see the module doc) gives ``size`` values."""

    name: str
    expr: Mapping[str, Any]


@dataclass(frozen=True)
class ObservationSpec:
    """Ordered features over sources; their concatenation is the policy observation.

    Args:
        sources: inputs; at most one ``JointState`` source.
        features: in observation order.
        sim_kinematics: body state the driver-shaped simulator reports: ``stepped`` (MuJoCo's
            ``data.xpos`` as left by ``mj_step``, what Gymnasium's ``get_body_com`` reads) or
            ``current`` (recomputed from the current ``qpos``/``qvel``, what a mocap sees).
    """

    sources: tuple[SourceSpec, ...]
    features: tuple[Feature, ...]
    sim_kinematics: str = "stepped"

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SpecError(f"observation: source names {sorted(dup)} appear more than once")
        if sum(s.type == "JointState" for s in self.sources) > 1:
            raise SpecError("observation: more than one JointState source")
        if self.sim_kinematics not in ("stepped", "current"):
            raise SpecError(f"observation: sim_kinematics={self.sim_kinematics!r}, expected "
                            "'stepped' or 'current'")
        _compile_features(self)  # validates every expression

    @property
    def dim(self) -> int:
        """Length of the assembled observation."""
        return sum(size for size, _ in _compile_features(self))

    @property
    def joint_fields(self) -> tuple[tuple[str, str], ...]:
        """``(joint, field)`` pairs the features read, in first-use order."""
        found: list[tuple[str, str]] = []
        for feat in self.features:
            _walk_joints(feat.expr, found)
        return tuple(found)

    @property
    def joints(self) -> tuple[str, ...]:
        """Joint names the features read, in first-use order."""
        return tuple(dict.fromkeys(j for j, _ in self.joint_fields))

    def source(self, name: str) -> SourceSpec:
        for src in self.sources:
            if src.name == name:
                return src
        have = [s.name for s in self.sources]
        raise SpecError(f"observation: no source named {name!r} (have {have})")


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
        if (len(set(self.joints)) != len(self.joints) or set(self.joints) != set(self.action_joints)
                or len(self.action_joints) != len(self.joints)):
            raise SpecError(f"command: joints {list(self.joints)} and action_joints "
                            f"{list(self.action_joints)} must name the same joints once each")
        n = len(self.joints)
        for key in ("low", "high", "max_delta"):
            val = getattr(self, key)
            if val is not None and len(val) != n:
                raise SpecError(f"command: {key} has {len(val)} values, expected {n} "
                                "(one per joint)")
        for j, lo, hi in zip(self.joints, self.low, self.high, strict=True):
            if not lo <= hi:
                raise SpecError(f"command: joint {j!r} low={lo} > high={hi}")
        if self.max_delta is not None and min(self.max_delta) <= 0:
            raise SpecError(f"command: max_delta={list(self.max_delta)}, expected all > 0")
        if not self.period > 0:
            raise SpecError(f"command: period={self.period!r}, expected > 0 seconds")


@dataclass(frozen=True)
class RobotSpecs:
    """Both specs of one task, as in a ``spec_file``."""

    task: str
    observation: ObservationSpec
    command: CommandSpec


# ----------------------------------------------------------------------------- samples

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


# ----------------------------------------------------------------------------- compiling

class _Ctx:
    """Latest samples, read by the compiled features."""

    def __init__(self, n_joints: int) -> None:
        self.jvals = {f: [math.nan] * n_joints for f in JOINT_FIELDS}  # per spec joint
        self.jstamps = {f: [-math.inf] * n_joints for f in JOINT_FIELDS}
        self.samples: dict[str, Any] = {}
        self.angles: dict[int, float] = {}


_Fn = Callable[[_Ctx], list[float]]
_EXPR_OPTIONS: dict[str, tuple[str, ...]] = {
    "joint": ("field",), "body": ("field", "index"), "to_world": ("field", "index"),
    "goal": ("index", "size"), "const": (), "cos": (), "sin": (), "sub": (),
    "clip": ("low", "high"), "angle": ("axis",),
}


def _rotate(q: Sequence[float], v: Sequence[float]) -> list[float]:
    """Rotate 3-vector ``v`` by unit quaternion ``q`` (x, y, z, w)."""
    x, y, z, w = q
    vx, vy, vz = v
    tx, ty, tz = 2 * (y * vz - z * vy), 2 * (z * vx - x * vz), 2 * (x * vy - y * vx)
    return [vx + w * tx + y * tz - z * ty, vy + w * ty + z * tx - x * tz,
            vz + w * tz + x * ty - y * tx]


def _indexed(where: str, expr: Mapping[str, Any], size: int, get: Callable[[_Ctx], Sequence[float]]
             ) -> tuple[int, _Fn]:
    idx = expr.get("index")
    if idx is None:
        return size, lambda c: list(get(c))
    idx = [int(i) for i in idx]
    if any(not 0 <= i < size for i in idx):
        raise SpecError(f"{where}: index {idx} out of range for a field of size {size}")
    return len(idx), lambda c: [get(c)[i] for i in idx]


def _compile(expr: Any, spec: ObservationSpec, where: str) -> tuple[int, _Fn]:
    """``(size, fn)`` of one expression; SpecError naming ``where`` if it is malformed."""
    if not isinstance(expr, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {expr!r}")
    kinds = [k for k in _EXPR_OPTIONS if k in expr]
    if len(kinds) != 1:
        raise SpecError(f"{where}: expected exactly one of {', '.join(_EXPR_OPTIONS)}; got keys "
                        f"{sorted(expr)}")
    kind = kinds[0]
    unknown = set(expr) - {kind, *_EXPR_OPTIONS[kind]}
    if unknown:
        raise SpecError(f"{where}: unknown option(s) {sorted(unknown)} for {kind!r}; allowed: "
                        f"{list(_EXPR_OPTIONS[kind])}")
    if kind == "joint":
        name, fld = str(expr["joint"]), expr.get("field", "position")
        if fld not in JOINT_FIELDS:
            raise SpecError(f"{where}: joint field {fld!r}, expected one of {JOINT_FIELDS}")
        if not any(s.type == "JointState" for s in spec.sources):
            raise SpecError(f"{where}: joint {name!r} but the spec has no JointState source")
        k = spec.joints.index(name)
        return 1, lambda c: [c.jvals[fld][k]]
    if kind in ("body", "to_world"):
        src = spec.source(str(expr[kind]))
        fld = expr.get("field", "position")
        if src.type not in ("PoseStamped", "Odometry") or fld not in BODY_FIELDS:
            raise SpecError(f"{where}: {kind} {src.name!r} field {fld!r}: expected a PoseStamped/"
                            f"Odometry source and a field in {list(BODY_FIELDS)}")
        if fld.endswith("velocity") and src.type != "Odometry":
            raise SpecError(f"{where}: {fld} needs an Odometry source, {src.name!r} is {src.type}")
        if kind == "to_world":
            if not fld.endswith("velocity"):
                raise SpecError(f"{where}: to_world rotates a velocity, not {fld!r}")
            return _indexed(where, expr, 3, lambda c, n=src.name, f=fld: _rotate(
                c.samples[n].orientation, getattr(c.samples[n], f)))
        return _indexed(where, expr, BODY_FIELDS[fld],
                        lambda c, n=src.name, f=fld: getattr(c.samples[n], f))
    if kind == "goal":
        src = spec.source(str(expr["goal"]))
        if src.type != "goal":
            raise SpecError(f"{where}: goal {src.name!r} is a {src.type} source")
        size = len(src.value) if src.value is not None else int(expr.get("size", 0))
        if size <= 0:
            raise SpecError(f"{where}: goal {src.name!r} has no value; give its size")
        return _indexed(where, expr, size, lambda c, n=src.name: c.samples[n].value)
    if kind == "const":
        vals = [float(v) for v in expr["const"]]
        return len(vals), lambda c: vals
    if kind in ("cos", "sin"):
        size, inner = _compile(expr[kind], spec, f"{where}.{kind}")
        op = math.cos if kind == "cos" else math.sin
        return size, lambda c: [op(v) for v in inner(c)]
    if kind == "sub":
        pair = expr["sub"]
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise SpecError(f"{where}: sub takes a list of two expressions, got {pair!r}")
        (na, fa), (nb, fb) = (_compile(e, spec, f"{where}.sub[{i}]") for i, e in enumerate(pair))
        if na != nb:
            raise SpecError(f"{where}: sub of sizes {na} and {nb}")
        return na, lambda c: [a - b for a, b in zip(fa(c), fb(c), strict=True)]
    if kind == "clip":
        lo, hi = float(expr.get("low", -math.inf)), float(expr.get("high", math.inf))
        if not lo <= hi:
            raise SpecError(f"{where}: clip low={lo} > high={hi}")
        size, inner = _compile(expr["clip"], spec, f"{where}.clip")
        return size, lambda c: [min(max(v, lo), hi) for v in inner(c)]
    # angle about an axis from a quaternion, unwrapped against the previous tick
    axis = [float(a) for a in expr.get("axis", ())]
    size, inner = _compile(expr["angle"], spec, f"{where}.angle")
    if size != 4 or len(axis) != 3 or not math.isclose(math.hypot(*axis), 1.0):
        raise SpecError(f"{where}: angle needs an orientation (4 values) and a unit axis "
                        f"[x, y, z], got size {size} and axis {axis}")
    key = id(expr)

    def angle(c: _Ctx) -> list[float]:
        x, y, z, w = inner(c)
        a = 2.0 * math.atan2(x * axis[0] + y * axis[1] + z * axis[2], w)
        prev = c.angles.get(key)
        a = (a + math.pi) % (2 * math.pi) - math.pi if prev is None else \
            prev + (a - prev + math.pi) % (2 * math.pi) - math.pi
        c.angles[key] = a
        return [a]
    return 1, angle


def _compile_features(spec: ObservationSpec) -> list[tuple[int, _Fn]]:
    return [_compile(f.expr, spec, f"feature {f.name!r}") for f in spec.features]


def _walk_joints(expr: Any, found: list[tuple[str, str]]) -> None:
    if isinstance(expr, Mapping):
        pair = (str(expr["joint"]), str(expr.get("field", "position"))) if "joint" in expr else None
        if pair is not None and pair not in found:
            found.append(pair)
        for v in expr.values():
            _walk_joints(v, found)
    elif isinstance(expr, list | tuple):
        for v in expr:
            _walk_joints(v, found)


# ----------------------------------------------------------------------------- assembler

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
        self._fns = [fn for _, fn in _compile_features(spec)]
        self.dim = spec.dim
        joints = spec.joints
        self._ctx = _Ctx(len(joints))
        self._spec_index = {n: k for k, n in enumerate(joints)}
        self._pairs_cache: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        self._joint_source = next((s.name for s in spec.sources if s.type == "JointState"), None)
        self._needed = [(f, joints.index(j)) for j, f in spec.joint_fields]
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
            raise SpecError(f"the robot's /joint_states lacks joint(s) {missing_j} named by the "
                            "observation spec")
        topics = set(topics)
        for src in self.spec.sources:
            if src.topic and src.topic not in topics and not (src.type == "goal" and src.value):
                raise SpecError(f"source {src.name!r}: topic {src.topic!r} ({src.type}) is not "
                                "published on this robot")

    def update(self, source: str, sample: JointSample | PoseSample | GoalSample) -> bool:
        """Store the latest ``sample`` of ``source`` (any JointState order; extras ignored).

        Returns False, dropping the sample, for a pose in another frame than the spec's.
        """
        if source == self._joint_source:
            assert isinstance(sample, JointSample)
            pairs = self._pairs_cache.get(sample.names)
            if pairs is None:  # (message index, spec joint index) of the joints the spec reads
                pairs = [(i, self._spec_index[n]) for i, n in enumerate(sample.names)
                         if n in self._spec_index]
                self._pairs_cache[sample.names] = pairs
            for fld in JOINT_FIELDS:
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

    def stamps(self) -> dict[str, float]:
        """Stamp (s) of each source's latest sample: ``-inf`` before the first, ``inf`` for a
        goal given only by parameter; for JointState the oldest value the features read."""
        out = {}
        for src in self.spec.sources:
            if src.name == self._joint_source:
                stamps = self._ctx.jstamps
                out[src.name] = min((stamps[f][k] for f, k in self._needed), default=math.inf)
            else:
                s = self._ctx.samples.get(src.name)
                out[src.name] = -math.inf if s is None else s.stamp
        return out

    def stale(self, now: float) -> tuple[str, ...]:
        """Sources with no sample yet or one older than their ``max_age`` at ``now`` (s)."""
        stamps = self.stamps()
        return tuple(src.name for src in self.spec.sources if stamps[src.name] == -math.inf or (
            src.max_age is not None and now - stamps[src.name] > src.max_age))

    def assemble(self, now: float) -> Assembly:
        """The observation ``(obs_dim,)`` at ``now`` (s), or ``None`` plus the stale sources."""
        stale = self.stale(now)
        if stale:
            return Assembly(None, stale)
        vals: list[float] = []
        for fn in self._fns:
            vals.extend(fn(self._ctx))
        return Assembly(np.array(vals, dtype=np.float64), ())


# ----------------------------------------------------------------------------- commands

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
            raise SpecError(f"command: action of shape {action.shape}, expected "
                            f"{self._order.shape} (one per joint {list(self.spec.action_joints)})")
        vals = action[self._order]
        clipped = np.clip(vals, self._low, self._high)
        self.clip_counts += clipped != vals
        if self._delta is not None and self._prev is not None:
            clipped = np.clip(clipped, self._prev - self._delta, self._prev + self._delta)
        self._prev = clipped
        return Command(self.spec.joints, clipped, self.spec.type, self.spec.interface,
                       self.spec.period)


def command_to_action(spec: CommandSpec, joint_names: Sequence[str] | None,
                      values: Sequence[float]) -> np.ndarray:
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
        raise SpecError(f"command for joints {list(names)} with {len(values)} values rejected: "
                        f"the controller takes one value for each of {list(spec.joints)}")
    by_name = dict(zip(names, values, strict=True))
    return np.array([by_name[j] for j in spec.action_joints], dtype=np.float64)


# ----------------------------------------------------------------------------- YAML

def _tuple(v: Any) -> tuple[float, ...] | None:
    return None if v is None else tuple(float(x) for x in v)


def specs_from_dict(data: Any, where: str = "spec") -> RobotSpecs:
    """Validate a parsed spec file; SpecError naming the bad entry and ``where``."""
    if not isinstance(data, Mapping) or not {"task", "observation", "command"} <= set(data):
        raise SpecError(f"{where}: expected a mapping with task, observation and command")
    try:
        obs, cmd = data["observation"], data["command"]
        sources = []
        for i, s in enumerate(obs["sources"]):
            unknown = set(s) - {f.name for f in SourceSpec.__dataclass_fields__.values()}
            if unknown:
                raise SpecError(f"observation.sources[{i}]: unknown key(s) {sorted(unknown)}")
            sources.append(SourceSpec(**{**s, "value": _tuple(s.get("value")),
                                         "sim_joints": tuple(s.get("sim_joints", ()))}))
        features = []
        for i, f in enumerate(obs["features"]):
            if not isinstance(f, Mapping) or set(f) != {"name", "expr"}:
                raise SpecError(f"observation.features[{i}]: expected keys name and expr, "
                                f"got {f!r}")
            features.append(Feature(str(f["name"]), f["expr"]))
        ospec = ObservationSpec(tuple(sources), tuple(features),
                                obs.get("sim_kinematics", "stepped"))
        cspec = CommandSpec(**{**cmd, "joints": tuple(cmd["joints"]),
                               "action_joints": tuple(cmd["action_joints"]),
                               "low": _tuple(cmd["low"]), "high": _tuple(cmd["high"]),
                               "max_delta": _tuple(cmd.get("max_delta"))})
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise SpecError(f"{where}: malformed entry ({type(err).__name__}: {err})") from None
    task = str(data["task"])
    expected = get_task(task).obs_dim
    if ospec.dim != expected:
        raise SpecError(f"{where}: the observation features give {ospec.dim} values, task {task} "
                        f"expects {expected}")
    return RobotSpecs(task, ospec, cspec)


def load_specs(path: str | Path) -> RobotSpecs:
    """Read and validate a spec file (YAML)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SpecError(f"{path}: cannot read a YAML spec file ({err})") from None
    return specs_from_dict(data, str(path))


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def dump_specs(specs: RobotSpecs) -> str:
    """The YAML text of ``specs`` (what ``learned-control export-spec`` prints)."""
    def source_dict(src: SourceSpec) -> dict[str, Any]:
        """The fields users edit, plus any other field off its default."""
        shown = {"name", "type", "topic", "max_age"} | ({"frame"} if src.type in (
            "PoseStamped", "Odometry") else set())
        return {name: _plain(getattr(src, name))
                for name, f in SourceSpec.__dataclass_fields__.items()
                if name in shown or getattr(src, name) != f.default}
    o = specs.observation
    data = {"task": specs.task,
            "observation": {"sim_kinematics": o.sim_kinematics,
                            "sources": [source_dict(s) for s in o.sources],
                            "features": [{"name": f.name, "expr": _plain(f.expr)}
                                         for f in o.features]},
            "command": _plain({k: getattr(specs.command, k)
                               for k in CommandSpec.__dataclass_fields__})}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def default_specs(task: str) -> RobotSpecs:
    """The packaged spec of ``task``; SpecError saying why where none is expressible."""
    get_task(task)
    if task in NOT_EXPRESSIBLE:
        raise SpecError(f"task {task}: observation not expressible from robot topics: "
                        f"{NOT_EXPRESSIBLE[task]}")
    ref = resources.files(__name__).joinpath(f"{task}.yaml")
    if not ref.is_file():
        raise SpecError(f"task {task}: no packaged spec file {task}.yaml yet; write one from "
                        "another task's export-spec output")
    return specs_from_dict(yaml.safe_load(ref.read_text()), f"{task}.yaml")


def specs_for(task: str, spec_file: str = "") -> RobotSpecs:
    """The specs a node runs: ``spec_file`` when given (it must be for ``task``), else the
    packaged default of ``task``."""
    specs = load_specs(spec_file) if spec_file else default_specs(task)
    if specs.task != task:
        raise SpecError(f"{spec_file}: a spec for task {specs.task}, but the node runs {task}")
    return specs


# ----------------------------------------------------------------------------- simulator

def driver_samples(spec: ObservationSpec, model: Any, data: Any, stamp: float,
                   scratch: Any = None) -> dict[str, JointSample | PoseSample | GoalSample]:
    """What a ros2_control robot with mocap would publish, from a MuJoCo ``model``/``data``.

    Joints: positions/velocities from ``qpos``/``qvel`` (``jnt_qposadr``/``jnt_dofadr``), efforts
    (N or N m) the actuators apply at each joint (``qfrc_actuator``). Poses: world position,
    ``x,y,z,w`` orientation and, for Odometry, the body-frame twist (REP-105). Goals: the
    positions of ``sim_joints``.

    Args:
        spec: which joints, bodies and goals to report.
        model: ``env.unwrapped.model``.
        data: ``env.unwrapped.data`` (not modified).
        stamp: time of every sample (s).
        scratch: an ``MjData`` for ``sim_kinematics: current`` (made when ``None``).
    """
    import mujoco

    def jid(name: str) -> int:
        i = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if i < 0:
            raise SpecError(f"simulator: the MuJoCo model has no joint {name!r}")
        return i

    out: dict[str, JointSample | PoseSample | GoalSample] = {}
    body_data = data
    if spec.sim_kinematics == "current":
        body_data = scratch if scratch is not None else mujoco.MjData(model)
        body_data.qpos[:], body_data.qvel[:] = data.qpos, data.qvel
        mujoco.mj_kinematics(model, body_data)
        mujoco.mj_comPos(model, body_data)
        mujoco.mj_comVel(model, body_data)
    for src in spec.sources:
        if src.type == "JointState":
            names = spec.joints
            ids = [jid(n) for n in names]
            dofs = [model.jnt_dofadr[i] for i in ids]
            out[src.name] = JointSample(
                names, [float(data.qpos[model.jnt_qposadr[i]]) for i in ids],
                [float(data.qvel[d]) for d in dofs], [float(data.qfrc_actuator[d]) for d in dofs],
                stamp)
        elif src.type == "goal":
            if src.sim_joints:
                out[src.name] = GoalSample(
                    [float(data.qpos[model.jnt_qposadr[jid(n)]]) for n in src.sim_joints], stamp)
        else:
            body = src.sim_body or src.name
            b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            if b < 0:
                raise SpecError(f"simulator: source {src.name!r}: the MuJoCo model has no body "
                                f"{body!r}")
            w, x, y, z = body_data.xquat[b]
            lin = ang = None
            if src.type == "Odometry":
                vel = np.zeros(6)
                mujoco.mj_objectVelocity(model, body_data, mujoco.mjtObj.mjOBJ_XBODY, b, vel, 1)
                ang, lin = vel[:3].tolist(), vel[3:].tolist()
            out[src.name] = PoseSample(body_data.xpos[b].tolist(), [x, y, z, w], lin, ang,
                                       src.frame, stamp)
    return out
