"""CEM optimizer, MPC controller through an ensemble, and the InvertedPendulum outcome."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learned_control.checkpoint import save_checkpoint
from learned_control.data.episodes import Episode, Transitions
from learned_control.errors import CheckpointError, ConfigError
from learned_control.evaluation import evaluate
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.models.policies import MLPPolicy
from learned_control.planning.cem import CEMConfig, CEMOptimizer
from learned_control.planning.mpc import PROPAGATIONS, MPCConfig, MPCController, default_mpc_config
from learned_control.tasks import make_env
from learned_control.training.dynamics import DynamicsTrainConfig, train_dynamics

TASK = "InvertedPendulum-v5"


def test_cem_finds_quadratic_optimum():
    target = torch.tensor([[0.3, -0.7], [1.2, 0.1], [-0.4, 0.9]])
    cem = CEMOptimizer(CEMConfig(horizon=3, samples=500, elites=50, iterations=30, std_floor=0.0),
                       np.array([-2.0, -2.0]), np.array([2.0, 2.0]), seed=0)
    best = cem.optimize(lambda seqs: -((seqs - target) ** 2).sum((1, 2)))
    torch.testing.assert_close(best, target, atol=0.02, rtol=0)
    assert cem.best_score > -0.05 and cem.best_sequence.shape == (3, 2)


def test_cem_clamps_to_bounds():
    cem = CEMOptimizer(CEMConfig(horizon=2, samples=50, elites=5, iterations=5),
                       np.array([-0.5]), np.array([0.25]), seed=0)
    seen = []
    cem.optimize(lambda seqs: seen.append(seqs) or seqs.sum((1, 2)))
    everything = torch.cat(seen)
    assert float(everything.max()) <= 0.25 and float(everything.min()) >= -0.5
    assert float(cem._previous.max()) == pytest.approx(0.25)


def test_warm_start_shifts_previous_solution_and_reset_forgets():
    cem = CEMOptimizer(CEMConfig(horizon=4, samples=20, elites=4, iterations=2), np.array([-9.0]),
                       np.array([9.0]), seed=0)
    solution = cem.optimize(lambda seqs: -seqs.abs().sum((1, 2)))
    start = cem.initial_mean()
    torch.testing.assert_close(start[:-1], solution[1:])
    assert float(start[-1, 0]) == 0.0
    cem.reset()
    assert float(cem.initial_mean().abs().sum()) == 0.0


@pytest.mark.parametrize("field,value", [("elites", 2000), ("alpha", 1.0), ("horizon", 0)])
def test_cem_config_validation(field, value):
    with pytest.raises(ConfigError, match=field):
        CEMConfig(**{field: value})


@pytest.mark.parametrize("propagation", PROPAGATIONS)
@pytest.mark.parametrize("probabilistic", [False, True])
def test_mpc_plan_shapes_through_ensemble(propagation, probabilistic):
    torch.manual_seed(0)
    model = EnsembleDynamics(4, 1, members=5, hid_size=8, num_layers=1, probabilistic=probabilistic)
    config = MPCConfig(CEMConfig(horizon=6, samples=20, elites=4, iterations=2), particles=5,
                       propagation=propagation, sample=probabilistic)
    mpc = MPCController(model, TASK, config)
    scores = mpc.evaluate_sequences(torch.zeros(4), torch.zeros(20, 6, 1))
    assert scores.shape == (20,)
    plan = mpc.plan(np.zeros(4))
    assert plan.shape == (6, 1) and np.all(np.abs(plan) <= 3.0)
    assert mpc.act(np.zeros(4)).shape == (1,)


def test_mpc_expectation_averages_members():
    """Expectation score = mean over members of each member's own rollout return."""
    torch.manual_seed(0)
    model = EnsembleDynamics(4, 1, members=3, hid_size=8, num_layers=1).eval()
    mpc = MPCController(model, TASK, MPCConfig(CEMConfig(horizon=5, samples=4, elites=2,
                                                         iterations=1), reward="InvertedPendulum-v5/shaped"))
    obs, seqs = torch.tensor([0.1, 0.05, 0.0, 0.0]), torch.rand(4, 5, 1) - 0.5
    expected = torch.zeros(4)
    with torch.no_grad():
        for e in range(3):
            state = obs.expand(4, 4)
            for t in range(5):
                nxt = model.predict(state, seqs[:, t])[e]
                expected += mpc.reward_fn(state, seqs[:, t], nxt) / 3
                state = nxt
    torch.testing.assert_close(mpc.evaluate_sequences(obs, seqs), expected)


def test_mpc_refuses_bad_inputs(tmp_path):
    model = EnsembleDynamics(4, 1, members=3, hid_size=8, num_layers=1)
    with pytest.raises(ConfigError, match="divisible"):
        MPCController(model, TASK, MPCConfig(CEMConfig(samples=10, elites=2), propagation="ts1"))
    with pytest.raises(ConfigError, match="do not fit task"):
        MPCController(EnsembleDynamics(5, 1, members=1, hid_size=4), TASK)
    with pytest.raises(ConfigError, match=r"expects \(4,\)"):
        MPCController(model, TASK, default_mpc_config(TASK, samples=10, elites=2)).act(np.zeros(3))
    policy_path = save_checkpoint(tmp_path / "p.pt", MLPPolicy(4, 1), task=TASK)
    with pytest.raises(CheckpointError, match="not a dynamics model"):
        MPCController.from_checkpoint(policy_path, TASK)


def _noisy_pd_episodes(transitions: int, seed: int) -> list[Episode]:
    """InvertedPendulum driven by a hand PD controller plus N(0, 1) action noise (falls often)."""
    env = make_env(TASK)
    rng = np.random.default_rng(seed)
    episodes, total, reset_seed = [], 0, seed
    while total < transitions:
        obs, _ = env.reset(seed=reset_seed)
        reset_seed += 1
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        for t in range(200):
            action = np.clip([8 * obs[1] + 0.5 * obs[3] + 0.3 * obs[0] + 0.5 * obs[2]
                              + rng.normal()], -3, 3)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated or t == 199)
            if terminated:
                break
        episodes.append(Episode(np.array(observations), np.array(actions), np.array(rewards),
                                np.array(terms), np.array(truncs)))
        total += len(actions)
    return episodes


@pytest.mark.slow
def test_mpc_keeps_pendulum_up_from_noisy_data(tmp_path):
    """5000 transitions of a noisy PD controller (mean episode ~34 steps), ensemble of 5
    deterministic models; the default planner from the saved checkpoint holds the pole up for
    1000 of 1000 steps on 5 of 5 seeded episodes."""
    episodes = _noisy_pd_episodes(5000, seed=0)
    data = Transitions.from_episodes(episodes)
    assert len(data) <= 10_000 and np.mean([len(e) for e in episodes]) < 100
    torch.manual_seed(0)
    model = EnsembleDynamics(4, 1, members=5, hid_size=32, num_layers=2, activation="relu")
    train_dynamics(model, data, DynamicsTrainConfig(epochs=100, patience=10), seed=0)
    path = save_checkpoint(tmp_path / "dyn.pt", model, task=TASK)
    mpc = MPCController.from_checkpoint(path, TASK, default_mpc_config(TASK))
    result = evaluate(mpc, make_env(TASK), episodes=5, seed=100)
    assert result.returns == [1000.0] * 5
