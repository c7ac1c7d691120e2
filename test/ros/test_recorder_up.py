"""``learned-control up --record``: the graph as supervised processes, stopped by SIGINT sent to
every process at once; every recorded topic starts with the run."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rosbags.rosbag2 import Reader

from conftest import diagnostic_values
from learned_control import topics
from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.data.bags import bag_to_episodes
from learned_control.data.minari_io import rollout_episodes
from learned_control.ros import qos
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for

pytestmark = pytest.mark.ros
CLI = [sys.executable, "-c", "import sys; from learned_control.cli import main; sys.exit(main())"]


def _children(pid: int) -> list[int]:
    """The child process ids of ``pid`` (Linux /proc)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.faults
def test_up_records_and_stops_cleanly_on_sigint(graph, tmp_path):
    task = get_task("InvertedPendulum-v5")
    torch.manual_seed(3)
    ckpt = save_checkpoint(tmp_path / "p.pt", mlp_policy_for(task), task.name)
    bag, log = tmp_path / "bag", tmp_path / "up.log"
    written = []  # the recorder's own count of episode summaries written
    graph.node.create_subscription(
        DiagnosticArray, topics.DIAGNOSTICS,
        lambda m: written.append(int((diagnostic_values(m, "recorder: recording") or {}).get(
            "written//episode", 0))), qos.RELIABLE)
    with open(log, "w") as out:  # graph.env: the observer's ROS domain
        proc = subprocess.Popen(CLI + ["up", "--task", task.name, "--checkpoint", str(ckpt),
                                       "--record", str(bag)],
                                stdout=out, stderr=subprocess.STDOUT, text=True, env=graph.env)
    try:
        graph.spin_until(lambda: max(written, default=0) >= 3 or proc.poll() is not None, 300,
                         "3 episodes recorded")
        assert proc.poll() is None, "up ended early:\n" + log.read_text()
        nodes = _children(proc.pid)
        assert len(nodes) == 3
        for pid in [proc.pid] + nodes:  # the whole graph at once, as a terminal's Ctrl-C
            os.kill(pid, signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    others = "\n".join(ln for ln in output.splitlines() if not ln.startswith("[sim_bridge]"))
    assert "[recorder  ]" in others, output
    assert "closed" in others, others  # the recorder closed its bag
    assert "Traceback" not in output and "exited with" not in output, output
    with Reader(bag) as reader:  # metadata written on SIGINT: a readable bag
        counts = {c.topic: c.msgcount for c in reader.connections}
        order = [c.topic for c, _, _ in reader.messages()]
    # /command starts with the run: the recorder subscribed to the bridge's topics only once the
    # controller's command writer had matched it, so no command of the first steps is missing
    assert order.index("/command") <= order.index("/observation") + 2
    assert counts["/command"] >= counts["/observation"] - 2
    assert counts["/episode"] >= 3 and counts["/applied_command"] >= counts["/episode"]
    # the bridge waited for the recorder: every episode from step 0, equal to the offline rollout
    episodes = bag_to_episodes(bag, task)
    assert episodes[0].seed == 0  # learned_control/config/InvertedPendulum-v5.yaml: seed 0
    offline = rollout_episodes(load_checkpoint(ckpt).model, task.make_env(), len(episodes), 0,
                               progress=False)
    for got, want in zip(episodes, offline):
        np.testing.assert_allclose(got.observations, want.observations, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.actions, want.actions, rtol=0, atol=1e-9)
