"""``learned-control up --no-bridge``: controller and recorder against a robot's drivers, here the
bridge as a driver brought up on its own (``up --bridge-only --interface driver``), two
``up`` processes on one domain as a robot and its learning graph would be."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rosbags.rosbag2 import Reader
from std_msgs.msg import Float64MultiArray

from learned_control import topics
from learned_control.checkpoint import save_checkpoint
from learned_control.params import parameter_file
from learned_control.ros import qos
from learned_control.specs import default_specs, dump_specs
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for

pytestmark = pytest.mark.ros
CLI = [sys.executable, "-c", "import sys; from learned_control.cli import main; sys.exit(main())"]
EPISODES = 3


def test_a_graph_without_the_bridge_drives_the_robots_drivers_and_records_them(graph, tmp_path):
    task = get_task("InvertedPendulum-v5")
    torch.manual_seed(0)
    policy = save_checkpoint(tmp_path / "p.pt", mlp_policy_for(task), task.name)
    spec = tmp_path / "robot.yaml"
    spec.write_text(dump_specs(default_specs(task.name)))
    params = yaml.safe_load(parameter_file(task.name).read_text())
    params["/**/sim_bridge"]["ros__parameters"].update(seed=5, max_episodes=EPISODES)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    bag = tmp_path / "bag"
    summaries, last = [], {}

    def on_diagnostics(msg):
        for status in msg.status:
            last[status.name] = {kv.key: kv.value for kv in status.values}

    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diagnostics,
                                   qos.RELIABLE)
    graph.node.create_subscription(Float64MultiArray, topics.EPISODE,
                                   lambda m: summaries.append(list(m.data)), qos.SUMMARY)
    runs = {
        "robot": ["--bridge-only", "--interface", "driver", "--spec-file", str(spec),
                  "--params-file", str(params_file)],
        "learning": ["--no-bridge", "--spec-file", str(spec), "--checkpoint", str(policy),
                     "--record", str(bag)],
    }
    procs = {}
    for name, args in runs.items():
        with open(tmp_path / f"up-{name}.log", "w") as log:
            procs[name] = subprocess.Popen(CLI + ["up", "--task", task.name, *args], stdout=log,
                                           stderr=subprocess.STDOUT, env=graph.env)
    try:
        graph.spin_until(lambda: len(summaries) >= EPISODES
                         or any(p.poll() is not None for p in procs.values()),
                         180, f"{EPISODES} episodes")
        for name, proc in procs.items():
            assert proc.poll() is None, (tmp_path / f"up-{name}.log").read_text()
        steps = int(sum(s[2] for s in summaries))
        graph.spin_until(lambda: int(last.get("controller: control", {}).get("commands", -1))
                         == steps == int(last.get("sim_bridge: bridge", {}).get("accepted", -1)),
                         30, "the final counts")
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    first = (tmp_path / "up-learning.log").read_text().splitlines()[0]
    assert first.startswith("up: InvertedPendulum-v5 (lockstep; recorder, controller, ")
    assert [int(s[4]) for s in summaries] == [5, 6, 7]  # the robot's own parameter file
    bridge = last["sim_bridge: bridge"]
    for key in ("rejected_size", "rejected_nonfinite", "ignored_commands"):
        assert int(bridge[key]) == 0, (key, bridge)
    # the recorder recorded the robot's topics and the controller's, none of the bridge's own
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert set(counts) == {"/joint_states", "/effort_controller/commands",
                           "/assembled_observation"}
    assert counts["/joint_states"] >= steps
    # from when the recorder matched each of the controller's writers (after its configure)
    assert 0 < counts["/effort_controller/commands"] <= steps
    assert 0 < counts["/assembled_observation"] <= steps
