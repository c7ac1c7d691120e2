"""Controller: hot swap, corrupt checkpoints keep the old model, lifecycle transitions."""

import shutil

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from conftest import diagnostic_values
from learned_control import topics
from learned_control.actors import load_actor
from learned_control.ros import qos, services
from learned_control.ros.node_utils import array_msg
from learned_control.tasks import get_task

pytestmark = pytest.mark.ros


def _collect(graph, topic, msg_type, qos_profile):
    box = []
    graph.node.create_subscription(msg_type, topic, lambda m: box.append(m), qos_profile)
    return box


def _answers(graph, observe, commands, n=1):
    """Publish one observation and wait for the controller's command."""
    before = len(commands)
    graph.publish_matched(observe, array_msg([0.0, 0.05, 0.0, 0.0]))
    graph.spin_until(lambda: len(commands) >= before + n, 30, "a command answering an observation")


def test_corrupt_checkpoint_on_reload_keeps_the_old_model(graph, pendulum_policy, tmp_path):
    commands = _collect(graph, topics.COMMAND, Float64MultiArray, qos.RELIABLE)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.LOCKSTEP)
    live = tmp_path / "live.pt"
    shutil.copy(pendulum_policy, live)
    graph.start("controller", task="InvertedPendulum-v5", checkpoint=live, mode="lockstep")
    _answers(graph, observe, commands)
    first = list(commands[-1].data)

    live.write_bytes(live.read_bytes()[:200])  # truncated on disk
    reload = graph.node.create_client(Trigger, "/controller/reload")
    answer = graph.call(reload, Trigger.Request())
    assert not answer.success and "not a readable checkpoint" in answer.message

    set_params = graph.node.create_client(SetParameters, "/controller/set_parameters")
    missing = Parameter(name="checkpoint", value=ParameterValue(
        type=ParameterType.PARAMETER_STRING, string_value=str(tmp_path / "missing.pt")))
    result = graph.call(set_params, SetParameters.Request(parameters=[missing])).results[0]
    assert not result.successful and "no checkpoint file" in result.reason
    bad_values = [Parameter(name="max_obs_age", value=ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0)), Parameter(
        name="mode", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="x"))]
    results = graph.call(set_params, SetParameters.Request(parameters=bad_values)).results
    assert not results[0].successful and "out of range" in results[0].reason
    assert not results[1].successful and "fixed after configure" in results[1].reason

    _answers(graph, observe, commands)  # still up, same model, same answer
    assert list(commands[-1].data) == first

    def failed_swaps():
        values = diagnostic_values(diags[-1], "control") if diags else None
        return values if values and values["failed_swaps"] == "2" else None

    graph.spin_until(failed_swaps, 30, "diagnostics counting the two failed swaps")
    assert failed_swaps()["model"] == "MLPPolicy@live.pt"


def test_model_updated_swaps_mid_run_without_missing_a_tick(graph, pendulum_policy, tmp_path):
    from learned_control.checkpoint import load_checkpoint, save_checkpoint

    summaries = _collect(graph, topics.EPISODE, Float64MultiArray, qos.SUMMARY)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    updates = graph.node.create_publisher(String, topics.MODEL_UPDATED, qos.LATCHED)
    graph.start("sim_bridge", task="InvertedPendulum-v5", mode="lockstep", max_episodes=2)
    graph.start("controller", task="InvertedPendulum-v5", checkpoint=pendulum_policy)
    graph.spin_until(lambda: len(summaries) >= 1, 600, "the first episode")
    new = save_checkpoint(tmp_path / "new.pt", load_checkpoint(pendulum_policy).model,
                          "InvertedPendulum-v5")
    updates.publish(String(data=str(new)))
    graph.spin_until(lambda: len(summaries) >= 2, 600, "two episodes")
    assert [s.data[2] for s in summaries] == [1000.0] * 2  # every step answered: no missed tick

    def swapped():
        values = diagnostic_values(diags[-1], "control") if diags else None
        return values if values and values["model"] == "MLPPolicy@new.pt" else None

    graph.spin_until(swapped, 30, "diagnostics naming the new model")
    assert swapped()["swaps"] == "2" and swapped()["failed_swaps"] == "0"


def test_lifecycle_inactive_controller_publishes_nothing(graph, pendulum_policy):
    commands = _collect(graph, topics.COMMAND, Float64MultiArray, qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.LOCKSTEP)
    graph.start("controller", task="InvertedPendulum-v5", checkpoint=pendulum_policy,
                autostart=False)
    get = graph.node.create_client(GetState, "/controller/get_state")
    assert graph.call(get, GetState.Request(), resend=5.0).current_state.label == "unconfigured"
    assert graph.change_state("controller", Transition.TRANSITION_CONFIGURE)
    assert graph.call(get, GetState.Request(), resend=5.0).current_state.label == "inactive"

    graph.publish_matched(observe, array_msg([0.0, 0.05, 0.0, 0.0]))
    # a round trip through the controller's executor proves the observation was handled
    assert graph.call(get, GetState.Request(), resend=5.0).current_state.label == "inactive"
    graph.call(get, GetState.Request(), resend=5.0)
    assert commands == []

    assert graph.change_state("controller", Transition.TRANSITION_ACTIVATE)
    _answers(graph, observe, commands)
    assert graph.change_state("controller", Transition.TRANSITION_DEACTIVATE)
    count = len(commands)
    observe.publish(array_msg([0.0, 0.05, 0.0, 0.0]))
    graph.call(get, GetState.Request(), resend=5.0)
    graph.call(get, GetState.Request(), resend=5.0)
    assert len(commands) == count


def test_a_transition_whose_answer_is_missing_is_settled_by_the_nodes_state(graph,
                                                                            pendulum_policy):
    """A server drops its answer while it has not matched a new client's reply reader (a CI
    hang): with no answer after ``answer_wait`` (0 here), ``change_state`` asks the state.
    A transition the state lacks is refused; rclpy's own handler raised, ending the node."""
    graph.start("controller", task="InvertedPendulum-v5", checkpoint=pendulum_policy,
                autostart=False)
    get = graph.node.create_client(GetState, "/controller/get_state")
    for transition, label in [(Transition.TRANSITION_CONFIGURE, "inactive"),
                              (Transition.TRANSITION_ACTIVATE, "active"),
                              (Transition.TRANSITION_DEACTIVATE, "inactive"),
                              (Transition.TRANSITION_CLEANUP, "unconfigured")]:
        assert services.change_state(graph.spin_until, graph.node, "/controller", transition,
                                     timeout=30, answer_wait=0.0)
        assert graph.call(get, GetState.Request(), resend=5.0).current_state.label == label
    # a transition the state lacks is refused, answered or not, and the node lives on
    assert not services.change_state(graph.spin_until, graph.node, "/controller",
                                     Transition.TRANSITION_ACTIVATE, timeout=30, answer_wait=0.0)
    assert not graph.change_state("controller", Transition.TRANSITION_ACTIVATE)
    assert graph.change_state("controller", Transition.TRANSITION_CONFIGURE)
    assert graph.procs[0].proc.poll() is None
    assert "no transition 3 from state 'unconfigured'; refused" in graph.procs[0].output


def test_a_lockstep_command_waits_until_the_observations_publisher_reads_commands(
        graph, pendulum_policy):
    """Commands are volatile: one published before the bridge's command reader matched would
    never arrive, and a lockstep bridge would wait for it forever (a CI hang). Here the observer
    sends an observation and subscribes to commands only after the controller has acted on it:
    the command still arrives, held until then (and not by the 10 s fallback)."""
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.LOCKSTEP)
    graph.start("controller", task="InvertedPendulum-v5", checkpoint=pendulum_policy,
                mode="lockstep")
    obs = np.array([0.0, 0.05, 0.0, 0.0])
    graph.publish_matched(observe, array_msg(obs))

    def acted() -> bool:
        values = diagnostic_values(diags[-1], "control") if diags else None
        return bool(values) and values["commands"] == "1"

    graph.spin_until(acted, 60, "the controller acting on the observation")
    commands = _collect(graph, topics.COMMAND, Float64MultiArray, qos.RELIABLE)
    graph.spin_until(lambda: commands, 30, "the held command")
    expected = load_actor(pendulum_policy, get_task("InvertedPendulum-v5")).act(obs)
    np.testing.assert_allclose(commands[0].data, expected, atol=1e-6)
    graph.spin_for(1.0)
    assert len(commands) == 1 and "commanding anyway" not in graph.procs[0].output


def test_realtime_controller_never_acts_on_a_stale_observation(graph, pendulum_policy):
    commands = _collect(graph, topics.COMMAND, Float64MultiArray, qos.RELIABLE)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.SENSOR)
    graph.start("controller", task="InvertedPendulum-v5", checkpoint=pendulum_policy,
                mode="realtime", rate_hz=50.0, max_obs_age=0.1)

    def stale_ticks(minimum):
        values = diagnostic_values(diags[-1], "control") if diags else None
        return values if values and int(values["stale_skips"]) >= minimum else None

    graph.spin_until(lambda: stale_ticks(10), 30, "ticks skipped for want of an observation")
    assert commands == [] and stale_ticks(10)["count"] == "0"
    graph.spin_until(lambda: observe.get_subscription_count() > 0, 30, "the controller")
    observe.publish(array_msg([0.0, 0.05, 0.0, 0.0]))  # one observation: acted on until too old
    graph.spin_until(lambda: commands, 30, "a command for the fresh observation")
    skipped = int(stale_ticks(0)["stale_skips"])
    graph.spin_until(lambda: stale_ticks(skipped + 10), 30, "the observation to go stale again")
    acted = int(stale_ticks(0)["count"])
    # at 50 Hz, a 0.1 s old observation is used for at most ~6 ticks (generous bound: 10)
    assert 1 <= acted <= 10 and len(commands) == acted
