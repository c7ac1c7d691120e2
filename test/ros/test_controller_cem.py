"""Controller with ``actor:=cem``: CEM-MPC through a learned ensemble, driven over DDS.

The ensemble (5 deterministic 2x32 models from 5000 noisy-PD transitions) is trained once per
session with the same helpers as the offline planner test.
"""

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import Trigger

from conftest import diagnostic_values
from learned_control import topics
from learned_control.actors import default_mpc_config, load_actor
from learned_control.evaluation import run_episode
from learned_control.planning.mpc import PLANNER_PARAMETERS
from learned_control.ros import qos
from learned_control.ros.node_utils import array_msg
from learned_control.tasks import get_task, make_env
from pendulum_dynamics import TASK, noisy_pd_episodes, train_pendulum_ensemble

pytestmark = pytest.mark.ros

CHEAP = dict(horizon=5, samples=20, elites=4, iterations=2)
"""A planner weak enough that the pole falls within ~100 steps: several short episodes."""

LATCHED_DEEP = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""The observer's profile for observations: deep, and latched so that it also gets the observation
the bridge is waiting on."""


@pytest.fixture(scope="session")
def pendulum_dynamics(tmp_path_factory):
    """A dynamics checkpoint for InvertedPendulum-v5 (trained once per session)."""
    return train_pendulum_ensemble(tmp_path_factory.mktemp("dynamics") / "dyn.pt",
                                   noisy_pd_episodes(5000, seed=0))


def _planner_params(**overrides) -> dict:
    """The task's default planner settings as node parameters (what the task's parameter file
    gives the launch file), with ``overrides``."""
    config = default_mpc_config(TASK, **overrides)
    values = {**vars(config.cem), "particles": config.particles,
              "propagation": config.propagation, "sample": config.sample,
              "reward": config.reward or ""}
    assert set(values) == set(PLANNER_PARAMETERS)
    return values


def _latest(diags, name):
    """The newest ``<node>: name`` status values among the DiagnosticArrays in ``diags``."""
    return next((v for v in map(lambda m: diagnostic_values(m, name), reversed(diags)) if v), None)


def _collect(graph, topic, profile):
    box = []
    graph.node.create_subscription(Float64MultiArray, topic, lambda m: box.append(list(m.data)),
                                   profile)
    return box


def _run_lockstep(graph, checkpoint, episodes, seed, planner):
    """Bridge (lockstep, ``episodes`` from ``seed``) + cem controller; returns the observations,
    applied actions and episode summaries seen over DDS. The observer reads every topic a
    recorder reads, so the bridge (``wait_for_recorder``) starts only once its writers matched
    the observer's readers: none of the first step's volatile messages can pass it by."""
    observations = _collect(graph, topics.OBSERVATION, LATCHED_DEEP)
    actions = _collect(graph, topics.APPLIED_COMMAND, qos.RECORDING)
    graph.node.create_subscription(Float64, topics.REWARD, lambda m: None, qos.RECORDING)
    summaries = _collect(graph, topics.EPISODE, qos.RELIABLE)
    graph.start("controller", task=TASK, checkpoint=checkpoint, mode="lockstep", actor="cem",
                seed=0, **planner)
    graph.start("sim_bridge", task=TASK, seed=seed, mode="lockstep", max_episodes=episodes,
                wait_for_recorder=True, autostart=False)
    assert graph.change_state("sim_bridge", Transition.TRANSITION_CONFIGURE)
    assert graph.change_state("sim_bridge", Transition.TRANSITION_ACTIVATE)
    graph.spin_until(lambda: len(summaries) >= episodes, 600, f"{episodes} episode summaries")
    return observations, actions, summaries


def _offline(checkpoint, episodes, seed, planner):
    """The same rollout without ROS: ``evaluate``'s loop with the planner built the same way."""
    mpc = load_actor(f"cem:{checkpoint}", get_task(TASK),
                     planner=default_mpc_config(TASK, **planner), seed=0)
    env = make_env(TASK)
    observations, actions, lengths, returns = [], [], [], []
    for k in range(episodes):
        total, steps, _ = run_episode(mpc, env, seed + k,
                                      lambda o, a, r: (observations.append(o), actions.append(a)))
        returns.append(total)
        lengths.append(steps)
    return np.array(observations), np.array(actions), lengths, returns


def test_lockstep_cem_loop_equals_offline_planner_rollout(graph, pendulum_dynamics):
    """Observations and actions of 3 episodes (the planner resets its warm start at every episode
    summary, as offline evaluation does) equal the offline MPCController rollout within 1e-9."""
    episodes, seed = 3, 7
    observations, actions, summaries = _run_lockstep(graph, pendulum_dynamics, episodes, seed,
                                                     _planner_params(**CHEAP))
    off_obs, off_act, lengths, returns = _offline(pendulum_dynamics, episodes, seed, CHEAP)
    assert [s[2] for s in summaries] == lengths
    assert 10 < min(lengths) and max(lengths) < 1000  # several real episodes, none trivial
    np.testing.assert_allclose([s[1] for s in summaries], returns, rtol=0, atol=1e-9)
    assert len(observations) == len(off_obs) and len(actions) == len(off_act)
    np.testing.assert_allclose(np.array(observations), off_obs, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.array(actions), off_act, rtol=0, atol=1e-9)


OUTCOME_EPISODES = 3
"""Episodes of the ROS outcome test. The outcome is 1000 of 1000 steps on 5 of 5 seeded
episodes; through ROS that passed in 158 s on this shared 2-core machine (load ~3, ~30 ms a step),
past the ~90 s a test may take here, so the DDS test runs the first 3 of those seeds (110-148 s
measured under load 3-4; about 60% of that with a core to itself); all 5 run offline in
``test/core/test_planning.py::test_mpc_keeps_pendulum_up_from_noisy_data`` with the same model,
planner, planner seed and episode seeds, a rollout the lockstep test above shows ROS reproduces."""


@pytest.mark.slow
def test_cem_controller_through_ros_keeps_the_pendulum_up(graph, pendulum_dynamics):
    """The outcome: the default planner (learned_control/config/InvertedPendulum-v5.yaml)
    through ROS in lockstep holds the pole for 1000 of 1000 steps on every seeded episode (seeds
    100, 101, ...)."""
    diags = []
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append, qos.RELIABLE)
    _, _, summaries = _run_lockstep(graph, pendulum_dynamics, OUTCOME_EPISODES, 100,
                                    _planner_params())
    assert [(s[1], s[2], s[4]) for s in summaries] == [
        (1000.0, 1000.0, 100.0 + k) for k in range(OUTCOME_EPISODES)]
    plans = 1000 * OUTCOME_EPISODES

    def planner_status():
        values = _latest(diags, "planner")
        return values if values and int(values["count"]) == plans else None

    graph.spin_until(planner_status, 30, f"planner diagnostics counting {plans} plans")
    status = planner_status()
    assert float(status["p50_ms"]) > 0 and status["truncated_plans"] == "0"
    assert status["iterations"] == status["last_iterations"] == "3"


def _set(graph, **values):
    client = graph.node.create_client(SetParameters, "/controller/set_parameters")
    types = {int: ParameterType.PARAMETER_INTEGER, float: ParameterType.PARAMETER_DOUBLE,
             str: ParameterType.PARAMETER_STRING}
    fields = {int: "integer_value", float: "double_value", str: "string_value"}
    params = [Parameter(name=k, value=ParameterValue(type=types[type(v)], **{fields[type(v)]: v}))
              for k, v in values.items()]
    return graph.call(client, SetParameters.Request(parameters=params)).results


def test_corrupt_dynamics_checkpoint_and_bad_planner_settings_keep_the_old_planner(
        graph, pendulum_dynamics, pendulum_policy, tmp_path):
    """A truncated dynamics file, a policy checkpoint and invalid planner settings are refused
    with their reason; the planner keeps answering; valid settings rebuild it."""
    commands = _collect(graph, topics.COMMAND, qos.RELIABLE)
    diags = []
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append, qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.LOCKSTEP)
    live = tmp_path / "live.pt"
    live.write_bytes(pendulum_dynamics.read_bytes())
    graph.start("controller", task=TASK, checkpoint=live, mode="lockstep", actor="cem",
                **_planner_params(**CHEAP))

    def answer():
        before = len(commands)
        graph.publish_matched(observe, array_msg([0.0, 0.05, 0.0, 0.0]))
        graph.spin_until(lambda: len(commands) > before, 30, "a command answering an observation")

    answer()
    result = _set(graph, elites=50)[0]  # more elites than samples (20)
    assert not result.successful and "elites=50 must be <= samples=20" in result.reason
    result = _set(graph, reward="no-such-reward")[0]
    assert not result.successful and "no torch reward for 'no-such-reward'" in result.reason
    result = _set(graph, actor="policy")[0]
    assert not result.successful and "fixed after configure" in result.reason
    assert _set(graph, propagation="tsinf")[0].successful  # 20 particles over 5 members: rebuilt
    result = _set(graph, samples=21)[0]  # valid alone, but 21 particles over 5 members is not
    assert not result.successful and "divisible by the ensemble size 5" in result.reason

    live.write_bytes(live.read_bytes()[:300])
    reply = graph.call(graph.node.create_client(Trigger, "/controller/reload"), Trigger.Request())
    assert not reply.success and "not a readable checkpoint" in reply.message
    result = _set(graph, checkpoint=str(pendulum_policy))[0]
    assert not result.successful and "not a dynamics model" in result.reason
    answer()  # still planning, with the model loaded before the file was corrupted

    def status(failed):
        control = _latest(diags, "control")
        return control if control and control["failed_swaps"] == str(failed) else None

    graph.spin_until(lambda: status(3), 30, "diagnostics counting three failed loads")
    assert status(3)["model"] == "MPCController@live.pt" and status(3)["swaps"] == "2"
    live.write_bytes(pendulum_dynamics.read_bytes())  # valid settings rebuild from the file again
    assert all(r.successful for r in _set(graph, samples=25, iterations=3))
    answer()

    def rebuilt():
        values = _latest(diags, "planner")
        return values if values and values["last_iterations"] == "3" else None

    graph.spin_until(rebuilt, 30, "diagnostics of the rebuilt planner (3 iterations)")
    assert rebuilt()["iterations"] == "3" and status(3)["swaps"] == "4"


def test_realtime_overrun_still_commands_with_a_truncated_plan(graph, pendulum_dynamics):
    """Planning in the tick (``plan_in_background:=false``): 50 CEM iterations do not fit a 20 ms
    period, so each tick's plan stops early (its deadline is the period) and the tick still
    publishes the action refined so far.

    Commands are compared between two quiet moments (observations paused for longer than
    ``max_obs_age``, so the controller stops commanding and nothing is in flight): the observer's
    subscription may match after the controller's first commands, never inside that window."""
    commands = _collect(graph, topics.COMMAND, qos.RELIABLE)
    diags = []
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append, qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.SENSOR)
    feeding = [True]
    graph.node.create_timer(0.02, lambda: feeding[0] and observe.publish(
        array_msg([0.0, 0.05, 0.0, 0.0])))
    graph.start("controller", task=TASK, checkpoint=pendulum_dynamics, mode="realtime",
                rate_hz=50.0, actor="cem", plan_in_background=False,
                **_planner_params(samples=400, elites=40, iterations=50))

    def reports():
        """(control, planner) status values of each controller report so far."""
        pairs = [(diagnostic_values(m, "control"), diagnostic_values(m, "planner")) for m in diags]
        return [pair for pair in pairs if pair[1]]

    def quiet():
        """(plans, truncated plans, commands received, planner status) once two reports, a second apart, show
        the same command count and the observer has received no command for half a second."""
        feeding[0] = False
        done = len(reports())
        graph.spin_until(lambda: len(reports()) >= done + 2 and reports()[-1][0]["commands"]
                         == reports()[-2][0]["commands"], 30, "the controller to stop commanding")
        received = -1
        while received != len(commands):  # drain what is still in flight
            received = len(commands)
            graph.spin_for(0.5)
        control, planner = reports()[-1]
        assert int(control["commands"]) == int(planner["count"])  # one command per plan
        feeding[0] = True
        return int(planner["count"]), int(planner["truncated_plans"]), len(commands), planner

    graph.spin_until(lambda: commands, 60, "the first command")
    plans0, truncated0, received0, _ = quiet()
    graph.spin_until(lambda: int(reports()[-1][1]["count"]) >= plans0 + 20, 60, "20 more plans")
    plans, truncated, received, status = quiet()
    assert plans - plans0 >= 20
    assert int(status["last_iterations"]) < 50
    assert truncated - truncated0 == plans - plans0  # every plan was cut short by the period ...
    assert received - received0 == plans - plans0  # ... and every one of them commanded


def test_realtime_ticks_command_from_the_current_plan_while_the_next_is_made(graph,
                                                                            pendulum_dynamics):
    """Planning in the background (the realtime default): full plans (horizon 40, 200 samples,
    10 iterations: several 20 ms periods each) never hold up a tick. Counted: the ticks publish
    the current plan's next steps meanwhile, several commands per plan, and no tick without a
    plan fresh enough."""
    diags = []
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append, qos.RELIABLE)
    observe = graph.node.create_publisher(Float64MultiArray, topics.OBSERVATION, qos.SENSOR)
    graph.node.create_timer(0.02, lambda: observe.publish(array_msg([0.0, 0.05, 0.0, 0.0])))
    graph.start("controller", task=TASK, checkpoint=pendulum_dynamics, mode="realtime",
                rate_hz=50.0, actor="cem", max_plan_age=2.0,
                **_planner_params(horizon=40, samples=200, elites=20, iterations=10))

    def status():
        """(control, planner) values of the latest report with 10 plans or more."""
        control, planner = _latest(diags, "control"), _latest(diags, "planner")
        return (control, planner) if planner and int(planner["count"]) >= 10 else None

    graph.spin_until(status, 120, "10 background plans")
    control, planner = status()
    assert planner["background"] == "True" and float(planner["p50_ms"]) > 40  # > 2 periods
    assert int(control["commands"]) >= 2 * int(planner["count"])
    assert planner["plan_misses"] == "0" and planner["iterations"] == "10"
    assert float(planner["plan_age_ms"]) < 2000
