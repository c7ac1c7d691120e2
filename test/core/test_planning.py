"""CEM optimizer, MPC controller through an ensemble, and the InvertedPendulum outcome."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from pendulum_dynamics import noisy_pd_episodes, train_pendulum_ensemble

from learned_control.actors import default_mpc_config, load_actor, planner_for_task
from learned_control.checkpoint import save_checkpoint
from learned_control.errors import CheckpointError, ConfigError
from learned_control.evaluation import evaluate
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.models.policies import MLPPolicy
from learned_control.planning.cem import OPTIMIZERS, CEMConfig, CEMOptimizer
from learned_control.planning.mpc import PROPAGATIONS, MPCConfig, MPCController
from learned_control.planning.rewards import get_reward_fns
from learned_control.runtime.controller import ModelSlot
from learned_control.tasks import get_task, make_env

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
    later = cem.initial_mean(shift=3)  # a plan three periods after the last one
    torch.testing.assert_close(later[:1], solution[3:])
    assert float(later[1:].abs().sum()) == 0.0
    assert float(cem.initial_mean(shift=4).abs().sum()) == 0.0  # the horizon ran out
    cem.reset()
    assert float(cem.initial_mean().abs().sum()) == 0.0


@pytest.mark.parametrize("field,value", [
    ("elites", 2000), ("alpha", 1.0), ("horizon", 0), ("optimizer", "pso"), ("noise_beta", -1.0),
    ("noise_beta", float("nan")), ("keep_elites", 1.5), ("population_decay", 0.9),
    ("temperature", 0.0)])
def test_cem_config_validation(field, value):
    with pytest.raises(ConfigError, match=field):
        CEMConfig(**{field: value})


@pytest.mark.parametrize("optimizer,settings,atol", [
    ("icem", {}, 0.02),
    ("mppi", {"temperature": 0.2}, 0.05),  # the weighted mean keeps a little sampling noise
])
def test_icem_and_mppi_find_quadratic_optimum(optimizer, settings, atol):
    target = torch.tensor([[0.3, -0.7], [1.2, 0.1], [-0.4, 0.9]])
    cem = CEMOptimizer(CEMConfig(horizon=3, samples=500, elites=50, iterations=30, std_floor=0.0,
                                 optimizer=optimizer, **settings),
                       np.array([-2.0, -2.0]), np.array([2.0, 2.0]), seed=0)
    best = cem.optimize(lambda seqs: -((seqs - target) ** 2).sum((1, 2)))
    torch.testing.assert_close(best, target, atol=atol, rtol=0)
    assert float(cem.best_score) > -0.05 and cem.best_sequence.shape == (3, 2)


def _samples_to_reach(config, threshold, seed):
    """Sequences the optimizer scored until one scored ``threshold`` (``None``: never), tracking
    a smooth 3-d trajectory over 30 steps."""
    steps = torch.arange(30.0)[:, None] / 30
    target = 0.7 * torch.sin(2 * np.pi * steps + torch.tensor([0.0, 1.0, 2.0]))
    scored, reached = 0, None

    def objective(seqs):
        nonlocal scored, reached
        scores = -((seqs - target) ** 2).sum((1, 2))
        scored += len(seqs)
        if reached is None and float(scores.max()) >= threshold:
            reached = scored
        return scores

    CEMOptimizer(config, -np.ones(3), np.ones(3), seed=seed).optimize(objective)
    return reached


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_icem_reaches_a_smooth_optimum_with_fewer_samples_than_cem(seed):
    """Same N=100, K=10, I=30: iCEM scores -1.0 (squared error summed over 90 numbers) within
    ~500 sequences; CEM needs ~2500 (measured), so it takes over 3x as many."""
    config = dict(horizon=30, samples=100, elites=10, iterations=30, init_std=0.5, std_floor=0.0)
    icem = _samples_to_reach(CEMConfig(**config, optimizer="icem"), -1.0, seed)
    cem = _samples_to_reach(CEMConfig(**config), -1.0, seed)
    assert icem is not None and cem is not None and 3 * icem < cem


def test_colored_noise_is_smooth_along_the_horizon_with_unit_variance():
    """beta=2: neighbouring steps correlate (~0.88 at H=30); beta=0: white; both unit variance
    at every step and action."""
    lag1 = {}
    for beta in (0.0, 2.0):
        cem = CEMOptimizer(CEMConfig(horizon=30, samples=4000, elites=10, optimizer="icem",
                                     noise_beta=beta), *BOUNDS)
        noise = cem.noise(4000)
        assert noise.shape == (4000, 30, 1)
        torch.testing.assert_close(noise.var(0), torch.ones(30, 1), atol=0.1, rtol=0)
        lag1[beta] = float((noise[:, 1:] * noise[:, :-1]).mean() / noise.var())
    assert abs(lag1[0.0]) < 0.05 and lag1[2.0] > 0.8


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_same_seed_same_plans(optimizer):
    def plans(seed):
        cem = CEMOptimizer(CEMConfig(horizon=6, samples=40, elites=8, iterations=3,
                                     optimizer=optimizer), *BOUNDS, seed=seed)
        return [cem.optimize(lambda seqs: -(seqs - 0.4).abs().sum((1, 2))) for _ in range(2)]

    first, again, other = plans(0), plans(0), plans(1)
    for plan, same in zip(first, again, strict=True):
        torch.testing.assert_close(plan, same, atol=0, rtol=0)
    assert not torch.equal(first[1], other[1])


def test_icem_keeps_elites_within_a_plan_and_shifted_into_the_next():
    """N=40, K=10, keep 3: populations of 40, 32 + 3 kept, 26 + 3 kept + the mean; the next plan
    starts with 40 + the last iteration's 3 best shifted one step (last step at the warm-start
    mean); without warm start or after reset() it starts from 40 new ones."""
    config = CEMConfig(horizon=6, samples=40, elites=10, iterations=3, optimizer="icem",
                       keep_elites=0.3, init_std=2.0)
    cem = CEMOptimizer(config, *BOUNDS, seed=0)
    populations = []
    score = lambda seqs: -(seqs - torch.linspace(-1, 1, 6)[:, None]).abs().sum((1, 2))  # noqa: E731

    def objective(seqs):
        populations.append(seqs.clone())
        return score(seqs)

    cem.optimize(objective)
    assert [len(p) for p in populations] == [40, 35, 30]
    best_first = populations[0][score(populations[0]).topk(3).indices]
    assert all((populations[1] == elite).all((1, 2)).any() for elite in best_first)
    last = populations[-1]
    elites_before_last = populations[1][score(populations[1]).topk(10).indices]
    torch.testing.assert_close(last[-1], elites_before_last.mean(0))  # the mean (alpha=0)
    kept = last[score(last).topk(3).indices]
    populations.clear()
    plan = cem.optimize(objective)
    first = populations[0]
    assert len(first) == 43
    for elite in kept:
        assert (first[:, :-1] == elite[1:]).all((1, 2)).any()
    assert (first[40:, -1] == 0.0).all()
    populations.clear()
    cem.reset()
    cem.optimize(objective)
    assert len(populations[0]) == 40
    kept = populations[-1][score(populations[-1]).topk(3).indices]
    populations.clear()
    cem.optimize(objective, shift=2)  # two periods later: shifted two steps
    assert len(populations[0]) == 43
    for elite in kept:
        assert (populations[0][:, :-2] == elite[2:]).all((1, 2)).any()
    populations.clear()
    cem.optimize(objective, shift=6)  # a whole horizon later: nothing left to carry
    assert len(populations[0]) == 40
    populations.clear()
    no_warm_start = CEMOptimizer(CEMConfig(**{**config.__dict__, "warm_start": False}), *BOUNDS)
    no_warm_start.optimize(objective)
    no_warm_start.optimize(objective)
    assert [len(p) for p in populations] == [40, 35, 30, 40, 35, 30]
    assert plan.shape == (6, 1)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_iteration_loop_reads_nothing_back_to_the_host(optimizer, monkeypatch):
    """No .item(), float(), int(), bool() or indexing by a tensor while optimize runs (a deadline
    included): each would wait for the device."""
    cem = CEMOptimizer(CEMConfig(horizon=5, samples=40, elites=8, iterations=4,
                                 optimizer=optimizer), *BOUNDS, seed=0)
    objective = lambda seqs: -(seqs - 0.5).square().sum((1, 2))  # noqa: E731
    cem.optimize(objective)  # the second plan also starts from iCEM's kept elites

    def refuse(*args, **kwargs):
        raise AssertionError("the optimizer read a tensor back to the host")

    with monkeypatch.context() as patch:
        for name in ("item", "tolist", "__float__", "__int__", "__bool__", "__index__"):
            patch.setattr(torch.Tensor, name, refuse)
        plan = cem.optimize(objective, deadline=time.perf_counter() + 60.0)
    assert cem.iterations_done == 4 and plan.shape == (5, 1)
    assert float(cem.best_score) <= 0.0 and cem.best_sequence.shape == (5, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_iteration_loop_does_not_synchronize_cuda(optimizer):
    cem = CEMOptimizer(CEMConfig(horizon=5, samples=40, elites=8, iterations=4,
                                 optimizer=optimizer), *BOUNDS, device="cuda", seed=0)
    objective = lambda seqs: -(seqs - 0.5).square().sum((1, 2))  # noqa: E731
    cem.optimize(objective)
    torch.cuda.set_sync_debug_mode("error")
    try:
        cem.optimize(objective)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("optimizer", ["icem", "mppi"])
def test_mpc_plans_with_icem_and_mppi_through_trajectory_sampling(optimizer):
    """ts1 needs every population x particles divisible by the members: iCEM's decaying
    populations (plus kept elites and the mean) are checked too."""
    torch.manual_seed(0)
    model = EnsembleDynamics(4, 1, members=5, hid_size=8, num_layers=1)
    config = MPCConfig(CEMConfig(horizon=6, samples=20, elites=4, iterations=3,
                                 optimizer=optimizer), particles=5, propagation="ts1")
    mpc = MPCController(model, *get_reward_fns(TASK), *BOUNDS, config)
    assert mpc.plan(np.zeros(4)).shape == (6, 1) and mpc.plan(np.zeros(4)).shape == (6, 1)
    uneven = MPCConfig(CEMConfig(horizon=6, samples=20, elites=4, iterations=3,
                                 optimizer="icem"), particles=1, propagation="ts1")
    with pytest.raises(ConfigError, match="divisible by the ensemble size 5"):
        MPCController(model, *get_reward_fns(TASK), *BOUNDS, uneven)


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
