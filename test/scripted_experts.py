"""Experts that exist inside the test suite (no network, no training), shared by test modules."""

import mujoco
import numpy as np

__all__ = ["PendulumLQR", "PusherScripted"]


class PendulumLQR:
    """A discrete-time LQR for InvertedPendulum-v5, linearized by finite differences of the
    env's own step: the test's expert (balances every seed, no training needed)."""

    def __init__(self, env, q=(1.0, 10.0, 0.1, 0.1), r=0.1, eps=1e-5):
        sim = env.unwrapped
        nq, nu = sim.model.nq, sim.model.nu

        def step(x, a):
            sim.set_state(x[:nq], x[nq:])
            sim.do_simulation(a, sim.frame_skip)
            return np.concatenate([sim.data.qpos, sim.data.qvel])

        x0, a0 = np.zeros(2 * nq), np.zeros(nu)
        a_mat = np.stack([(step(x0 + e, a0) - step(x0 - e, a0)) / (2 * eps)
                          for e in eps * np.eye(2 * nq)], 1)
        b_mat = np.stack([(step(x0, a0 + e) - step(x0, a0 - e)) / (2 * eps)
                          for e in eps * np.eye(nu)], 1)
        q_mat = p = np.diag(q)
        for _ in range(1000):  # Riccati iteration to the stationary gain
            gain = np.linalg.solve(r * np.eye(nu) + b_mat.T @ p @ b_mat, b_mat.T @ p @ a_mat)
            p = q_mat + a_mat.T @ p @ (a_mat - b_mat @ gain)
        self.gain = gain

    def act(self, obs):
        return np.clip(-np.asarray(obs) @ self.gain.T, -3.0, 3.0)


class PusherScripted:
    """A Cartesian PD controller for Pusher-v5 through the arm's Jacobian (computed from the
    observation's joint angles in a private MjData): the tip goes behind the object, then pushes
    it toward the goal. Weak next to a trained expert (about -40 against -150 for random actions
    over seeds 0..9), but deterministic and free of training."""

    def __init__(self, env, kp=0.5, kd=0.05, gain=10.0, behind=0.12):
        self.model = env.unwrapped.model
        self.data = mujoco.MjData(self.model)
        self.tip = self.model.body("tips_arm").id
        self.kp, self.kd, self.gain, self.behind = kp, kd, gain, behind

    def act(self, obs):
        obs = np.asarray(obs, dtype=np.float64)
        q, qd, tip, obj, goal = obs[:7], obs[7:14], obs[14:17], obs[17:20], obs[20:23]
        self.data.qpos[:7] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        jac = np.zeros((3, self.model.nv))
        mujoco.mj_jacBody(self.model, self.data, jac, None, self.tip)
        jac = jac[:, :7]
        push = goal[:2] - obj[:2]
        push /= np.linalg.norm(push) + 1e-9
        rel = tip[:2] - obj[:2]
        along = rel @ push
        aligned = along < -0.02 and np.linalg.norm(rel - along * push) < 0.03
        target = np.r_[obj[:2] + (0.1 if aligned else -self.behind) * push, obj[2]]
        force = self.kp * (target - tip) - self.kd * (jac @ qd)
        return np.clip(self.gain * jac.T @ force, -2.0, 2.0)
