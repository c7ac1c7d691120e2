"""Recorder over real DDS: bridge + controller + recorder in lockstep, the recorder cut by SIGINT
mid-run; the bag stays readable, its episodes equal the offline rollout, bag2minari loads back."""

import signal
import time

import numpy as np
import pytest
import torch
from conftest import diagnostic_values
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rosbags.rosbag2 import Reader
from std_msgs.msg import Float64MultiArray

from learned_control import topics
from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.cli import main as cli_main
from learned_control.data.bags import bag_to_episodes
from learned_control.data.minari_io import load_episodes, rollout_episodes
from learned_control.ros import qos
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for

pytestmark = pytest.mark.ros


@pytest.fixture
def short_policy(tmp_path):
    """An untrained pendulum policy: episodes end within a few dozen steps."""
    torch.manual_seed(3)
    return save_checkpoint(tmp_path / "untrained.pt", mlp_policy_for(get_task("InvertedPendulum-v5")),
                           "InvertedPendulum-v5")


def test_recorded_bag_cut_by_sigint_equals_offline_rollout(graph, short_policy, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    task, seed, bag = get_task("InvertedPendulum-v5"), 7, tmp_path / "run_bag"
    summaries = []
    graph.node.create_subscription(Float64MultiArray, topics.EPISODE,
                                   lambda m: summaries.append(list(m.data)), qos.SUMMARY)
    recorder = graph.start("recorder", bag=str(bag), storage="mcap", mode="lockstep")
    graph.start("controller", task=task.name, checkpoint=short_policy, mode="lockstep")
    graph.spin_until(lambda: graph.node.count_subscribers(topics.OBSERVATION) >= 2
                     and graph.node.count_subscribers(topics.EPISODE) >= 2, 120,
                     "recorder and controller subscriptions")
    # configured but inactive until the recorder has discovered its publishers; that is the
    # recorder's side only (discovery runs per endpoint), so the bridge also waits for its own
    # writers to match the recorder before the first episode (wait_for_recorder)
    graph.start("sim_bridge", task=task.name, seed=seed, mode="lockstep", wait_for_recorder=True,
                autostart=False)
    assert graph.change_state("sim_bridge", Transition.TRANSITION_CONFIGURE)
    recording = []  # the recorder's own report: publishers matched, messages written
    graph.node.create_subscription(
        DiagnosticArray, topics.DIAGNOSTICS,
        lambda m: recording.append(diagnostic_values(m, "recorder: recording") or {}), qos.RELIABLE)

    def recorder_reports(key: str, at_least: int) -> bool:
        return any(int(values.get(key, 0)) >= at_least for values in recording)

    graph.spin_until(lambda: all(recorder_reports(f"publishers/{t}", 1) for t in (
        "/observation", "/applied_command", "/reward", "/episode")), 60,
        "the recorder matching the bridge's publishers")
    assert graph.change_state("sim_bridge", Transition.TRANSITION_ACTIVATE)  # runs on and on
    graph.spin_until(lambda: len(summaries) >= 4 and recorder_reports("written//episode", 4),
                     300, "4 episode summaries, observed and recorded")
    assert recorder.stop(signal.SIGINT) == 0  # cut while the bridge keeps stepping

    with Reader(bag) as reader:  # metadata written: a clean, readable bag
        counts = {c.topic: c.msgcount for c in reader.connections}
    episodes = bag_to_episodes(bag, task)
    assert len(episodes) >= 3  # the observer saw 4; at most the last one was in flight
    assert counts["/observation"] >= sum(len(ep) for ep in episodes)
    offline = rollout_episodes(load_checkpoint(short_policy).model, task.make_env(),
                               len(episodes), seed, progress=False)
    for got, want in zip(episodes, offline):
        assert got.seed == want.seed
        np.testing.assert_allclose(got.observations, want.observations, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.actions, want.actions, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.rewards, want.rewards, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(got.terminations, want.terminations)

    assert cli_main(["bag2minari", str(bag), "test/bag-v0", "--task", task.name]) == 0
    loaded, _ = load_episodes("test/bag-v0", task)
    assert [len(ep) for ep in loaded] == [len(ep) for ep in episodes]
    np.testing.assert_allclose(loaded[0].observations, episodes[0].observations, atol=1e-6)
    np.testing.assert_allclose(loaded[-1].actions, episodes[-1].actions, atol=1e-6)


def test_recorder_refuses_an_existing_bag_path(graph, tmp_path):
    (tmp_path / "exists").mkdir()
    proc = graph.start("recorder", bag=str(tmp_path / "exists"))
    assert proc.proc.wait(60) == 2
    assert "already exists" in proc.output


@pytest.mark.faults
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sigkilled_recorder_bag_is_reindexed_and_converts(graph, short_policy, tmp_path,
                                                         monkeypatch, capsys, storage):
    """SIGKILL leaves no metadata.yaml (and an mcap without footer, a sqlite3 transaction
    open); bag2minari reindexes the bag and converts it. What the recorder reported written
    at least 1 s before the kill is in it (flushed every 0.5 s), equal to the offline rollout."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    task, seed, bag = get_task("InvertedPendulum-v5"), 5, tmp_path / "killed"
    reports = []  # (receive time, episodes the recorder had written)
    graph.node.create_subscription(
        DiagnosticArray, topics.DIAGNOSTICS,
        lambda m: reports.append((time.monotonic(), int((diagnostic_values(
            m, "recorder: recording") or {}).get("written//episode", -1)))), qos.RELIABLE)
    recorder = graph.start("recorder", bag=str(bag), storage=storage, wait_for="[command]")
    graph.start("controller", task=task.name, checkpoint=short_policy, mode="lockstep")
    graph.start("sim_bridge", task=task.name, seed=seed, mode="lockstep", wait_for_recorder=True)
    graph.spin_until(lambda: max((n for _, n in reports), default=0) >= 10, 120,
                     "10 episodes recorded")
    graph.spin_for(1.6)  # reports 1 s older than the kill, written while the bridge ran on
    killed_at = time.monotonic()
    recorder.proc.kill()
    recorder.proc.wait(10)
    assert not (bag / "metadata.yaml").exists()
    flushed = max(n for t, n in reports if t <= killed_at - 1.0)

    assert cli_main(["bag2minari", str(bag), f"test/killed-{storage}-v0", "--task", task.name]) == 0
    assert "reindexed" in capsys.readouterr().err  # the one-line notice
    episodes = bag_to_episodes(bag, task)  # now with its metadata.yaml
    assert len(episodes) >= flushed >= 10
    loaded, _ = load_episodes(f"test/killed-{storage}-v0", task)
    assert [len(ep) for ep in loaded] == [len(ep) for ep in episodes]
    offline = rollout_episodes(load_checkpoint(short_policy).model, task.make_env(), 3, seed,
                               progress=False)
    for got, want in zip(episodes[:3], offline, strict=True):
        np.testing.assert_allclose(got.observations, want.observations, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.actions, want.actions, rtol=0, atol=1e-9)

