"""The model-based loop through ROS: plan, record, refit, hot-swap, unattended."""

import json

import pytest

from learned_control.cli import main
from learned_control.data.bags import bag_to_episodes
from learned_control.errors import ConfigError
from learned_control.ros.mbrl_loop import run_mbrl_loop
from learned_control.tasks import get_task

pytestmark = pytest.mark.ros

TASK = get_task("InvertedPendulum-v5")
LEARNER = {"epochs": 200, "patience": 0, "hid_size": 64, "num_layers": 2, "members": 5}
"""The ensemble the learner refits each time (``learned-control mbrl-loop``'s defaults)."""


@pytest.mark.slow
def test_loop_from_2000_random_transitions_balances_within_three_iterations(graph, tmp_path):
    """From 1996 random-policy transitions (324 episodes, whole ones under the 2000 budget), the
    controller planning with the default planner (learned_control/config/InvertedPendulum-v5.yaml)
    over the learner's ensemble drops the pole in both episodes of iteration 1 (~100-150 steps);
    the learner refits on every bag so far after each iteration, the controller hot-swaps, and an
    episode of iteration 2 or 3 balances 1000 of 1000 steps. Each iteration's bag holds its
    episodes; the curve is saved."""
    out = tmp_path / "loop"
    results = run_mbrl_loop(TASK.name, iterations=3, episodes_per_iteration=2, seed=0,
                            out_dir=out, initial_random_steps=2000, learner=LEARNER,
                            timeout=300, domain_id=graph.domain)
    random, first, *later = (r.episodes for r in results)
    assert [r.iteration for r in results] == [0, 1, 2, 3]
    assert sum(random.lengths) <= 2000 and max(random.lengths) < 50
    # the learner refit on every bag so far, and the controller ran each new checkpoint
    assert [r.model for r in results[1:]] == [f"MPCController@dynamics-000{i}.pt"
                                              for i in (1, 2, 3)]
    assert results[1].trained_on == sum(random.lengths)
    for before, result in zip(results[1:], results[2:]):
        assert result.trained_on == before.trained_on + sum(before.episodes.lengths)
    assert (out / "models" / "dynamics-0003" / "dynamics-0003.pt").is_file()
    # one controller process throughout: the later models came in over model_updated
    log = (out / "logs" / "controller.log").read_text()
    assert "model_updated: now running MPCController@dynamics-0003.pt" in log, log[-2000:]
    assert max(first.lengths) < 1000, first.lengths
    balanced = [(r.lengths, r.returns) for r in later]
    assert any((1000, 1000.0) in zip(*run) for run in balanced), balanced
    # the bags: the random data and one per iteration, readable, with their episodes
    for result in results:
        episodes = bag_to_episodes(result.bag, TASK)
        assert [len(e) for e in episodes] == result.episodes.lengths
        assert [e.episode_return for e in episodes] == pytest.approx(result.episodes.returns)
    assert sorted(p.name for p in (out / "bags").iterdir()) == ["iteration-01", "iteration-02",
                                                                "iteration-03", "random"]
    saved = json.loads((out / "returns.json").read_text())["iterations"]
    assert [row["episodes"]["lengths"] for row in saved] == [r.episodes.lengths for r in results]
    assert (out / "returns.png").stat().st_size > 0


def test_bad_counts_and_a_used_out_dir_are_refused_before_any_node_starts(tmp_path):
    with pytest.raises(ConfigError, match="iterations=0, episodes_per_iteration=2"):
        run_mbrl_loop(TASK.name, 0, 2, 0, tmp_path)
    (tmp_path / "bags" / "old").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already holds bags"):
        run_mbrl_loop(TASK.name, 1, 1, 0, tmp_path)
    with pytest.raises(ConfigError, match="shorter than the first random episode"):
        run_mbrl_loop(TASK.name, 1, 1, 0, tmp_path / "new", initial_random_steps=1)


@pytest.mark.slow
def test_cli_runs_one_short_iteration_and_prints_the_table(graph, tmp_path, monkeypatch, capsys):
    """``learned-control mbrl-loop`` in the fixture's domain (``ROS_DOMAIN_ID``): 200 random
    transitions, a 5-epoch ensemble, one planned episode; the table and the curve files."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(graph.domain))
    out = tmp_path / "cli"
    assert main(["mbrl-loop", "--iterations", "1", "--episodes", "1", "--epochs", "5",
                 "--initial-random-steps", "200", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "model-based loop through ROS" in printed and "dynamics-0001.pt" in printed
    rows = json.loads((out / "returns.json").read_text())["iterations"]
    assert [row["iteration"] for row in rows] == [0, 1]
    assert sum(rows[0]["episodes"]["lengths"]) <= 200 and rows[1]["trained_on"] > 150
    assert len(bag_to_episodes(out / "bags" / "iteration-01", TASK)) == 1
    assert (out / "returns.png").is_file()
