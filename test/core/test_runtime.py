"""The nodes' ROS-free logic: command gate, seeded sim session, latency stats, model slot."""

import math

import numpy as np
import pytest
import torch

from learned_control.checkpoint import save_checkpoint
from learned_control.errors import ConfigError
from learned_control.evaluation import evaluate
from learned_control.models.policies import MLPPolicy
from learned_control.runtime.bridge import BridgeConfig, CommandGate, SimSession
from learned_control.runtime.controller import ControllerConfig, ModelSlot
from learned_control.runtime.stats import LatencyStats
from learned_control.tasks import get_task, make_env


def test_command_gate_rejects_counts_and_clips():
    gate = CommandGate(np.array([-1.0, -2.0]), np.array([1.0, 2.0]))
    assert gate.check([0.1])[0] is None and "size 1 rejected: expected 2" in gate.check([0.1])[1]
    assert gate.check([math.nan, 0.0])[0] is None
    assert gate.check([0.0, math.inf])[0] is None
    assert gate.check([1e300, 0.0]) == (None, "command beyond float32 (|value| > 3.403e+38) "
                                              "rejected")  # garbage, not a saturated command
    np.testing.assert_array_equal(gate.check([5.0, -0.5])[0], [1.0, -0.5])
    np.testing.assert_array_equal(gate.check([0.5, -0.5])[0], [0.5, -0.5])
    assert gate.counters() == {"accepted": 2, "rejected_size": 2, "rejected_nonfinite": 2,
                               "rejected_overflow": 1, "clipped": 1}


@pytest.mark.parametrize("kwargs, field", [
    ({"mode": "fast"}, "mode"), ({"on_timeout": "brake"}, "on_timeout"),
    ({"command_timeout": 0.0}, "command_timeout"), ({"task": "Nope-v0"}, "Nope-v0"),
])
def test_bridge_config_names_the_bad_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        BridgeConfig(**kwargs)


def test_controller_config_names_the_bad_field():
    with pytest.raises(ConfigError, match="max_obs_age"):
        ControllerConfig(max_obs_age=-1.0)
    with pytest.raises(ConfigError, match="expert labelling runs on the observation topic"):
        ControllerConfig(expert="expert.pt", spec_file="robot.yaml")


def test_session_episodes_reproduce_evaluate_and_the_timeout_policy():
    torch.manual_seed(0)
    task = get_task("InvertedPendulum-v5")
    policy = MLPPolicy(task.obs_dim, task.act_dim, hid_size=16)
    session = SimSession(BridgeConfig(seed=3, max_episodes=2, on_timeout="hold"))
    summaries = []
    while not session.finished:
        obs = session.reset()
        while True:
            action, _ = session.gate.check(policy.act(obs))
            out = session.step(action)
            obs = out.observation
            if out.done:
                summaries.append(session.episode_summary(out.success))
                break
    offline = evaluate(policy, make_env(task.name), 2, 3)
    assert [s[4] for s in summaries] == [3.0, 4.0]
    assert [s[2] for s in summaries] == offline.lengths
    np.testing.assert_allclose([s[1] for s in summaries], offline.returns, atol=1e-12)
    assert math.isnan(summaries[0][3])  # the pendulum reports no success
    np.testing.assert_array_equal(session.timeout_action(), session.last_action)
    joints = session.joint_state()
    assert joints.names == ["slider", "hinge"] and joints.position.shape == (2,)
    session.close()


def test_latency_stats_percentiles_rate_and_deadline_misses():
    stats = LatencyStats(window=100, deadline=0.005)
    for i in range(100):
        stats.add(0.001 * (i + 1) / 10, now=i * 0.01)  # 0.1 ms .. 10 ms, every 10 ms
    assert stats.count == 100 and stats.deadline_misses == 50
    assert stats.percentile_ms(50) == pytest.approx(5.05)
    assert stats.rate_hz() == pytest.approx(100.0)
    assert math.isnan(LatencyStats().rate_hz())


def test_model_slot_keeps_the_old_actor_when_a_swap_fails(tmp_path):
    task = get_task("InvertedPendulum-v5")
    good = save_checkpoint(tmp_path / "good.pt", MLPPolicy(task.obs_dim, task.act_dim), task.name)
    wrong = save_checkpoint(tmp_path / "wrong.pt", MLPPolicy(3, task.act_dim), task.name)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:100])
    slot = ModelSlot(task)
    assert slot.swap(str(good)) == "" and slot.identity == "MLPPolicy@good.pt"
    obs = np.zeros(task.obs_dim)
    before = slot.act(obs)
    assert "wrong.pt" in slot.swap(str(wrong))
    assert "corrupt.pt" in slot.swap(str(corrupt))
    assert "missing.pt" in slot.swap(str(tmp_path / "missing.pt"))
    assert (slot.swaps, slot.failed_swaps, slot.identity) == (1, 3, "MLPPolicy@good.pt")
    np.testing.assert_array_equal(slot.act(obs), before)


def test_model_slot_load_runs_nothing_until_installed(tmp_path):
    task = get_task("InvertedPendulum-v5")
    first = save_checkpoint(tmp_path / "first.pt", MLPPolicy(task.obs_dim, task.act_dim), task.name)
    second = save_checkpoint(tmp_path / "second.pt", MLPPolicy(task.obs_dim, task.act_dim),
                             task.name)
    slot = ModelSlot(task)
    assert slot.swap(str(first)) == ""
    loaded = slot.load(str(second))
    assert not isinstance(loaded, str) and loaded.path == str(second)
    assert (slot.identity, slot.swaps, slot.path) == ("MLPPolicy@first.pt", 1, str(first))
    assert "missing.pt" in slot.load(str(tmp_path / "missing.pt"))
    assert (slot.failed_swaps, slot.identity) == (1, "MLPPolicy@first.pt")
    slot.install(loaded)
    assert (slot.identity, slot.swaps, slot.path) == ("MLPPolicy@second.pt", 2, str(second))
    assert slot.actor is loaded.actor


def test_session_goal_is_the_envs_goal_until_changed_and_is_checked():
    session = SimSession(BridgeConfig(task="FetchReach-v4", seed=0))
    assert session.set_goal([1.3, 0.7, 0.5]) is None  # before the first episode: kept for it
    np.testing.assert_allclose(session.reset()[:3], [1.3, 0.7, 0.5])
    np.testing.assert_allclose(session.set_goal([1.4, 0.8, 0.6])[:3], [1.4, 0.8, 0.6])
    np.testing.assert_allclose(session.env.unwrapped.goal, [1.4, 0.8, 0.6])
    np.testing.assert_allclose(session.reset()[:3], [1.4, 0.8, 0.6])  # outlives the reset
    for goal, match in (([1.0, 2.0], "size 2 refused: task FetchReach-v4 takes a goal of size 3"),
                        ([1.0, math.nan, 0.5], "NaN or inf"),
                        ([1.0, 1e300, 0.5], "beyond float32")):
        with pytest.raises(ConfigError, match=match):
            session.set_goal(goal)
    with pytest.raises(ConfigError, match="takes no goal"):
        SimSession(BridgeConfig(task="InvertedPendulum-v5")).set_goal([0.0, 0.0, 0.0])
