"""Bad input to a running controller over real DDS: NaN, inf, float32-overflowing and wrong-size
observations and joint states, bad parameters and bad checkpoint files. The process lives, no
command comes from them, ``/diagnostics`` counts and says it, the controller deactivates after
``max_rejected_in_a_row`` in a row, and the level is OK again once it is over."""

import math
import pathlib

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String

from learned_control import topics
from learned_control.checkpoint import save_checkpoint
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.ros import qos
from learned_control.ros.controller import ASSEMBLED_OBSERVATION
from learned_control.ros.node_utils import array_msg
from learned_control.specs import default_specs, dump_specs

pytestmark = pytest.mark.ros

TASK = "InvertedPendulum-v5"
GOOD = [0.0, 0.05, 0.0, 0.0]
BAD = [[0.0, math.nan, 0.0, 0.0], [0.0, 0.0, math.inf, 0.0], [1e300, 0.0, 0.0, 0.0], [0.0, 0.0]]
"""NaN, inf, finite but beyond float32, wrong size."""

OBSERVATIONS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""The observer's observation writer, as the bridge's: it keeps what it sent, so the reject
counts below see every bad observation (the controller reads live samples only)."""

LEVELS = {0: "OK", 1: "WARN", 2: "ERROR"}


class Observer:
    """The test's side of one controller: its commands, diagnostics and services."""

    def __init__(self, graph, command_topic=topics.COMMAND):
        self.graph = graph
        self.commands, self.diags, self.assembled = [], [], []
        node = graph.node
        node.create_subscription(Float64MultiArray, command_topic,
                                 lambda m: self.commands.append(list(m.data)), qos.RELIABLE)
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS,
                                 lambda m: self.diags.append(m), qos.RECORDING)
        node.create_subscription(Float64MultiArray, ASSEMBLED_OBSERVATION,
                                 lambda m: self.assembled.append(list(m.data)), qos.RELIABLE)
        self.get_state = node.create_client(GetState, "/controller/get_state")
        self.set_params = node.create_client(SetParameters, "/controller/set_parameters")

    def status(self) -> DiagnosticStatus | None:
        """The controller's newest ``control`` status."""
        for msg in reversed(self.diags):
            for status in msg.status:
                if status.name == "controller: control":
                    return status
        return None

    def wait_status(self, what: str, predicate, timeout: float = 30.0) -> dict:
        """Wait for a ``control`` status whose ``{level, message, **values}`` satisfies
        ``predicate``; returns it."""
        found = {}

        def check() -> bool:
            status = self.status()
            if status is None:
                return False
            found.clear()
            found.update({kv.key: kv.value for kv in status.values},
                         level=LEVELS[status.level[0]], message=status.message)
            try:
                return bool(predicate(found))
            except KeyError:  # an older status (e.g. before configure) lacks the key
                return False

        try:
            self.graph.spin_until(check, timeout, what)
        except pytest.fail.Exception as failed:
            pytest.fail(f"last status: {found}\n{failed.msg}")
        return dict(found)

    def state(self) -> str:
        """The controller's lifecycle state; the round trip through its executor also shows
        that what was published to it before has been handled."""
        return self.graph.call(self.get_state, GetState.Request(),
                               resend=5.0).current_state.label

    def set(self, **values):
        """Set parameters one request each; ``[(successful, reason)]``."""
        results = []
        for name, value in values.items():
            if isinstance(value, str):
                pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
            elif isinstance(value, float):
                pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
            else:
                pv = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
            request = SetParameters.Request(parameters=[Parameter(name=name, value=pv)])
            result = self.graph.call(self.set_params, request).results[0]
            results.append((result.successful, result.reason))
        return results


class _Trap:
    """Unpickling this creates ``marker``: nothing may ever unpickle it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_bad_observations_parameters_and_checkpoints_leave_the_controller_running(
        graph, pendulum_policy, tmp_path):
    observer = Observer(graph)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, OBSERVATIONS)
    proc = graph.start("controller", task=TASK, checkpoint=pendulum_policy, mode="lockstep",
                       max_rejected_in_a_row=4, autostart=False)

    # diagnostics from construction: state and, after a failed configure, its reason
    first = observer.wait_status("diagnostics before configure",
                                 lambda s: s["state"] == "unconfigured")
    assert (first["level"], first["message"]) == ("OK", "unconfigured")
    assert observer.set(spec_file=str(tmp_path / "missing.yaml")) == [(True, "")]
    assert not graph.change_state("controller", Transition.TRANSITION_CONFIGURE)
    failed = observer.wait_status("the configure error", lambda s: s["level"] == "ERROR")
    assert failed["message"].startswith("configure failed: ") and "missing.yaml" in failed[
        "message"] and failed["state"] == "unconfigured"
    assert observer.set(spec_file="") == [(True, "")]  # unconfigured: still settable
    assert graph.change_state("controller", Transition.TRANSITION_CONFIGURE)
    assert graph.change_state("controller", Transition.TRANSITION_ACTIVATE)

    def answer(values):
        before = len(observer.commands)
        graph.publish_matched(observe, array_msg(values))
        graph.spin_until(lambda: len(observer.commands) > before, 30, "a command")
        return observer.commands[-1]

    good_command = answer(GOOD)

    # bad parameters while running: refused with the reason, the node runs on
    results = observer.set(rate_hz=-1.0, max_rejected_in_a_row=-1, task="Nope-v0",
                           spec_file=str(tmp_path / "missing.yaml"), max_obs_age="fast")
    assert [ok for ok, _ in results] == [False] * 5
    assert "out of range" in results[0][1] and "out of range" in results[1][1]
    assert "fixed after configure" in results[2][1] and "fixed after configure" in results[3][1]
    assert "type" in results[4][1].lower(), results[4][1]

    # bad checkpoint files: refused in one line, nothing unpickled, the old model kept
    marker = tmp_path / "executed"
    empty, foreign, foreign_zip = tmp_path / "empty.pt", tmp_path / "foreign.pt", tmp_path / "x.zip"
    empty.write_bytes(b"")
    torch.save({"format": "learned_control", "trap": _Trap(marker)}, foreign)
    foreign_zip.write_bytes(empty.read_bytes())
    for (ok, reason), path in zip(observer.set(checkpoint=str(empty)) + observer.set(
            checkpoint=str(foreign)) + observer.set(checkpoint=str(foreign_zip)),
            (empty, foreign, foreign_zip)):
        assert not ok and str(path) in reason and "\n" not in reason, reason
    updates = graph.node.create_publisher(String, topics.MODEL_UPDATED, qos.LATCHED)
    updates.publish(String(data=str(foreign)))
    refused = observer.wait_status("four failed swaps", lambda s: s["failed_swaps"] == "4")
    assert refused["level"] == "WARN" and "last swap refused" in refused["message"]
    assert refused["model"] == f"MLPPolicy@{pathlib.Path(pendulum_policy).name}"
    assert not marker.exists() and proc.proc.poll() is None
    assert answer(GOOD) == good_command
    assert observer.set(checkpoint=str(pendulum_policy)) == [(True, "")]  # a good swap: over

    # one of each bad observation: no command, counted by kind, said; the node lives
    count = len(observer.commands)
    for values in BAD[:3]:
        observe.publish(array_msg(values))
        assert observer.state() == "active"
    assert answer(GOOD) == good_command  # a command ends the run of rejections (3 < 4)
    observe.publish(array_msg(BAD[3]))
    assert observer.state() == "active" and len(observer.commands) == count + 1
    said = observer.wait_status("the rejections counted", lambda s: s["rejected_inputs"] == "4")
    assert said["level"] == "WARN" and "rejected_inputs: 4 in the last 5 s" in said["message"]
    assert (said["rejected_nonfinite"], said["rejected_overflow"], said["rejected_size"],
            said["rejected//observation"], said["rejected_in_a_row"]) == ("2", "1", "1", "4", "1")
    observer.wait_status("the level back to OK once it is over", lambda s: s["level"] == "OK")

    # four in a row: the controller deactivates itself and says why
    assert answer(GOOD) == good_command  # the run starts here
    count = len(observer.commands)
    for values in BAD:  # one at a time: the controller's depth-1 reader keeps only the last
        observe.publish(array_msg(values))
        observer.state()
    assert observer.state() == "inactive"
    stopped = observer.wait_status("the reason", lambda s: s["level"] == "ERROR")
    assert stopped["message"] == ("deactivated after 4 rejected inputs in a row (last: "
                                  "observation of size 2 rejected: expected 4)")
    assert len(observer.commands) == count and proc.proc.poll() is None
    assert all(math.isfinite(v) for command in observer.commands for v in command)

    assert graph.change_state("controller", Transition.TRANSITION_ACTIVATE)
    assert answer(GOOD) == good_command
    back = observer.wait_status("OK after re-activation", lambda s: s["level"] == "OK")
    assert back["message"] == "commanding" and back["rejected_inputs"] == "8"


def _spec_file(tmp_path) -> str:
    path = tmp_path / "pendulum.yaml"
    path.write_text(dump_specs(default_specs(TASK)))
    return str(path)


def _dynamics(tmp_path) -> str:
    """An untrained 2-member ensemble: the planner acts through any dynamics checkpoint."""
    torch.manual_seed(0)
    model = EnsembleDynamics(4, 1, members=2, hid_size=16, num_layers=2, activation="relu")
    return str(save_checkpoint(tmp_path / "dyn.pt", model, task=TASK))


@pytest.mark.parametrize("actor", ["policy", "cem"])
def test_bad_joint_states_never_command_and_deactivate_after_a_run(graph, pendulum_policy,
                                                                   tmp_path, actor):
    """The test is the robot (50 Hz /joint_states); the controller commands at 25 Hz."""
    observer = Observer(graph, "/effort_controller/commands")
    joints = graph.node.create_publisher(JointState, topics.JOINT_STATES, qos.RELIABLE)
    payload = {"bad": None}
    cycle = iter(range(10**9))

    def publish():
        msg = JointState(name=["slider", "hinge"], position=[0.0, 0.05], velocity=[0.0, 0.0])
        if payload["bad"] is not None:
            kind = next(cycle) % 4  # NaN, inf, beyond float32, wrong size, in turn
            msg.position = [[math.nan, 0.0], [0.0, 0.05], [1e300, 0.0], [0.0]][kind]
            msg.velocity = [[0.0, 0.0], [math.inf, 0.0], [0.0, 0.0], [0.0, 0.0]][kind]
        msg.header.stamp = graph.node.get_clock().now().to_msg()
        joints.publish(msg)

    graph.node.create_timer(0.02, publish)
    checkpoint = pendulum_policy if actor == "policy" else _dynamics(tmp_path)
    planner = dict(horizon=5, samples=20, elites=4, iterations=2) if actor == "cem" else {}
    proc = graph.start("controller", task=TASK, checkpoint=checkpoint, actor=actor,
                       mode="realtime", rate_hz=25.0, spec_file=_spec_file(tmp_path),
                       max_rejected_in_a_row=20, **planner)
    graph.spin_until(lambda: len(observer.commands) >= 10, 60, "commands from good joint states")

    payload["bad"] = True
    graph.spin_until(lambda: observer.state() == "inactive", 30, "the controller to deactivate")
    stopped = observer.wait_status("the reason", lambda s: s["level"] == "ERROR")
    assert stopped["message"].startswith("deactivated after 20 rejected inputs in a row (last: "
                                         "/joint_states: ")
    assert proc.proc.poll() is None
    # every kind counted under its own name (how many of each reached the controller before the
    # 20th in a row depends on delivery, not on the check), and the run of 20 on the topic
    kinds = {kind: int(stopped[f"rejected_{kind}"]) for kind in ("nonfinite", "overflow", "size")}
    assert min(kinds.values()) >= 1 and sum(kinds.values()) >= 20, stopped
    assert int(stopped["rejected//joint_states"]) >= 20
    # nothing was computed from them: every observation acted on, every command, is finite
    assert all(np.isfinite(obs).all() and np.abs(obs).max() < 1e30 for obs in observer.assembled)
    assert all(np.isfinite(command).all() for command in observer.commands)
    count = len(observer.commands)
    graph.spin_for(0.5)
    assert len(observer.commands) == count  # inactive: silent

    payload["bad"] = None
    assert graph.change_state("controller", Transition.TRANSITION_ACTIVATE)
    graph.spin_until(lambda: len(observer.commands) >= count + 10, 30, "commanding again")
    back = observer.wait_status("OK once the bad joint states stopped",
                                lambda s: s["level"] == "OK")
    assert back["message"] == "commanding" and back["stale_sources"] == ""
