"""Two ``learned-control up`` graphs under two namespaces on one DDS domain, and the diagnostics
aggregator's analyzers over every status their nodes publish.

Graph ``r1`` runs InvertedPendulum-v5 (1-d commands) on the sim interface with the CEM planner
and the learner, graph ``r2`` Reacher-v5 (2-d commands) with the bridge as a driver (the exported
spec: ``/joint_states``, ``/effort_controller/commands``), a policy in robot mode and the
recorder; both lockstep, 3 episodes, with parameter files that give each bridge its own seed. A
command or an observation that crossed over would be refused for its size and counted, and would
break lockstep's one command per step.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Float64MultiArray

from learned_control import topics
from learned_control.checkpoint import save_checkpoint
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.params import PARAMETER_DIR, parameter_file
from learned_control.ros import qos
from learned_control.specs import default_specs, dump_specs
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for

pytestmark = pytest.mark.ros
CLI = [sys.executable, "-c", "import sys; from learned_control.cli import main; sys.exit(main())"]
EPISODES = 3


def _params_file(tmp_path, task: str, seed: int, **controller) -> str:
    """The task's packaged parameter file with the bridge's seed and episode count changed."""
    params = yaml.safe_load(parameter_file(task).read_text())
    params["/**/sim_bridge"]["ros__parameters"].update(seed=seed, max_episodes=EPISODES)
    params["/**/controller"]["ros__parameters"].update(controller)
    path = tmp_path / f"{task}.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def _analyzers() -> dict[str, list[re.Pattern]]:
    """path -> regexes of every GenericAnalyzer in diagnostics_agg.yaml."""
    config = yaml.safe_load((PARAMETER_DIR / "diagnostics_agg.yaml").read_text())
    section = config["analyzers"]["ros__parameters"]
    out = {}
    for key, analyzer in section.items():
        if isinstance(analyzer, dict):
            assert analyzer["type"] == "diagnostic_aggregator/GenericAnalyzer", key
            assert set(analyzer) == {"type", "path", "regex"}, key  # what the test matches
            out[analyzer["path"]] = [re.compile(r) for r in analyzer["regex"]]
    return out


def test_two_namespaced_graphs_on_one_domain_do_not_cross_talk(graph, tmp_path):
    torch.manual_seed(0)
    dynamics = save_checkpoint(tmp_path / "dyn.pt", EnsembleDynamics(
        4, 1, members=2, hid_size=16, num_layers=1), task="InvertedPendulum-v5")
    bags = tmp_path / "bags"  # the learner's (empty) source folder
    bags.mkdir()
    reacher = get_task("Reacher-v5")
    policy = save_checkpoint(tmp_path / "reacher.pt", mlp_policy_for(reacher), reacher.name)
    spec = tmp_path / "reacher.yaml"
    spec.write_text(dump_specs(default_specs(reacher.name)))
    runs = {
        "r1": ["--task", "InvertedPendulum-v5", "--actor", "cem", "--checkpoint", str(dynamics),
               "--learner", "--learner-sources", str(bags),
               "--params-file", _params_file(tmp_path, "InvertedPendulum-v5", 11, horizon=2,
                                             samples=10, elites=2, iterations=1)],
        "r2": ["--task", "Reacher-v5", "--checkpoint", str(policy), "--interface", "driver",
               "--spec-file", str(spec), "--record", str(tmp_path / "bag"),
               "--params-file", _params_file(tmp_path, "Reacher-v5", 22)],
    }
    summaries = {ns: [] for ns in runs}
    names, last = set(), {}

    def on_diagnostics(msg):
        for status in msg.status:
            names.add(status.name)
            last[status.name] = {kv.key: kv.value for kv in status.values}

    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on_diagnostics,
                                   qos.RELIABLE)
    for ns in runs:
        graph.node.create_subscription(Float64MultiArray, f"/{ns}/{topics.EPISODE}",
                                       lambda m, ns=ns: summaries[ns].append(list(m.data)),
                                       qos.SUMMARY)
    procs = {}
    for ns, args in runs.items():
        with open(tmp_path / f"up-{ns}.log", "w") as log:
            procs[ns] = subprocess.Popen(CLI + ["up", "--namespace", ns, *args], stdout=log,
                                         stderr=subprocess.STDOUT, env=graph.env)
    try:
        def bridges_done() -> bool:
            return all(int(last.get(f"{ns}/sim_bridge: bridge", {}).get("episodes_done", 0))
                       >= EPISODES and len(summaries[ns]) >= EPISODES for ns in runs)

        graph.spin_until(lambda: bridges_done() or any(p.poll() is not None
                                                       for p in procs.values()),
                         240, f"{EPISODES} episodes in both graphs")
        for ns, proc in procs.items():
            assert proc.poll() is None, (tmp_path / f"up-{ns}.log").read_text()
        steps = {ns: int(sum(s[2] for s in summaries[ns][:EPISODES])) for ns in runs}
        graph.spin_until(lambda: all(
            int(last.get(f"{ns}/controller: control", {}).get("commands", -1)) == steps[ns]
            and int(last[f"{ns}/sim_bridge: bridge"]["steps"]) == steps[ns] for ns in runs),
            30, "the final counts")
        graph.spin_for(1.5)  # a stray message of the other graph would have arrived by now
        # no topic of the graphs outside their namespaces (/diagnostics aside)
        for name in ("/observation", "/command", "/episode", "/joint_states", "/clock",
                     "/effort_controller/commands"):
            assert graph.node.count_publishers(name) == 0, name
        for name in ("/r1/joint_states", "/r1/clock", "/r2/joint_states", "/r2/clock",
                     "/r2/effort_controller/commands", "/r2/assembled_observation"):
            assert graph.node.count_publishers(name) == 1, name
        assert graph.node.count_publishers("/r2/observation") == 0  # a driver has none
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    # each bridge ran its own parameter file's seeds: the /**/ sections apply in a namespace
    assert [int(s[4]) for s in summaries["r1"]] == [11, 12, 13]
    assert [int(s[4]) for s in summaries["r2"]] == [22, 23, 24]
    assert [int(s[2]) for s in summaries["r2"]] == [50, 50, 50]
    for ns in runs:
        bridge = last[f"{ns}/sim_bridge: bridge"]
        control = last[f"{ns}/controller: control"]
        # every command each bridge took was its own controller's, one per step, none refused
        assert int(bridge["accepted"]) == steps[ns], (ns, bridge)
        for key in ("rejected_size", "rejected_nonfinite", "ignored_commands"):
            assert int(bridge[key]) == 0, (ns, key, bridge)
        assert int(control["rejected_inputs"]) == 0, (ns, control)
    # the recorder recorded the driver's topics under the namespace, every command included
    written = {k.removeprefix("written/"): int(v)
               for k, v in last["r2/recorder: recording"].items() if k.startswith("written/")}
    assert set(written) == {"/r2/applied_command", "/r2/reward", "/r2/episode",
                            "/r2/joint_states", "/r2/fingertip/pose", "/r2/goal",
                            "/r2/effort_controller/commands", "/r2/assembled_observation"}
    assert written["/r2/applied_command"] == written["/r2/reward"] == steps["r2"]
    # the controller's commands from when the recorder matched its writer (after its configure)
    assert 0 < written["/r2/effort_controller/commands"] <= steps["r2"]

    # every status the nodes published falls under exactly one analyzer, the node's own
    assert names == {"r1/sim_bridge: bridge", "r1/controller: control", "r1/controller: planner",
                     "r1/learner: training", "r2/sim_bridge: bridge", "r2/controller: control",
                     "r2/recorder: recording"}
    analyzers = _analyzers()
    own = {"sim_bridge": "Bridge", "controller": "Controller", "recorder": "Recorder",
           "learner": "Learner"}
    # (and the names outside a namespace, and those of the loops' suffixed nodes)
    for name in names | {"sim_bridge2: bridge", "recorder1: recording", "controller: control"}:
        paths = [p for p, regexes in analyzers.items() if any(r.fullmatch(name) for r in regexes)]
        node = name.split(":")[0].split("/")[-1].rstrip("0123456789")
        assert paths == [own[node]], (name, paths)
