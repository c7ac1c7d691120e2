"""Specs generated from a MuJoCo env's model, kept only when they reproduce its observation.

:func:`generate_specs` probes the env (seeded random rollouts, plus states with perturbed robot
joint positions and large velocities set through ``mj_forward``) and matches every observation
element against what robot topics carry, in this order of preference:

1. the robot's joints (hinge/slide joints in a subtree some actuator drives) on ``/joint_states``:
   position, velocity, effort (``qfrc_actuator``), ``cos``/``sin`` of a hinge position;
2. goals: the joint positions of an unactuated body (Reacher's target, ``sim_joints``), or the
   fixed position of an unactuated body with joints (Pusher's goal, a parameter ``value``);
3. body poses (PoseStamped; Odometry where a twist is read): position, orientation, body-frame
   and world-frame twists;
4. a body position minus a goal or another body's position, per axis;

each possibly clipped symmetrically (``clip`` with the bound seen saturating). The features are
read from ``data`` as ``mj_step`` leaves it (``sim_kinematics: stepped``) or recomputed from
``qpos``/``qvel`` (``current``), whichever matches more elements. The generated spec is then
verified by construction: :class:`~learned_control.specs.assembly.ObservationAssembler` fed with
:func:`~learned_control.specs.simulator.driver_samples` must reproduce the env's observation to
1e-9 over a fresh random rollout. Otherwise :class:`SpecError` says in one line which elements
no robot topic carries (named by the MuJoCo quantity they equal, e.g. ``cfrc_ext``) and which
env kwargs leave them out.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import SpecError
from ..tasks import Task, flatten_dict_obs
from .assembly import ObservationAssembler
from .command import CommandSpec
from .observation import Feature, ObservationSpec, SourceSpec
from .simulator import driver_samples

__all__ = ["generate_specs", "MODES"]

MODES = ("stepped", "current")
PROBE_SEEDS, PROBE_STEPS, PERTURBED = (0, 1, 2), 25, 40  # probe rollouts and perturbed states
VERIFY_SEED, VERIFY_STEPS = 100, 200
TOL = 1e-9
MAX_AGE = 0.1  # s, of every generated topic source
JOINT_FIELDS = ("position", "velocity", "effort")
AXES = "xyz"
QUAT_AXES = "xyzw"  # PoseSample orientation order

_DATA_FIELDS = {  # MuJoCo quantities an observation may hold that no robot topic carries
    "cfrc_ext": "contact forces",
    "cinert": "body inertias",
    "cvel": "body com velocities",
    "qfrc_constraint": "constraint forces",
    "cfrc_int": "internal forces",
    "qfrc_passive": "passive forces",
    "qfrc_bias": "bias forces",
    "qacc": "accelerations",
    "cacc": "body accelerations",
    "sensordata": "sensor values",
    "site_xpos": "site positions",
    "xipos": "body com positions",
    "subtree_com": "subtree coms",
    "qpos": "free-joint coordinates",
    "qvel": "free-joint velocities",
}


@dataclass
class _Probe:
    """Probed states of one env: ``obs`` ``(n, obs_dim)``; per quantity a ``(n, ...)`` array."""

    obs: list[np.ndarray] = field(default_factory=list)
    joint: dict[str, list[np.ndarray]] = field(default_factory=dict)  # field -> (n, njnt)
    body: dict[str, dict[str, list[np.ndarray]]] = field(
        default_factory=lambda: {m: {} for m in MODES}
    )
    quantities: dict[str, list[np.ndarray]] = field(default_factory=dict)
    rollout: list[bool] = field(default_factory=list)  # True: a state reached by stepping
    reset: list[bool] = field(default_factory=list)  # True: the state right after a reset

    def add(self, key: dict[str, list[np.ndarray]], name: str, value: np.ndarray) -> None:
        key.setdefault(name, []).append(np.array(value, dtype=np.float64).reshape(-1))


@dataclass(frozen=True)
class _Atom:
    """What one observation element equals.

    ``kind``: ``joint`` (``field`` of joint ``name``), ``cos``/``sin`` (of its position),
    ``goal`` (element ``index`` of goal ``name`` held by its body's joints), ``goal_value``
    (fixed position of body ``name``), ``body`` (``field`` element ``index`` of body ``name``;
    ``world_*`` twists rotated into the world frame); with ``other``: this minus ``other``;
    with ``clip``: clipped to ``[-clip, clip]``.
    """

    kind: str
    name: str
    field: str = ""
    index: int = 0
    other: _Atom | None = None
    clip: float | None = None

    @property
    def group(self) -> tuple[Any, ...] | None:
        """Atoms of equal groups next to each other make one feature (``None``: alone)."""
        if self.kind in ("joint", "cos", "sin"):
            return None
        other = None if self.other is None else self.other.group
        return (self.kind, self.name, self.field, other, self.clip)


class _Model:
    """What the generator reads from the MuJoCo model: robot joints, unactuated bodies."""

    def __init__(self, model: Any) -> None:
        import mujoco

        self.model = model
        name = mujoco.mj_id2name
        self.joints = [name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or "" for j in range(model.njnt)]
        self.bodies = [name(model, mujoco.mjtObj.mjOBJ_BODY, b) or "" for b in range(model.nbody)]
        top = [self._top(b) for b in range(model.nbody)]
        driven = {
            top[model.jnt_bodyid[model.actuator_trnid[a, 0]]]
            for a in range(model.nu)
            if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
        }
        one_dof = [
            j
            for j in range(model.njnt)
            if model.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
            and self.joints[j]
        ]
        self.robot_joints = [j for j in one_dof if top[model.jnt_bodyid[j]] in driven]
        self.hinges = [
            j for j in self.robot_joints if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE
        ]
        self.external: dict[int, list[int]] = {}  # unactuated top body -> its 1-dof joints
        for j in one_dof:
            if top[model.jnt_bodyid[j]] not in driven:
                self.external.setdefault(top[model.jnt_bodyid[j]], []).append(j)
        # leaves first: of bodies that coincide (a tip on its link), the tip is reported
        parents = set(model.body_parentid[1:].tolist())
        named = [b for b in range(1, model.nbody) if self.bodies[b]]
        self.pose_bodies = [b for b in named if b not in parents] + [
            b for b in named if b in parents
        ]

    def _top(self, b: int) -> int:
        while self.model.body_parentid[b] != 0:
            b = int(self.model.body_parentid[b])
        return b


def _record(
    probe: _Probe, m: _Model, data: Any, obs: Any, scratch: Any, rollout: bool, reset: bool
) -> None:
    """Append the state in ``data`` and its observation ``obs`` to ``probe``."""
    import mujoco

    model = m.model
    probe.obs.append(np.asarray(obs, np.float64).reshape(-1))
    probe.rollout.append(rollout)
    probe.reset.append(reset)
    probe.add(probe.joint, "position", data.qpos[model.jnt_qposadr])
    probe.add(probe.joint, "velocity", data.qvel[model.jnt_dofadr])
    probe.add(probe.joint, "effort", data.qfrc_actuator[model.jnt_dofadr])
    scratch.qpos[:], scratch.qvel[:] = data.qpos, data.qvel
    mujoco.mj_kinematics(model, scratch)
    mujoco.mj_comPos(model, scratch)
    mujoco.mj_comVel(model, scratch)
    vel = np.zeros(6)
    for mode, d in zip(MODES, (data, scratch), strict=True):
        twist = np.zeros((model.nbody, 6))  # angular, linear in the body frame
        for b in range(model.nbody):
            mujoco.mj_objectVelocity(model, d, mujoco.mjtObj.mjOBJ_XBODY, b, vel, 1)
            twist[b] = vel
        rot = d.xmat.reshape(-1, 3, 3)
        for name, value in (
            ("position", d.xpos),
            ("orientation", d.xquat[:, [1, 2, 3, 0]]),
            ("angular_velocity", twist[:, :3]),
            ("linear_velocity", twist[:, 3:]),
            ("world_angular_velocity", np.einsum("bij,bj->bi", rot, twist[:, :3])),
            ("world_linear_velocity", np.einsum("bij,bj->bi", rot, twist[:, 3:])),
        ):
            probe.add(probe.body[mode], name, value)
    for name in _DATA_FIELDS:
        probe.add(probe.quantities, name, getattr(data, name))


def _probe(env: Any, task: Task, m: _Model) -> _Probe:
    """Seeded random rollouts, then states with perturbed robot joint positions and large
    velocities (set through ``mj_forward``, observed through the env's ``_get_obs``)."""
    import mujoco

    model, data = m.model, env.unwrapped.data
    scratch, probe = mujoco.MjData(model), _Probe()
    env.action_space.seed(0)
    states = []
    for seed in PROBE_SEEDS:
        obs, _ = env.reset(seed=seed)
        _record(probe, m, data, obs, scratch, True, True)
        for _ in range(PROBE_STEPS):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            _record(probe, m, data, obs, scratch, True, False)
            states.append(data.qpos.copy())
            if term or trunc:
                break
    get_obs = getattr(env.unwrapped, "_get_obs", None)
    if get_obs is None or inspect.signature(get_obs).parameters:
        return probe
    rng = np.random.default_rng(0)
    for k in range(PERTURBED):
        qpos = states[k % len(states)]
        data.qpos[:], data.qvel[:] = qpos, rng.normal(0.0, 30.0, model.nv)
        for j in m.robot_joints:
            adr = model.jnt_qposadr[j]
            lo, hi = model.jnt_range[j] if model.jnt_limited[j] else (qpos[adr] - 2, qpos[adr] + 2)
            data.qpos[adr] = rng.uniform(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        mujoco.mj_forward(model, data)
        obs = get_obs()
        if task.dict_obs_keys is not None:
            obs = flatten_dict_obs(obs, task.dict_obs_keys)
        _record(probe, m, data, obs, scratch, False, False)
    return probe


def _candidates(
    m: _Model, probe: _Probe, mode: str
) -> tuple[list[_Atom], np.ndarray, np.ndarray, dict[str, tuple[float, ...]]]:
    """Every atom in order of preference, its values ``(n_atoms, n_probes)``, whether it may
    match when constant (a fixed goal), and the fixed goals' values."""
    jv = {f: np.array(probe.joint[f]) for f in JOINT_FIELDS}
    bv = {k: np.array(v) for k, v in probe.body[mode].items()}
    rollout = np.array(probe.rollout)
    atoms: list[_Atom] = []
    cols: list[np.ndarray] = []
    for f in JOINT_FIELDS:
        for j in m.robot_joints:
            atoms.append(_Atom("joint", m.joints[j], f))
            cols.append(jv[f][:, j])
    for op, fn in (("cos", np.cos), ("sin", np.sin)):
        for j in m.hinges:
            atoms.append(_Atom(op, m.joints[j]))
            cols.append(fn(jv["position"][:, j]))
    goals: list[tuple[_Atom, np.ndarray]] = []
    fixed: dict[str, tuple[float, ...]] = {}
    for top, joints in m.external.items():
        body = m.bodies[top]
        goals += [
            (_Atom("goal", body, index=k), jv["position"][:, j]) for k, j in enumerate(joints)
        ]
        pos = bv["position"][:, top * 3 : top * 3 + 3]
        if body and np.ptp(pos[rollout], axis=0).max() == 0.0:  # it never moves: a fixed goal
            fixed[body] = tuple(float(v) for v in pos[0])
            goals += [(_Atom("goal_value", body, index=k), pos[:, k]) for k in range(3)]
    atoms += [a for a, _ in goals]
    cols += [v for _, v in goals]
    for b in m.pose_bodies:
        for name, values in bv.items():
            size = values.shape[1] // m.model.nbody
            atoms += [_Atom("body", m.bodies[b], name, k) for k in range(size)]
            cols += [values[:, b * size + k] for k in range(size)]
    body_pos = [
        (_Atom("body", m.bodies[b], "position", k), bv["position"][:, b * 3 + k])
        for b in m.pose_bodies
        for k in range(3)
    ]
    for atom, values in body_pos:
        for other, other_values in goals + body_pos:
            if other.name != atom.name and (other.kind != "body" or other.index == atom.index):
                atoms.append(_Atom("sub", atom.name, atom.field, atom.index, other))
                cols.append(values - other_values)
    constant_ok = np.array([a.kind in ("goal_value", "body") and a.other is None for a in atoms])
    return atoms, np.array(cols), constant_ok, fixed


def _match(
    obs: np.ndarray, atoms: list[_Atom], values: np.ndarray, constant_ok: np.ndarray
) -> list[_Atom | None]:
    """Per observation element (``obs`` ``(n_probes, obs_dim)``) the first atom equal to it on
    every probe, else the first one that equals it clipped to ``[-c, c]`` (``c`` its largest
    magnitude, seen saturating), else ``None``. An element constant over the probes may also
    equal a constant atom where ``constant_ok`` (a fixed goal, a body coordinate that stays)."""
    varying = np.ptp(values, axis=1) > TOL
    found: list[_Atom | None] = []
    for i in range(obs.shape[1]):
        o = obs[:, i]
        tol = TOL * np.maximum(1.0, np.abs(o))
        equal = np.all(np.abs(values - o) <= tol, axis=1)
        hit = equal & (varying | (constant_ok & (np.ptp(o) <= TOL)))
        if hit.any():
            found.append(atoms[int(np.argmax(hit))])
            continue
        c = float(np.abs(o).max())
        hit = (
            varying
            & np.all(np.abs(np.clip(values, -c, c) - o) <= tol, axis=1)
            & np.any(np.abs(values) > c + TOL, axis=1)
            & (c > TOL)
        )
        found.append(replace(atoms[int(np.argmax(hit))], clip=c) if hit.any() else None)
    return found


def _letters(index: list[int], letters: str) -> str:
    if max(index) < len(letters):
        return "".join(letters[i] for i in index)
    return "_".join(map(str, index))


class _Builder:
    """Features and sources of the spec made of matched atoms."""

    def __init__(self, m: _Model, fixed: Mapping[str, tuple[float, ...]]) -> None:
        self.m, self.fixed = m, fixed
        self.joint_source = False
        self.poses: dict[str, set[str]] = {}  # body -> fields read
        self.goals: dict[str, str] = {}  # goal -> its atom kind

    def _goal_joints(self, body: str) -> list[str]:
        return [self.m.joints[j] for j in self.m.external[self.m.bodies.index(body)]]

    def _expr(self, atom: _Atom, index: list[int]) -> tuple[dict[str, Any], str]:
        """Expression and name of ``atom``'s kind over elements ``index`` (without sub/clip)."""
        if atom.kind == "joint":
            self.joint_source = True
            short = {"position": "pos", "velocity": "vel", "effort": "effort"}[atom.field]
            return {"joint": atom.name, "field": atom.field}, f"{atom.name}_{short}"
        if atom.kind in ("cos", "sin"):
            self.joint_source = True
            return {atom.kind: {"joint": atom.name}}, f"{atom.kind}_{atom.name}"
        if atom.kind in ("goal", "goal_value"):
            self.goals[atom.name] = atom.kind
            size = len(self._goal_joints(atom.name)) if atom.kind == "goal" else 3
            expr: dict[str, Any] = {"goal": atom.name}
            if index != list(range(size)):
                expr["index"] = index
            return expr, f"{atom.name}_{_letters(index, AXES)}"
        world = atom.field.startswith("world_")
        fld = atom.field.removeprefix("world_")
        self.poses.setdefault(atom.name, set()).add(fld)
        expr = {"to_world" if world else "body": atom.name, "field": fld}
        if index != list(range(4 if fld == "orientation" else 3)):
            expr["index"] = index
        what = {
            "position": "",
            "orientation": "quat_",
            "linear_velocity": "vel_" if world else "vel_body_",
            "angular_velocity": "angvel_" if world else "angvel_body_",
        }[fld]
        letters = QUAT_AXES if fld == "orientation" else AXES
        return expr, f"{atom.name}_{what}{_letters(index, letters)}"

    def features(self, found: list[_Atom]) -> list[Feature]:
        """One feature per run of atoms of one group (one per atom where it has none)."""
        runs: list[list[_Atom]] = []
        for atom in found:
            if runs and atom.group is not None and runs[-1][0].group == atom.group:
                runs[-1].append(atom)
            else:
                runs.append([atom])
        out: list[Feature] = []
        for run in runs:
            first = run[0]
            expr, name = self._expr(first, [a.index for a in run])
            if first.other is not None:
                other, _ = self._expr(first.other, [a.other.index for a in run if a.other])
                expr = {"sub": [expr, other]}
                name = (
                    f"{first.name}_to_{first.other.name}_{_letters([a.index for a in run], AXES)}"
                )
            if first.clip is not None:
                expr = {"clip": expr, "low": -first.clip, "high": first.clip}
            while name in {f.name for f in out}:
                name += "_"
            out.append(Feature(name, expr))
        return out

    def sources(self) -> list[SourceSpec]:
        """JointState, then pose sources, then goals, each in first-use order."""
        out = []
        if self.joint_source:
            out.append(SourceSpec("joint_states", "JointState", "/joint_states", MAX_AGE))
        for body, fields in self.poses.items():
            odom = any(f.endswith("velocity") for f in fields)
            kind, suffix = ("Odometry", "odom") if odom else ("PoseStamped", "pose")
            out.append(SourceSpec(body, kind, f"/{body}/{suffix}", MAX_AGE))
        model = self.m.model
        for goal, kind in self.goals.items():
            topic = "/goal" if len(self.goals) == 1 else f"/{goal}/goal"
            if kind == "goal_value":
                out.append(SourceSpec(goal, "goal", topic, None, value=self.fixed[goal]))
                continue
            joints = self._goal_joints(goal)
            value = tuple(
                float(model.qpos0[model.jnt_qposadr[self.m.joints.index(j)]]) for j in joints
            )
            out.append(SourceSpec(goal, "goal", topic, None, value=value, sim_joints=tuple(joints)))
        return out


def _command(task: Task, m: _Model) -> CommandSpec:
    """One command per actuated 1-dof joint, in actuator order, with the action bounds."""
    import mujoco

    model = m.model
    joints = [
        m.joints[model.actuator_trnid[a, 0]]
        for a in range(model.nu)
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
        and model.actuator_trnid[a, 0] in m.robot_joints
    ]
    if len(joints) != task.act_dim or len(joints) != model.nu or len(set(joints)) != len(joints):
        raise SpecError(
            f"task {task.name}: the action ({task.act_dim} values) is not one command per "
            f"actuated joint (the model has {model.nu} actuators, {len(set(joints))} on hinge or "
            "slide joints); write a spec by hand"
        )
    bias = {int(t) for t in model.actuator_biastype}
    if bias != {int(mujoco.mjtBias.mjBIAS_NONE)}:
        raise SpecError(
            f"task {task.name}: the actuators are not all motors (bias types {sorted(bias)}); "
            "write a spec by hand"
        )
    return CommandSpec(
        topic="/effort_controller/commands",
        type="Float64MultiArray",
        joints=tuple(joints),
        action_joints=tuple(joints),
        low=tuple(float(v) for v in task.action_low),
        high=tuple(float(v) for v in task.action_high),
        period=task.dt,
    )


def _quantities(
    probe: _Probe, obs: np.ndarray, i: int, names: tuple[str, ...] = tuple(_DATA_FIELDS)
) -> list[str]:
    """MuJoCo quantities (:data:`_DATA_FIELDS` order) with an entry equal to element ``i``,
    maybe clipped to its largest magnitude."""
    o = obs[:, i]
    tol = TOL * np.maximum(1.0, np.abs(o))[:, None]
    c = float(np.abs(o).max())
    out = []
    for name in names:
        values = np.array(probe.quantities[name])
        if values.size and (
            np.all(np.abs(values - o[:, None]) <= tol, axis=0).any()
            or np.all(np.abs(np.clip(values, -c, c) - o[:, None]) <= tol, axis=0).any()
        ):
            out.append(name)
    return out


def _include_params(env: Any) -> dict[str, str]:
    """Quantity -> the env's ``include_<quantity>_in_observation`` keyword, where it has one."""
    params = inspect.signature(type(env.unwrapped).__init__).parameters
    return {f: key for f in _DATA_FIELDS if (key := f"include_{f}_in_observation") in params}


def _removable(env: Any, probe: _Probe, obs: np.ndarray) -> list[bool]:
    """Per element: whether it equals a quantity an env keyword leaves out of the observation."""
    include = _include_params(env)
    if not include:
        return [False] * obs.shape[1]
    found = [set(_quantities(probe, obs, i, tuple(include))) for i in range(obs.shape[1])]
    return [bool(names) for names in found]


def _refusal(
    task: Task, env: Any, probe: _Probe, found: list[_Atom | None], after_reset: list[bool]
) -> str:
    """One line: the elements no robot topic carries, grouped by what they are, and the env
    kwargs that leave them out. ``after_reset[i]``: element ``i`` matched every probe but the
    reset states."""
    obs = np.array(probe.obs)
    runs: dict[str, list[tuple[int, int]]] = {}
    for i, atom in enumerate(found):
        if atom is not None:
            continue
        if after_reset[i]:
            what = "reset"
        else:
            what = next((f for f in _DATA_FIELDS if f in _quantities(probe, obs, i)), "")
        spans = runs.setdefault(what, [])
        if spans and spans[-1][1] == i - 1:
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    parts = []
    for what, spans in runs.items():
        where = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans[:4])
        where += ", ..." if len(spans) > 4 else ""
        if what == "reset":
            desc = "right after reset: a non-unit quaternion, which no robot reports"
        elif what:
            desc = f"{_DATA_FIELDS[what]}, {what}"
        else:
            desc = "values that are not a MuJoCo state quantity"
        parts.append(f"{where} ({desc})")
    include = _include_params(env)
    leave_out: dict[str, Any] = {include[f]: False for f in runs if f in include}
    params = inspect.signature(type(env.unwrapped).__init__).parameters
    if "reset" in runs and "reset_noise_scale" in params:
        leave_out["reset_noise_scale"] = 0
    hint = (
        f"pass --env-kwargs '{json.dumps(leave_out)}', or write a spec by hand"
        if leave_out
        else "write a spec by hand"
    )
    return (
        f"task {task.name}: observation not expressible from robot topics: elements "
        f"{'; '.join(parts)} are carried by no robot topic; {hint}"
    )


def _verify(env: Any, spec: ObservationSpec, dt: float) -> str | None:
    """Why the assembler fed with driver samples does not reproduce the env's observation over
    a seeded random rollout (``None`` when it does, to :data:`TOL`)."""
    import mujoco

    model, data = env.unwrapped.model, env.unwrapped.data
    scratch, asm = mujoco.MjData(model), ObservationAssembler(spec)
    env.action_space.seed(VERIFY_SEED)
    obs, _ = env.reset(seed=VERIFY_SEED)
    for k in range(VERIFY_STEPS):
        for name, sample in driver_samples(spec, model, data, k * dt, scratch).items():
            asm.update(name, sample)
        out = asm.assemble(k * dt)
        if out.observation is None:
            return f"step {k}: no sample of {list(out.stale)}"
        err = np.abs(out.observation - obs)
        bad = np.flatnonzero(err > TOL * np.maximum(1.0, np.abs(obs)))
        if bad.size:
            return f"step {k}: element {bad[0]} is off by {err[bad[0]]:.3g}"
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
            asm.reset()
    return None


def generate_specs(task: Task) -> tuple[ObservationSpec, CommandSpec]:
    """The observation and command specs of ``task``'s MuJoCo env, verified (module doc).

    Raises:
        SpecError: one line: not a MuJoCo env, observation elements no robot topic carries
            (named, with the env kwargs that leave them out), an action that is not one command
            per actuated joint, or a spec that does not reproduce the observation.
    """
    import mujoco

    env = task.make_env()
    try:
        model = getattr(env.unwrapped, "model", None)
        if not isinstance(model, mujoco.MjModel):
            raise SpecError(
                f"task {task.name}: not a MuJoCo env, so no spec can be generated from its "
                "model; write a spec by hand"
            )
        m = _Model(model)
        probe = _probe(env, task, m)
        obs = np.array(probe.obs)
        best: tuple[float, str, list[_Atom | None], dict[str, tuple[float, ...]]] | None = None
        after_reset: list[bool] = []
        removable = _removable(env, probe, obs)
        for mode in MODES:
            atoms, values, constant_ok, fixed = _candidates(m, probe, mode)
            found = _match(obs, atoms, values, constant_ok)
            # fewest missing that no env keyword removes, then fewest missing
            score = sum(a is None and not removable[i] for i, a in enumerate(found)) + sum(
                a is None for a in found
            ) / (len(found) + 1)
            if best is None or score < best[0]:
                best = (score, mode, found, fixed)
                keep = ~np.array(probe.reset)
                again = _match(obs[keep], atoms, values[:, keep], constant_ok)
                after_reset = [
                    a is None and b is not None for a, b in zip(found, again, strict=True)
                ]
        assert best is not None
        _, mode, found, fixed = best
        if None in found:
            raise SpecError(_refusal(task, env, probe, found, after_reset))
        builder = _Builder(m, fixed)
        matched = [a for a in found if a is not None]
        features = builder.features(matched)
        spec = ObservationSpec(tuple(builder.sources()), tuple(features), mode)
        command = _command(task, m)
        why = _verify(env, spec, task.dt)
        if why is not None:
            raise SpecError(
                f"task {task.name}: the spec generated from the model does not reproduce the "
                f"observation ({why}); write a spec by hand"
            )
    finally:
        env.close()
    return spec, command
