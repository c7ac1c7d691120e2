"""Driver-shaped samples from a MuJoCo simulation: what a ros2_control robot would publish."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import SpecError
from .assembly import GoalSample, JointSample, PoseSample
from .observation import ObservationSpec

__all__ = ["driver_samples"]


def driver_samples(
    spec: ObservationSpec, model: Any, data: Any, stamp: float, scratch: Any = None
) -> dict[str, JointSample | PoseSample | GoalSample]:
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
                names,
                [float(data.qpos[model.jnt_qposadr[i]]) for i in ids],
                [float(data.qvel[d]) for d in dofs],
                [float(data.qfrc_actuator[d]) for d in dofs],
                stamp,
            )
        elif src.type == "goal":
            if src.sim_joints:
                out[src.name] = GoalSample(
                    [float(data.qpos[model.jnt_qposadr[jid(n)]]) for n in src.sim_joints], stamp
                )
        else:
            body = src.sim_body or src.name
            b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
            if b < 0:
                raise SpecError(
                    f"simulator: source {src.name!r}: the MuJoCo model has no body {body!r}"
                )
            w, x, y, z = body_data.xquat[b]
            lin = ang = None
            if src.type == "Odometry":
                vel = np.zeros(6)
                mujoco.mj_objectVelocity(model, body_data, mujoco.mjtObj.mjOBJ_XBODY, b, vel, 1)
                ang, lin = vel[:3].tolist(), vel[3:].tolist()
            out[src.name] = PoseSample(
                body_data.xpos[b].tolist(), [x, y, z, w], lin, ang, src.frame, stamp
            )
    return out
