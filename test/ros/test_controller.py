"""Controller: hot swap, corrupt checkpoints keep the old model, lifecycle transitions."""

import shutil

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from conftest import diagnostic_values
from learned_control.ros import qos, topics
from learned_control.ros.node_utils import array_msg

pytestmark = pytest.mark.ros


def _collect(graph, topic, msg_type, qos_profile):
    box = []
    graph.node.create_subscription(msg_type, topic, lambda m: box.append(m), qos_profile)
    return box


def _answers(graph, observe, commands, n=1):
    """Publish one observation and wait for the controller's command."""
    before = len(commands)
    observe.publish(array_msg([0.0, 0.05, 0.0, 0.0]))
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
    change = graph.node.create_client(ChangeState, "/controller/change_state")
    get = graph.node.create_client(GetState, "/controller/get_state")
    assert graph.call(get, GetState.Request()).current_state.label == "unconfigured"
    assert graph.call(change, ChangeState.Request(
        transition=Transition(id=Transition.TRANSITION_CONFIGURE))).success
    assert graph.call(get, GetState.Request()).current_state.label == "inactive"

    observe.publish(array_msg([0.0, 0.05, 0.0, 0.0]))
    # a round trip through the controller's executor proves the observation was handled
    assert graph.call(get, GetState.Request()).current_state.label == "inactive"
    graph.call(get, GetState.Request())
    assert commands == []

    assert graph.call(change, ChangeState.Request(
        transition=Transition(id=Transition.TRANSITION_ACTIVATE))).success
    _answers(graph, observe, commands)
    assert graph.call(change, ChangeState.Request(
        transition=Transition(id=Transition.TRANSITION_DEACTIVATE))).success
    count = len(commands)
    observe.publish(array_msg([0.0, 0.05, 0.0, 0.0]))
    graph.call(get, GetState.Request())
    graph.call(get, GetState.Request())
    assert len(commands) == count


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
