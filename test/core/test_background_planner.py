"""The background planner: ticks read the current plan at the step the elapsed periods give, each
step once, never wait for the next plan; a landed plan is announced; an episode's plan is dropped
at its end; the planner's refusals are passed on."""

import threading
import time

import numpy as np
import pytest
import torch

from learned_control.checkpoint import save_checkpoint
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.planning.cem import CEMConfig
from learned_control.planning.mpc import MPCConfig
from learned_control.runtime.background_planner import BackgroundPlanner
from learned_control.runtime.controller import ModelSlot
from learned_control.tasks import get_task

PERIOD = 0.04


def counting_plan(obs, shift):
    """Step ``i`` of the plan from ``obs`` is ``[obs[0] + i, shift]``: which plan, which step."""
    return np.array([[obs[0] + i, shift] for i in range(10)])


def wait_for_plan(planner, count=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while planner.plan_stats.count < count:
        assert time.monotonic() < deadline, "no plan"
        time.sleep(0.001)
    return planner.plan


@pytest.fixture
def planner():
    planners = []

    def make(plan_fn=counting_plan, max_age=1.0):
        planners.append(BackgroundPlanner(plan_fn, PERIOD, max_age))
        return planners[-1]

    yield make
    for p in planners:
        p.close()


def test_a_tick_takes_the_step_of_the_periods_elapsed_since_the_observation(planner):
    bg = planner()
    t0 = 100.0
    assert bg.action(t0)[1] == "planning"  # nothing to plan from yet
    bg.submit(np.array([10.0]), t0)
    wait_for_plan(bg)
    for elapsed, step in [(0.0, 0), (1.0, 1)]:  # asked at a landing
        action, kind, _ = bg.action(t0 + elapsed * PERIOD, tick=False)
        assert kind == "" and action[0] == 10 + step
    for elapsed, step in [(2.7, 2), (9.5, 9)]:  # ticks once observations stopped coming
        action, kind, _ = bg.action(t0 + elapsed * PERIOD)
        assert kind == "" and action[0] == 10 + step
    assert bg.action(t0 + 9.9 * PERIOD)[1] == "given"  # step 9 went out already
    assert bg.action(t0 + 10.2 * PERIOD)[1] == "stale_plan"  # past the horizon
    assert bg.plan_age(t0 + 3 * PERIOD) == pytest.approx(3 * PERIOD)


def test_a_plan_older_than_max_age_gives_no_action(planner):
    bg = planner(max_age=2.5 * PERIOD)
    assert bg.action(50.0)[1] == "planning"
    bg.submit(np.array([0.0]), 50.0)
    wait_for_plan(bg)
    assert bg.action(50.0 + 2 * PERIOD)[1] == ""
    assert bg.action(50.0 + 3 * PERIOD)[1] == "stale_plan"
    release = threading.Event()
    bg.plan_fn = lambda obs, shift: release.wait(10) and counting_plan(obs, shift)
    bg.clear()
    bg.submit(np.array([0.0]), 60.0)  # a first plan that does not land: a miss after max_age
    assert bg.action(60.0 + 2 * PERIOD)[1] == "planning"
    assert bg.action(60.0 + 3 * PERIOD)[1] == "stale_plan"
    release.set()


def test_ticks_keep_the_current_plan_while_a_slow_one_is_made(planner):
    """While a plan takes three periods, each tick gets the previous plan's next step at once."""
    release = threading.Event()

    def slow(obs, shift):  # plans longer than the period: ticks send the current plan's steps
        time.sleep(3 * PERIOD)
        if obs[0] >= 100:
            release.wait(10)
        return counting_plan(obs, shift)

    bg = planner(slow)
    bg.submit(np.array([0.0]), 0.0)
    wait_for_plan(bg)
    bg.submit(np.array([100.0]), PERIOD)  # blocks in the worker until released
    steps = []
    for tick in range(1, 4):
        start = time.monotonic()
        action, kind, _ = bg.action(tick * PERIOD)
        assert time.monotonic() - start < 0.5  # never waits for the plan in progress
        steps.append(action[0])
    assert steps == [1, 2, 3]
    release.set()
    plan = wait_for_plan(bg, 2)
    assert plan.observed_at == PERIOD and plan.actions[0, 1] == 1  # shift: 1 period later
    assert bg.action(PERIOD * 3)[0][0] == 102


def test_the_warm_start_shift_is_the_periods_between_observations(planner):
    bg = planner()
    bg.submit(np.array([0.0]), 0.0)
    wait_for_plan(bg)
    bg.submit(np.array([0.0]), 3.1 * PERIOD)
    plan = wait_for_plan(bg, 2)
    assert plan.actions[0, 1] == 3


def test_clear_drops_the_plan_and_one_in_progress(planner):
    entered, release = threading.Event(), threading.Event()

    def blocking(obs, shift):
        entered.set()
        release.wait(10)
        return counting_plan(obs, shift)

    bg = planner(blocking)
    bg.submit(np.array([0.0]), 0.0)
    assert entered.wait(10)
    bg.clear()  # episode end while the old episode's plan is being made
    release.set()
    bg.submit(np.array([5.0]), 1.0)  # planned once the dropped one is done
    plan = wait_for_plan(bg)
    assert bg.plan_stats.count == 1 and plan.actions[0, 0] == 5  # the old plan never landed
    assert plan.actions[0, 1] == 1  # a new run: no shift from the old episode


def test_a_refused_observation_is_reported_until_a_plan_succeeds(planner):
    def picky(obs, shift):
        if obs[0] < 0:
            raise ValueError("negative")
        if obs[0] > 1000:
            raise RuntimeError("out of memory")
        return counting_plan(obs, shift)

    bg = planner(picky)
    bg.submit(np.array([-1.0]), 0.0)
    wait_for_plan(bg)
    action, kind, reason = bg.action(0.0)
    assert action is None and kind == "error" and "negative" in reason
    bg.submit(np.array([1.0]), PERIOD)
    wait_for_plan(bg, 2)
    assert bg.action(PERIOD, tick=False)[0][0] == 1
    bg.submit(np.array([2000.0]), 2 * PERIOD)  # any failure: reported, the worker goes on
    wait_for_plan(bg, 3)
    assert bg.action(2 * PERIOD)[2] == "the planner failed: RuntimeError: out of memory"
    bg.submit(np.array([3.0]), 3 * PERIOD)
    wait_for_plan(bg, 4)
    assert bg.action(3 * PERIOD, tick=False)[0][0] == 3


def test_the_slots_background_plan_equals_the_planners_own(tmp_path):
    """Through a real planner: the plan the background thread makes is the one the planner
    makes in the foreground on the same seed, and its first step is what act() returns."""
    task = get_task("InvertedPendulum-v5")
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "dyn.pt", EnsembleDynamics(task.obs_dim, task.act_dim,
                                                                 members=2, hidden_sizes=(16,)),
                           task.name)
    config = MPCConfig(cem=CEMConfig(horizon=5, samples=50, elites=5, iterations=2))
    obs = np.array([0.0, 0.05, 0.0, 0.0])
    foreground = ModelSlot(task, planner=config, seed=3)
    assert foreground.swap(str(path)) == ""
    want = foreground.plan(obs)
    slot = ModelSlot(task, planner=config, seed=3)
    assert slot.swap(str(path)) == ""
    bg = BackgroundPlanner(slot.plan, PERIOD, 1.0)
    try:
        bg.submit(obs, 0.0)
        got = wait_for_plan(bg).actions
    finally:
        bg.close()
    np.testing.assert_array_equal(got, want)
    assert want.shape == (5, task.act_dim)


def test_a_landed_plan_is_announced_and_its_step_goes_out_once(planner):
    """Each landing calls on_plan; the step it gives is not given again by the next tick."""
    landed = []
    bg = BackgroundPlanner(counting_plan, PERIOD, 1.0, on_plan=lambda: landed.append(bg.plan))
    try:
        bg.submit(np.array([0.0]), 0.0)
        wait_for_plan(bg)
        deadline = time.monotonic() + 10
        while not landed:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert landed[0].serial == 1
        assert bg.action(0.01, tick=False)[0][0] == 0  # at the landing: step 0
        assert bg.action(0.03)[1] == "given"  # the tick in the same period: nothing new
        assert bg.action(0.05)[1] == "given"  # the next observation is not late yet
        assert bg.action(0.07)[0][0] == 1  # none for 1.75 periods: the plan's step 1
    finally:
        bg.close()


def test_with_plans_shorter_than_a_period_a_tick_leaves_the_step_to_the_plan_in_progress(planner):
    """One command per observation: while a plan from a newer observation is being made (and
    plans take less than a period), the tick sends nothing; the landing sends that plan's step."""
    entered, release = threading.Event(), threading.Event()

    def gated(obs, shift):
        if obs[0] >= 100:
            entered.set()
            release.wait(10)
        return counting_plan(obs, shift)

    bg = planner(gated)
    bg.submit(np.array([0.0]), 0.0)
    wait_for_plan(bg)
    bg.submit(np.array([100.0]), PERIOD)
    assert entered.wait(10)
    assert bg.action(PERIOD)[1] == "given"  # the tick: the plan in progress will send
    assert bg.action(PERIOD, tick=False)[0][0] == 1  # asked otherwise, the current plan's step
    release.set()
    wait_for_plan(bg, 2)
    assert bg.action(PERIOD + 0.001, tick=False)[0][0] == 100  # the landing: the new plan
