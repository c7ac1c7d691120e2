"""``learned-control up --record``: the graph as supervised processes, stopped by Ctrl-C."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from rosbags.rosbag2 import Reader

from conftest import new_domain
from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.data.bags import bag_to_episodes
from learned_control.data.minari_io import rollout_episodes
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for

pytestmark = pytest.mark.ros
CLI = [sys.executable, "-c", "import sys; from learned_control.cli import main; sys.exit(main())"]


def test_up_records_and_stops_cleanly_on_sigint(tmp_path):
    task = get_task("InvertedPendulum-v5")
    torch.manual_seed(3)
    ckpt = save_checkpoint(tmp_path / "p.pt", mlp_policy_for(task), task.name)
    bag = tmp_path / "bag"
    env = {**os.environ, "ROS_DOMAIN_ID": str(new_domain())}
    proc = subprocess.Popen(CLI + ["up", "--task",
                             task.name, "--checkpoint", str(ckpt), "--record", str(bag)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    while sum("[sim_bridge] [INFO]" in ln and "episode" in ln for ln in lines) < 3:
        line = proc.stdout.readline()
        assert line, "up ended early:\n" + "".join(lines)
        lines.append(line)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + rest
    assert any(ln.startswith("[recorder  ]") for ln in lines)
    assert "closed" in rest  # the recorder closed its bag
    with Reader(bag) as reader:  # metadata written on SIGINT: a readable bag
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/episode"] >= 1 and counts["/applied_command"] >= counts["/episode"]
    # the bridge waited for the recorder: every episode from step 0, equal to the offline rollout
    episodes = bag_to_episodes(bag, task)
    assert episodes[0].seed == 0  # config/InvertedPendulum-v5.yaml: seed 0
    offline = rollout_episodes(load_checkpoint(ckpt).model, task.make_env(), len(episodes), 0,
                               progress=False)
    for got, want in zip(episodes, offline):
        np.testing.assert_allclose(got.observations, want.observations, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.actions, want.actions, rtol=0, atol=1e-9)

