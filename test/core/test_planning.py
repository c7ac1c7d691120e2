"""CEM optimizer, MPC controller through an ensemble, and the InvertedPendulum outcome."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from learned_control.actors import default_mpc_config, load_actor, planner_for_task
from learned_control.checkpoint import save_checkpoint
from learned_control.errors import CheckpointError, ConfigError
from learned_control.evaluation import evaluate
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.models.policies import MLPPolicy
from learned_control.planning.cem import CEMConfig, CEMOptimizer
from learned_control.planning.mpc import PROPAGATIONS, MPCConfig, MPCController
from learned_control.planning.rewards import get_reward_fns
from learned_control.runtime.controller import ModelSlot
from learned_control.tasks import get_task, make_env
from pendulum_dynamics import noisy_pd_episodes, train_pendulum_ensemble

TASK = "InvertedPendulum-v5"
BOUNDS = (np.array([-3.0]), np.array([3.0]))


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
    mpc = MPCController(model, *get_reward_fns(TASK), *BOUNDS, config)
    scores = mpc.evaluate_sequences(torch.zeros(4), torch.zeros(20, 6, 1))
    assert scores.shape == (20,)
    plan = mpc.plan(np.zeros(4))
    assert plan.shape == (6, 1) and np.all(np.abs(plan) <= 3.0)
    assert mpc.act(np.zeros(4)).shape == (1,)


def test_mpc_expectation_averages_members():
    """Expectation score = mean over members of each member's own rollout return."""
    torch.manual_seed(0)
    model = EnsembleDynamics(4, 1, members=3, hid_size=8, num_layers=1).eval()
    mpc = planner_for_task(model, get_task(TASK), MPCConfig(
        CEMConfig(horizon=5, samples=4, elites=2, iterations=1),
        reward="InvertedPendulum-v5/shaped"))
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
    task = get_task(TASK)
    model = EnsembleDynamics(4, 1, members=3, hid_size=8, num_layers=1)
    with pytest.raises(ConfigError, match="divisible"):
        MPCController(model, *get_reward_fns(TASK), *BOUNDS,
                      MPCConfig(CEMConfig(samples=10, elites=2), propagation="ts1"))
    with pytest.raises(ConfigError, match="do not fit task"):
        planner_for_task(EnsembleDynamics(5, 1, members=1, hid_size=4), task)
    with pytest.raises(ConfigError, match=r"expects \(4,\)"):
        planner_for_task(model, task, default_mpc_config(TASK, samples=10, elites=2)).act(
            np.zeros(3))
    policy_path = save_checkpoint(tmp_path / "p.pt", MLPPolicy(4, 1), task=TASK)
    with pytest.raises(CheckpointError, match="not a dynamics model"):
        load_actor(f"cem:{policy_path}", task)
    with pytest.raises(ConfigError, match="apply to a cem:"):
        load_actor(policy_path, task, planner=MPCConfig())


@pytest.mark.slow
def test_mpc_keeps_pendulum_up_from_noisy_data(tmp_path):
    """5000 transitions of a noisy PD controller (mean episode ~34 steps), ensemble of 5
    deterministic models; the default planner from the saved checkpoint holds the pole up for
    1000 of 1000 steps on 5 of 5 seeded episodes."""
    episodes = noisy_pd_episodes(5000, seed=0)
    assert sum(len(e) for e in episodes) <= 10_000 and np.mean([len(e) for e in episodes]) < 100
    path = train_pendulum_ensemble(tmp_path / "dyn.pt", episodes)
    mpc = load_actor(f"cem:{path}", get_task(TASK), planner=default_mpc_config(TASK))
    result = evaluate(mpc, make_env(TASK), episodes=5, seed=100)
    assert result.returns == [1000.0] * 5


def test_cem_deadline_stops_refitting_and_still_returns_a_plan():
    """An anytime plan: a deadline already passed runs one iteration, none runs them all."""
    cem = CEMOptimizer(CEMConfig(horizon=3, samples=50, elites=5, iterations=8), np.array([-1.0]),
                       np.array([1.0]), seed=0)
    objective = lambda seqs: -seqs.abs().sum((1, 2))  # noqa: E731
    late = cem.optimize(objective, deadline=time.perf_counter())
    assert cem.iterations_done == 1 and late.shape == (3, 1)
    cem.optimize(objective, deadline=time.perf_counter() + 60.0)
    assert cem.iterations_done == 8
    cem.optimize(objective)
    assert cem.iterations_done == 8


def test_model_slot_plans_through_dynamics_and_keeps_the_old_planner(tmp_path):
    """ModelSlot with planner settings: loads a dynamics checkpoint into an MPCController; a
    corrupt file, a policy checkpoint and settings the model cannot take are refused and the
    running planner (its file, settings and seed) stays."""
    task = get_task(TASK)
    torch.manual_seed(0)
    good = save_checkpoint(tmp_path / "dyn.pt", EnsembleDynamics(4, 1, members=5, hid_size=8),
                           task=TASK)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:300])
    policy = save_checkpoint(tmp_path / "policy.pt", MLPPolicy(4, 1), task=TASK)
    planner = default_mpc_config(TASK, samples=20, elites=4, iterations=2)
    slot = ModelSlot(task, planner=planner, seed=3)
    assert slot.swap(str(good)) == "" and slot.identity == "MPCController@dyn.pt"
    obs = np.array([0.0, 0.05, 0.0, 0.0])
    reference = load_actor(f"cem:{good}", task, planner=planner, seed=3)
    np.testing.assert_array_equal(slot.act(obs), reference.act(obs))
    assert "not a readable checkpoint" in slot.swap(str(corrupt))
    assert "not a dynamics model" in slot.swap(str(policy))
    ts1 = default_mpc_config(TASK, samples=21, elites=4, iterations=2, propagation="ts1")
    assert "divisible" in slot.swap(slot.path, ts1)
    assert (slot.swaps, slot.failed_swaps, slot.path) == (1, 3, str(good))
    assert slot.planner == planner and slot.seed == 3
    np.testing.assert_array_equal(slot.act(obs), reference.act(obs))  # same planner, same state
    slot.reset()
    reference.reset()
    np.testing.assert_array_equal(slot.act(obs, deadline=time.perf_counter()),
                                  reference.act(obs, deadline=time.perf_counter()))
    assert slot.iterations_done == 1
    assert "actor=cem" in ModelSlot(task).swap(str(good))  # a policy slot refuses dynamics
    assert "actor=cem" in ModelSlot(task).swap(f"cem:{good}")  # and a planner spec
