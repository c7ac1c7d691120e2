"""``learned-control demo`` runs its BC policy through the node graph: same returns as offline."""

import pytest

from learned_control.cli import main
from learned_control.data.bags import bag_to_episodes
from learned_control.tasks import get_task

pytestmark = pytest.mark.ros


def test_demo_runs_bc_through_the_graph_and_records_it(graph, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(graph.domain))
    assert main(["demo", "--expert-steps", "64", "--collect-episodes", "2", "--epochs", "1",
                 "--eval-episodes", "3", "--runs-dir", str(tmp_path), "--torch-threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│")}
    assert list(rows) == ["expert", "BC", "BC via ROS", "random"]
    assert rows["BC via ROS"] == rows["BC"]  # mean, std, % of expert, normalized score, success
    assert "returns equal offline BC: yes" in out and "steps/s, controller latency p50" in out
    run_dir = next(tmp_path.glob("demo-*"))
    episodes = bag_to_episodes(run_dir / "bag", get_task("InvertedPendulum-v5"))
    assert len(episodes) == 3 and [ep.seed for ep in episodes] == [0, 1, 2]
    assert {"sim_bridge.log", "controller.log", "recorder.log"} <= {
        p.name for p in (run_dir / "logs").iterdir()}
