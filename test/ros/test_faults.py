"""Fault injection with real processes over real DDS: a controller SIGKILLed under ``up`` (the
graph stops naming it, or ``--respawn`` brings it back), a node that fails to configure under
``up``, a checkpoint swap during realtime control, a learner SIGKILLed mid-training."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from conftest import diagnostic_values
from learned_control import topics
from learned_control.actors import load_actor
from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.data.bags import write_bag
from learned_control.ros import qos
from learned_control.ros.node_utils import array_msg
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for
from learned_control.training.experts import collect_dataset
from scripted_experts import PendulumLQR

pytestmark = [pytest.mark.ros, pytest.mark.faults]
CLI = [sys.executable, "-c", "import sys; from learned_control.cli import main; sys.exit(main())"]
TASK = get_task("InvertedPendulum-v5")
OBS = [0.0, 0.05, 0.0, 0.0]


def _node_pid(up_pid: int, module: str) -> int:
    """The pid of ``up``'s child running ``learned_control.ros.<module>`` (Linux /proc)."""
    for child in Path(f"/proc/{up_pid}/task/{up_pid}/children").read_text().split():
        if f"learned_control.ros.{module}\0" in Path(f"/proc/{child}/cmdline").read_text():
            return int(child)
    raise AssertionError(f"no {module} process under up ({up_pid})")


def _bridge_status(diags):
    """``(level, message, values)`` of the bridge's latest status, or None."""
    for msg in reversed(diags):
        for status in msg.status:
            if status.name.endswith("bridge"):
                return status.level[0], status.message, {kv.key: kv.value for kv in status.values}
    return None


class _Up:
    """``learned-control up`` in the graph's ROS domain, its output in a log file."""

    def __init__(self, graph, tmp_path, *args):
        self.log = tmp_path / "up.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(CLI + ["up", *args], stdout=out,
                                         stderr=subprocess.STDOUT, env=graph.env)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _watch_bridge(graph):
    applied, diags = [], []
    graph.node.create_subscription(Float64MultiArray, topics.APPLIED_COMMAND,
                                   lambda m: applied.append(m.data[0]), qos.RELIABLE)
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append,
                                   qos.RELIABLE)
    return applied, diags


def test_up_respawns_a_killed_controller_and_the_bridge_holds_safe_meanwhile(
        graph, pendulum_policy, tmp_path):
    applied, diags = _watch_bridge(graph)
    up = _Up(graph, tmp_path, "--task", TASK.name, "--checkpoint", str(pendulum_policy),
             "--mode", "realtime", "--respawn")
    try:
        graph.spin_until(lambda: sum(a != 0.0 for a in applied) >= 10 or up.proc.poll()
                         is not None, 120, "the controller's commands applied")
        assert up.proc.poll() is None, up.output
        os.kill(_node_pid(up.proc.pid, "controller"), signal.SIGKILL)
        killed = len(applied)
        # command_timeout 0.5 s at 25 Hz: from the 13th step after the kill the bridge applies
        # on_timeout=zero, and says why, until the respawned controller commands again
        graph.spin_until(lambda: len(applied) >= killed + 20, 30, "steps after the kill")
        assert applied[killed + 13:killed + 20] == [0.0] * 7

        def said():
            status = _bridge_status(diags)
            return status is not None and status[0] == 1 and "no command for" in status[1] and (
                "applying on_timeout=zero" in status[1])

        graph.spin_until(said, 30, "the bridge saying it has no command")
        graph.spin_until(lambda: sum(a != 0.0 for a in applied[killed + 20:]) >= 10, 120,
                         "commands from the respawned controller")
        assert up.proc.poll() is None, up.output
        assert "[controller] killed by SIGKILL; respawning in 1 s" in up.output
        assert up.output.count("configured MLPPolicy@pendulum.pt") == 2, up.output
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(60) == 0, up.output
    finally:
        up.close()


def test_a_controller_respawned_in_lockstep_is_sent_the_observation_the_bridge_waits_on(
        graph, pendulum_policy, tmp_path):
    """Lockstep never steps without a command: while the controller is dead nothing is applied;
    the respawned one reads live observations only, so the bridge sends the pending one again
    (once) and the run goes on."""
    applied, diags = _watch_bridge(graph)
    up = _Up(graph, tmp_path, "--task", TASK.name, "--checkpoint", str(pendulum_policy),
             "--mode", "lockstep", "--respawn")
    try:
        graph.spin_until(lambda: len(applied) >= 50 or up.proc.poll() is not None, 120,
                         "the controller's commands applied")
        assert up.proc.poll() is None, up.output
        os.kill(_node_pid(up.proc.pid, "controller"), signal.SIGKILL)
        graph.spin_for(0.5)  # commands already in flight land
        held = len(applied)
        graph.spin_until(lambda: "respawning" in up.output, 30, "the respawn")
        assert len(applied) == held  # nothing stepped without a controller
        graph.spin_until(lambda: len(applied) >= held + 50, 120,
                         "commands from the respawned controller\n" + up.output[-3000:])

        def resent():
            status = _bridge_status(diags)
            return status is not None and status[2].get("observations_resent") == "1"

        graph.spin_until(resent, 30, "the bridge counting one observation sent again")
        assert up.proc.poll() is None, up.output
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(60) == 0, up.output
    finally:
        up.close()


def test_up_stops_the_graph_naming_a_killed_controller(graph, pendulum_policy, tmp_path):
    applied, _ = _watch_bridge(graph)
    up = _Up(graph, tmp_path, "--task", TASK.name, "--checkpoint", str(pendulum_policy),
             "--mode", "realtime", "--grace", "5")
    try:
        graph.spin_until(lambda: sum(a != 0.0 for a in applied) >= 5 or up.proc.poll()
                         is not None, 120, "the controller's commands applied")
        assert up.proc.poll() is None, up.output
        bridge = _node_pid(up.proc.pid, "sim_bridge")
        os.kill(_node_pid(up.proc.pid, "controller"), signal.SIGKILL)
        assert up.proc.wait(60) == 128 + signal.SIGKILL, up.output
    finally:
        up.close()
    assert "[controller] killed by SIGKILL; stopping the others" in up.output
    assert not Path(f"/proc/{bridge}").exists() or "zombie" in Path(
        f"/proc/{bridge}/status").read_text()  # the bridge was stopped with the graph


def test_up_exits_when_a_node_fails_to_configure(graph, pendulum_policy, tmp_path):
    """An InvertedPendulum policy for Reacher: the controller refuses it and ``up`` ends with
    the reason and exit code 2, also with --respawn (it would fail again)."""
    up = _Up(graph, tmp_path, "--task", "Reacher-v5", "--checkpoint", str(pendulum_policy),
             "--respawn")
    try:
        assert up.proc.wait(120) == 2, up.output
    finally:
        up.close()
    lines = [ln for ln in up.output.splitlines() if ln.startswith("[controller")]
    assert any("configure failed:" in ln and "pendulum.pt" in ln for ln in lines), up.output
    assert "[controller] exited with 2; stopping the others" in up.output
    assert "respawning" not in up.output and "Traceback" not in up.output


def _sb3_zip(path: Path) -> Path:
    """An untrained SB3 PPO policy for InvertedPendulum (loading one imports SB3: ~1 s)."""
    from stable_baselines3 import PPO

    PPO("MlpPolicy", TASK.make_env(), seed=0, device="cpu").save(path)
    return path


def test_a_checkpoint_swap_never_holds_up_realtime_control(graph, pendulum_policy, tmp_path):
    """The controller at 50 Hz with fresh observations: while an SB3 zip loads (the first one
    in the process also imports SB3) commands keep coming, none of the gaps reaches
    the bridge's command_timeout (0.5 s); the new model commands from the answer on; a bad file
    is refused with the old model kept."""
    commands, diags = [], []
    graph.node.create_subscription(
        Float64MultiArray, topics.COMMAND,
        lambda m: commands.append((time.monotonic(), m.data[0])), qos.RELIABLE)
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append,
                                   qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.SENSOR)
    graph.node.create_timer(0.01, lambda: observe.publish(array_msg(OBS)))
    graph.start("controller", task=TASK.name, checkpoint=pendulum_policy, mode="realtime",
                rate_hz=50.0, max_obs_age=1.0)
    zipped = _sb3_zip(tmp_path / "ppo.zip")
    old = float(load_actor(str(pendulum_policy), TASK).act(np.array(OBS))[0])
    new = float(load_actor(str(zipped), TASK).act(np.array(OBS))[0])
    assert abs(old - new) > 1e-3  # the two models are told apart by their command
    graph.spin_until(lambda: len(commands) >= 50, 60, "50 commands")
    set_params = graph.node.create_client(SetParameters, "/controller/set_parameters")

    def set_checkpoint(path):
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(path))
        request = SetParameters.Request(parameters=[Parameter(name="checkpoint", value=value)])
        return graph.call(set_params, request, timeout=60).results[0]

    graph.spin_until(set_params.service_is_ready, 30, "the parameter service")
    start = time.monotonic()
    assert set_checkpoint(zipped).successful
    end = time.monotonic()
    during = [t for t, _ in commands if start <= t <= end]
    assert end - start > 0.2, "the load was too quick to tell anything"
    # counted, not timed: commands kept coming while the model loaded, never 0.5 s apart (the
    # bridge's command_timeout; one thread would have stopped for the whole load)
    window = [t for t, _ in commands if start - 0.5 <= t <= end + 0.5]
    assert len(during) >= 2 and max(np.diff(window)) < 0.5, (len(during), np.diff(window).max())
    graph.spin_until(lambda: commands[-1][0] > end + 0.2, 10, "commands after the swap")
    assert commands[-1][1] == pytest.approx(new, abs=1e-6)
    assert any(v == pytest.approx(old, abs=1e-6) for t, v in commands if t < start)

    bad = tmp_path / "bad.zip"
    bad.write_bytes(zipped.read_bytes()[:500])
    refused = set_checkpoint(bad)
    assert not refused.successful and str(bad) in refused.reason and "\n" not in refused.reason
    count = len(commands)
    graph.spin_until(lambda: len(commands) >= count + 20, 10, "commands after the refusal")
    assert commands[-1][1] == pytest.approx(new, abs=1e-6)  # the loaded zip kept running

    def model():
        for msg in reversed(diags):
            values = diagnostic_values(msg, "control")
            if values:
                return values
        return None

    graph.spin_until(lambda: (model() or {}).get("failed_swaps") == "1", 30, "the failed swap")
    assert model()["model"].endswith("@ppo.zip") and model()["swaps"] == "2"


@pytest.fixture
def demo_bags(tmp_path):
    """A folder of one closed bag holding 3 noisy LQR episodes (what the recorder writes)."""
    env = TASK.make_env()
    env.reset(seed=0)
    episodes = collect_dataset(PendulumLQR(env), TASK, "test/lqr-v0", episodes=3, seed=100,
                               noise_std=0.1, progress=False)
    write_bag(tmp_path / "bags" / "run-1", episodes)
    return tmp_path / "bags"


@pytest.mark.slow
def test_a_learner_killed_mid_training_leaves_its_last_checkpoint_and_the_controllers_model(
        graph, demo_bags, tmp_path):
    torch.manual_seed(0)
    untrained = save_checkpoint(tmp_path / "untrained.pt", mlp_policy_for(TASK), TASK.name)
    commands, diags, updates = [], [], []
    graph.node.create_subscription(Float64MultiArray, topics.COMMAND,
                                   lambda m: commands.append(m.data[0]), qos.RELIABLE)
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append,
                                   qos.RELIABLE)
    graph.node.create_subscription(String, topics.MODEL_UPDATED, updates.append, qos.LATCHED)
    graph.start("sim_bridge", task=TASK.name, mode="lockstep")
    graph.start("controller", task=TASK.name, checkpoint=untrained)
    out = tmp_path / "learner"
    learner = graph.start("learner", task=TASK.name, sources=f"['{demo_bags}']", epochs=3,
                          output_dir=out)
    train = graph.node.create_client(Trigger, "/learner/train")

    def status(name):
        for msg in reversed(diags):
            values = diagnostic_values(msg, name)
            if values:
                return values
        return {}

    assert graph.call(train, Trigger.Request(), timeout=60).success
    graph.spin_until(lambda: updates, 120, "the first checkpoint")
    first = Path(updates[0].data)
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    graph.spin_until(lambda: status("control").get("model") == f"MLPPolicy@{first.name}", 60,
                     "the controller to run the first checkpoint")

    set_params = graph.node.create_client(SetParameters, "/learner/set_parameters")
    epochs = Parameter(name="epochs", value=ParameterValue(
        type=ParameterType.PARAMETER_INTEGER, integer_value=100000))
    assert graph.call(set_params, SetParameters.Request(parameters=[epochs])).results[0].successful
    assert graph.call(train, Trigger.Request(), timeout=60).success
    graph.spin_until(lambda: int(status("learner: training").get("epoch", 0)) >= 2
                     and status("learner: training").get("epochs") == "100000", 120,
                     "the second job training")
    learner.stop(sig=signal.SIGKILL)  # mid-training, no goodbye
    count = len(commands)
    graph.spin_until(lambda: len(commands) >= count + 100, 60, "commands after the kill")
    assert status("control").get("model") == f"MLPPolicy@{first.name}"  # kept its model
    assert len(updates) == 1
    # the previous checkpoint is intact and loads; the killed job left no checkpoint file
    assert hashlib.sha256(first.read_bytes()).hexdigest() == digest
    assert load_checkpoint(first).metadata["epochs"] == 3
    assert [p.name for p in out.rglob("*.pt")] == [first.name]
