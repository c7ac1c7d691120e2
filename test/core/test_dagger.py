"""DAgger beats plain BC at equal expert data, with a scripted expert defined here.

Task: InvertedDoublePendulum-v5 (not a registered task; built as a :class:`Task` here). Expert:
discrete LQR on MuJoCo's finite-difference linearization at the upright state. Its states stay
in a narrow band around upright, so BC from one demonstration drifts off it and falls within
tens of steps; DAgger's relabelled learner states cover the recovery.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from learned_control.errors import ConfigError
from learned_control.tasks import Task
from learned_control.training.bc import BCConfig
from learned_control.training.dagger import DAggerConfig, dagger_table, plot_dagger, run_dagger

TASK = Task("InvertedDoublePendulum-v5", "InvertedDoublePendulum-v5", 9, 1)


class DoublePendulumLQR:
    """LQR ``u = -K [x, theta1, theta2, v, omega1, omega2]``, clipped to [-1, 1].

    The gain comes from MuJoCo's linearization (Euler, one physics step) composed over the env's
    ``frame_skip`` and a Riccati iteration; observation layout: cart x, sin(theta) (2),
    cos(theta) (2), velocities (3), constraint force (1).
    """

    def __init__(self, env) -> None:
        model = env.unwrapped.model
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        nx, nu = 2 * model.nv, model.nu
        a, b = np.zeros((nx, nx)), np.zeros((nx, nu))
        saved = model.opt.integrator
        model.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER  # FD does not support RK4
        mujoco.mjd_transitionFD(model, data, 1e-6, True, a, b, None, None)
        model.opt.integrator = saved
        a_env, b_env = np.eye(nx), np.zeros((nx, nu))
        for _ in range(env.unwrapped.frame_skip):
            a_env, b_env = a @ a_env, a @ b_env + b
        q, r = np.diag([1.0, 10.0, 10.0, 0.1, 0.1, 0.1]), 0.1 * np.eye(nu)
        p = q.copy()
        for _ in range(5000):
            gain = np.linalg.solve(r + b_env.T @ p @ b_env, b_env.T @ p @ a_env)
            p = q + a_env.T @ p @ (a_env - b_env @ gain)
        self.gain = gain

    def act(self, obs: np.ndarray) -> np.ndarray:
        state = np.concatenate([obs[:1], np.arctan2(obs[1:3], obs[3:5]), obs[5:8]])
        return np.clip(-self.gain @ state, -1.0, 1.0)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="rollout_episodes"):
        DAggerConfig(rollout_episodes=0)
    with pytest.raises(ConfigError, match="beta"):
        DAggerConfig(beta=1.5)


def test_without_validation_the_last_iterate_is_returned():
    env = TASK.make_env()
    expert = DoublePendulumLQR(env)
    env.close()
    config = DAggerConfig(iterations=2, demo_episodes=1, rollout_episodes=1, eval_episodes=1,
                          validation_episodes=0, bc=BCConfig(epochs=2, val_fraction=0.0))
    result = run_dagger(TASK, expert, config, progress=False)
    assert result.chosen == 2 and result.final is result.iterations[-1]
    assert np.isnan(result.final.validation) and "(returned)" in str(
        [c for c in dagger_table(result).columns[0].cells])


@pytest.mark.slow
def test_dagger_beats_bc_at_equal_expert_data(tmp_path):
    """Three seeds: DAgger reaches the expert on each; plain BC on as many expert samples stays
    far below on average (per seed it can catch up once DAgger's rollouts last 1000 steps)."""
    env = TASK.make_env()
    expert = DoublePendulumLQR(env)
    env.close()
    margins = []
    for seed in (0, 1, 2):
        config = DAggerConfig(iterations=4, demo_episodes=1, rollout_episodes=3, eval_episodes=2,
                              validation_episodes=5,
                              beta=0.5, beta_decay=0.7,
                              bc=BCConfig(epochs=100, batch_size=128, val_fraction=0.0, seed=seed),
                              seed=seed)
        result = run_dagger(TASK, expert, config, progress=False)
        assert result.expert.mean > 9000  # the LQR balances all 1000 steps
        assert result.bc_equal.data_size == result.iterations[-1].data_size  # all labels used
        validation = [row.validation for row in result.iterations]
        assert result.chosen == int(np.argmax(validation)) and result.final.validation == max(validation)
        dagger_norm = result.normalized(result.final.result.mean)
        assert dagger_norm >= 90.0, dagger_table(result)
        margins.append(dagger_norm - result.normalized(result.bc_equal.result.mean))
    assert np.mean(margins) >= 50.0, margins
    assert plot_dagger(result, tmp_path / "dagger.png").stat().st_size > 0
