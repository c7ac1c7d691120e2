"""The observation spec: sources, named features, and the feature expressions' compiler.

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
  :meth:`~learned_control.specs.assembly.ObservationAssembler.reset` restarts from the principal
  value).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError

__all__ = ["SourceSpec", "Feature", "ObservationSpec"]

SOURCE_TYPES = ("JointState", "PoseStamped", "Odometry", "goal")
JOINT_FIELDS = ("position", "velocity", "effort")
BODY_FIELDS = {"position": 3, "orientation": 4, "linear_velocity": 3, "angular_velocity": 3}


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
            raise SpecError(
                f"observation: sim_kinematics={self.sim_kinematics!r}, expected "
                "'stepped' or 'current'"
            )
        compile_features(self)  # validates every expression

    @property
    def dim(self) -> int:
        """Length of the assembled observation."""
        return sum(size for size, _ in compile_features(self))

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


# ----------------------------------------------------------------------------- compiling


class SampleContext:
    """Latest samples, read by the compiled features (an assembler owns one)."""

    def __init__(self, n_joints: int) -> None:
        self.jvals = {f: [math.nan] * n_joints for f in JOINT_FIELDS}  # per spec joint
        self.jstamps = {f: [-math.inf] * n_joints for f in JOINT_FIELDS}
        self.samples: dict[str, Any] = {}
        self.angles: dict[int, float] = {}


_Fn = Callable[[SampleContext], list[float]]
_EXPR_OPTIONS: dict[str, tuple[str, ...]] = {
    "joint": ("field",),
    "body": ("field", "index"),
    "to_world": ("field", "index"),
    "goal": ("index", "size"),
    "const": (),
    "cos": (),
    "sin": (),
    "sub": (),
    "clip": ("low", "high"),
    "angle": ("axis",),
}


def _rotate(q: Sequence[float], v: Sequence[float]) -> list[float]:
    """Rotate 3-vector ``v`` by unit quaternion ``q`` (x, y, z, w)."""
    x, y, z, w = q
    vx, vy, vz = v
    tx, ty, tz = 2 * (y * vz - z * vy), 2 * (z * vx - x * vz), 2 * (x * vy - y * vx)
    return [
        vx + w * tx + y * tz - z * ty,
        vy + w * ty + z * tx - x * tz,
        vz + w * tz + x * ty - y * tx,
    ]


def _indexed(
    where: str, expr: Mapping[str, Any], size: int, get: Callable[[SampleContext], Sequence[float]]
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
        raise SpecError(
            f"{where}: expected exactly one of {', '.join(_EXPR_OPTIONS)}; got keys {sorted(expr)}"
        )
    kind = kinds[0]
    unknown = set(expr) - {kind, *_EXPR_OPTIONS[kind]}
    if unknown:
        raise SpecError(
            f"{where}: unknown option(s) {sorted(unknown)} for {kind!r}; allowed: "
            f"{list(_EXPR_OPTIONS[kind])}"
        )
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
            raise SpecError(
                f"{where}: {kind} {src.name!r} field {fld!r}: expected a PoseStamped/"
                f"Odometry source and a field in {list(BODY_FIELDS)}"
            )
        if fld.endswith("velocity") and src.type != "Odometry":
            raise SpecError(f"{where}: {fld} needs an Odometry source, {src.name!r} is {src.type}")
        if kind == "to_world":
            if not fld.endswith("velocity"):
                raise SpecError(f"{where}: to_world rotates a velocity, not {fld!r}")

            def rotated(c: SampleContext, n: str = src.name, f: str = fld) -> list[float]:
                return _rotate(c.samples[n].orientation, getattr(c.samples[n], f))

            return _indexed(where, expr, 3, rotated)

        def body_field(c: SampleContext, n: str = src.name, f: str = fld) -> Sequence[float]:
            return getattr(c.samples[n], f)

        return _indexed(where, expr, BODY_FIELDS[fld], body_field)
    if kind == "goal":
        src = spec.source(str(expr["goal"]))
        if src.type != "goal":
            raise SpecError(f"{where}: goal {src.name!r} is a {src.type} source")
        size = len(src.value) if src.value is not None else int(expr.get("size", 0))
        if size <= 0:
            raise SpecError(f"{where}: goal {src.name!r} has no value; give its size")

        def goal_value(c: SampleContext, n: str = src.name) -> Sequence[float]:
            return c.samples[n].value

        return _indexed(where, expr, size, goal_value)
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
        raise SpecError(
            f"{where}: angle needs an orientation (4 values) and a unit axis "
            f"[x, y, z], got size {size} and axis {axis}"
        )
    key = id(expr)

    def angle(c: SampleContext) -> list[float]:
        x, y, z, w = inner(c)
        a = 2.0 * math.atan2(x * axis[0] + y * axis[1] + z * axis[2], w)
        prev = c.angles.get(key)
        a = (
            (a + math.pi) % (2 * math.pi) - math.pi
            if prev is None
            else prev + (a - prev + math.pi) % (2 * math.pi) - math.pi
        )
        c.angles[key] = a
        return [a]

    return 1, angle


def compile_features(spec: ObservationSpec) -> list[tuple[int, _Fn]]:
    """``(size, fn)`` of each feature of ``spec`` in order; ``fn(context)`` gives its values."""
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
