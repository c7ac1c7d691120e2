"""Experts that exist inside the test suite (no network, no training), shared by test modules."""

import numpy as np

__all__ = ["PendulumLQR"]


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
