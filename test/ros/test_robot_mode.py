"""Robot mode over real DDS: the controller on driver-shaped topics (ros2_control + mocap).

The bridge with ``interface: ros2_control`` publishes only ``/joint_states`` and the spec's
pose/odometry/goal topics; the controller assembles the observation from them. The observation it
assembled (``assembled_observation``) is compared with an offline replay of the actions the bridge
applied (``applied_command``) from the same seed: both come from the same env, so the replay is
the env's own observation sequence.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import GetState
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from conftest import diagnostic_values
from learned_control import topics
from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.evaluation import evaluate
from learned_control.ros import qos
from learned_control.ros.controller import ASSEMBLED_OBSERVATION
from learned_control.ros.robot_msgs import to_stamp
from learned_control.specs import default_specs, dump_specs, specs_for
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for

pytestmark = pytest.mark.ros

TASKS = ["InvertedPendulum-v5", "Reacher-v5", "Pusher-v5", "HalfCheetah-v5", "Hopper-v5"]
TRAJECTORY_TASKS = ("Reacher-v5", "Pusher-v5")  # their controller takes JointTrajectory here
STEPS = 40  # compared steps per task
EPISODES = {"InvertedPendulum-v5": 6, "Hopper-v5": 6}  # random-policy episodes: 10 to 13 steps
"""Episodes of the random policy the bridge runs: enough for :data:`STEPS`, and few enough that
the observer's queues (1000 deep) hold every message, however far behind it falls (a free-running
lockstep bridge outran it and its oldest applied commands were replaced)."""


def _collect(graph, topic, msg_type, qos_profile=qos.RECORDING):
    """Every message on ``topic``, in order. The deep reader queue matters: lockstep runs at
    hundreds of steps per second, and a depth-10 reader dropped a burst of them (the oldest) when
    the observer stalled under load, so the replay compared different steps."""
    box = []
    graph.node.create_subscription(msg_type, topic, lambda m: box.append(m), qos_profile)
    return box


def _random_policy(task: str, path) -> str:
    """An untrained (seeded) MLP policy checkpoint: any deterministic actor will do."""
    torch.manual_seed(0)
    return str(save_checkpoint(path, mlp_policy_for(get_task(task)), task))


def _spec_file(tmp_path, task: str, **command) -> str:
    """The task's exported spec, with ``command`` fields changed."""
    data = yaml.safe_load(dump_specs(default_specs(task)))
    data["command"].update(command)
    path = tmp_path / f"{task}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _transition(graph, node: str, transition: int) -> None:
    assert graph.change_state(node, transition, timeout=90)


def _state(graph, node: str) -> str:
    get = graph.node.create_client(GetState, f"/{node}/get_state")
    return graph.call(get, GetState.Request(), timeout=90, resend=5.0).current_state.label


def _start_robot_pair(graph, task: str, checkpoint: str, spec_file: str, mode: str = "lockstep",
                      controller: dict | None = None, **bridge):
    """Driver-shaped bridge (active) and a robot-mode controller driven to active through the
    standard lifecycle services once every writer whose output the observer reads has matched
    the observer's readers, so it misses none. Discovery runs per endpoint: the observer's reader
    matching a writer says nothing of the writer's side, and a volatile sample sent before the
    writer matched is lost. So the observer reads every side topic, which makes it the recorder
    the bridge waits for (``wait_for_recorder``: the first episode starts once the bridge's
    writers matched it), and the controller is activated once its own diagnostics report that its
    writers matched the observer (and the bridge, for commands) and the observer's readers matched
    the bridge's and the controller's writers: a volatile reader that matches a writer after it
    sent a sample never gets it, even where the writer had matched the reader first (the bridge
    waits on its writers' side only, and the observer then missed the first applied commands)."""
    for topic, msg_type, profile in ((topics.APPLIED_COMMAND, Float64MultiArray, qos.RECORDING),
                                     (topics.REWARD, Float64, qos.RECORDING),
                                     (topics.EPISODE, Float64MultiArray, qos.SUMMARY)):
        if not any(s.topic_name == "/" + topic for s in graph.node.subscriptions):
            _collect(graph, topic, msg_type, profile)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray)
    graph.start("sim_bridge", task=task, mode=mode, interface="ros2_control",
                spec_file=spec_file, wait_for_recorder=True, **bridge)
    graph.start("controller", task=task, checkpoint=checkpoint, mode=mode, spec_file=spec_file,
                autostart=False, **(controller or {}))
    assert _state(graph, "controller") == "unconfigured"
    _transition(graph, "controller", Transition.TRANSITION_CONFIGURE)
    assert _state(graph, "controller") == "inactive"
    command_topic = specs_for(task, spec_file).command.topic
    readers = {"/" + ASSEMBLED_OBSERVATION: 0, command_topic: 1}  # 1: the bridge reads commands
    for sub in graph.node.subscriptions:
        if sub.topic_name in readers:
            readers[sub.topic_name] += 1

    observed = [sub for sub in graph.node.subscriptions
                if sub.topic_name in ("/" + topics.APPLIED_COMMAND, "/" + topics.REWARD, *readers)]

    def matched() -> bool:  # the controller's latest report of its own writers (writer side)
        values = next((v for m in reversed(diags) if (v := diagnostic_values(m, "control"))), None)
        return values is not None and all(
            int(values.get(f"subscribers/{topic}", -1)) >= n for topic, n in readers.items()
        ) and all(sub.get_publisher_count() >= 1 for sub in observed)  # and the observer's side

    graph.spin_until(matched, 60, "the controller's writers matching the observer's readers")
    _transition(graph, "controller", Transition.TRANSITION_ACTIVATE)


def _replay(task: str, seed: int, actions: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The env's first ``n`` non-terminal observations under ``actions`` (episode k: seed + k)."""
    env = get_task(task).make_env()
    episode = 0
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for action in actions:
        if len(out) >= n:
            break
        obs, _, term, trunc, _ = env.step(action)
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
        out.append(obs)
    env.close()
    return out


@pytest.mark.parametrize("task", TASKS)
def test_assembled_observation_equals_env_observation(graph, tmp_path, task):
    seed = 5
    assembled = _collect(graph, ASSEMBLED_OBSERVATION, Float64MultiArray)
    applied = _collect(graph, topics.APPLIED_COMMAND, Float64MultiArray)
    trajectory = task in TRAJECTORY_TASKS
    commands = _collect(graph, "/effort_controller/commands",
                        JointTrajectory if trajectory else Float64MultiArray)
    spec_file = _spec_file(tmp_path, task,
                           type="JointTrajectory" if trajectory else "Float64MultiArray")
    _start_robot_pair(graph, task, _random_policy(task, tmp_path / "p.pt"), spec_file, seed=seed,
                      max_episodes=EPISODES.get(task, 1))
    graph.spin_until(lambda: len(assembled) >= STEPS and len(applied) >= STEPS - 1, 120,
                     f"{STEPS} assembled observations")
    expected = _replay(task, seed, [np.array(m.data) for m in applied], STEPS)
    assert len(expected) == STEPS
    for k in range(STEPS):
        np.testing.assert_allclose(assembled[k].data, expected[k], rtol=0, atol=1e-9,
                                   err_msg=f"{task} step {k}")
    if trajectory:  # the bridge applied what the one-point trajectories carried
        names = list(default_specs(task).command.joints)
        assert commands[0].joint_names == names and len(commands[0].points) == 1
        np.testing.assert_allclose(commands[0].points[0].effort, applied[0].data, rtol=0,
                                   atol=1e-12)


def test_driver_interface_returns_equal_observation_path(graph, tmp_path, pendulum_policy):
    """Same per-episode returns as the ``observation`` path, which test_lockstep shows equals
    the offline ``evaluate`` (1000-step episode of the trained pendulum policy)."""
    task, seed, episodes = "InvertedPendulum-v5", 7, 1
    summaries = _collect(graph, topics.EPISODE, Float64MultiArray, qos.SUMMARY)
    spec_file = _spec_file(tmp_path, task)
    _start_robot_pair(graph, task, str(pendulum_policy), spec_file, seed=seed,
                      max_episodes=episodes)
    graph.spin_until(lambda: len(summaries) >= episodes, 300, "the episode summaries")
    offline = evaluate(load_checkpoint(pendulum_policy).model,
                       get_task(task).make_env(), episodes, seed)
    assert [s.data[2] for s in summaries] == offline.lengths == [1000]
    np.testing.assert_allclose([s.data[1] for s in summaries], offline.returns, rtol=0,
                               atol=1e-9)


def _joint_state(names, position, stamp: float) -> JointState:
    msg = JointState(name=list(names), position=list(position), velocity=[2 * p for p in position],
                     effort=[0.0] * len(names))
    msg.header.stamp = to_stamp(stamp)
    return msg


def test_shuffled_and_extra_joints_one_answer_per_stamp(graph, tmp_path, pendulum_policy):
    """The test is the robot: joints shuffled, extras, the same stamp twice -> one answer."""
    task = "InvertedPendulum-v5"
    assembled = _collect(graph, ASSEMBLED_OBSERVATION, Float64MultiArray)
    commands = _collect(graph, "/effort_controller/commands", Float64MultiArray)
    joints = graph.node.create_publisher(JointState, topics.JOINT_STATES, qos.RELIABLE)
    names = ["camera_pan", "hinge", "gripper", "slider"]
    values = [9.0, 0.05, -9.0, 0.2]   # slider 0.2, hinge 0.05
    timer = graph.node.create_timer(0.1, lambda: joints.publish(_joint_state(names, values, 1.0)))
    graph.start("controller", task=task, checkpoint=pendulum_policy, mode="lockstep",
                spec_file=_spec_file(tmp_path, task))
    graph.spin_until(lambda: len(commands) >= 1, 60, "an answer to the first stamp")
    graph.node.destroy_timer(timer)  # stamp 1.0 may have been sent several times
    joints.publish(_joint_state(names, values, 1.0 + 0.04))
    graph.spin_until(lambda: len(commands) >= 2, 30, "an answer to the second stamp")
    assert len(commands) == 2 and len(assembled) == 2  # one answer per stamp
    np.testing.assert_array_equal(assembled[0].data, [0.2, 0.05, 0.4, 0.1])
    expected = load_checkpoint(pendulum_policy).model.act(np.array([0.2, 0.05, 0.4, 0.1]))
    np.testing.assert_allclose(commands[0].data, np.clip(expected, -3, 3), rtol=0, atol=1e-6)


def test_missing_joint_fails_configure_naming_it(graph, tmp_path, pendulum_policy):
    task = "InvertedPendulum-v5"
    joints = graph.node.create_publisher(JointState, topics.JOINT_STATES, qos.RELIABLE)
    graph.node.create_timer(0.1, lambda: joints.publish(_joint_state(["slider"], [0.0], 1.0)))
    graph.start("controller", task=task, checkpoint=pendulum_policy,
                spec_file=_spec_file(tmp_path, task), autostart=False)
    assert not graph.change_state("controller", Transition.TRANSITION_CONFIGURE)
    assert _state(graph, "controller") == "unconfigured"
    graph.spin_until(lambda: "lacks joint(s) ['hinge']" in graph.procs[0].output, 30,
                     "the configure error naming the missing joint")


def test_stale_pose_stops_commanding_reports_and_resumes(graph, tmp_path):
    """Reacher as the test's robot at 50 Hz: the fingertip pose stops, then comes back."""
    task = "Reacher-v5"
    commands = _collect(graph, "/effort_controller/commands", Float64MultiArray)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray)
    joints = graph.node.create_publisher(JointState, topics.JOINT_STATES, qos.RELIABLE)
    pose = graph.node.create_publisher(PoseStamped, "/fingertip/pose", qos.RELIABLE)
    live = {"pose": True}

    def publish():
        now = graph.node.get_clock().now().to_msg()
        js = _joint_state(["joint0", "joint1"], [0.1, 0.2], 0.0)
        js.header.stamp = now
        joints.publish(js)
        if live["pose"]:
            msg = PoseStamped()
            msg.header.stamp, msg.header.frame_id = now, "world"
            msg.pose.position.x, msg.pose.orientation.w = 0.2, 1.0
            pose.publish(msg)

    graph.node.create_timer(0.02, publish)
    graph.start("controller", task=task, checkpoint=_random_policy(task, tmp_path / "p.pt"),
                mode="realtime", rate_hz=50.0, spec_file=_spec_file(tmp_path, task))
    graph.spin_until(lambda: len(commands) >= 10, 60, "commands while every source is fresh")

    def control(pred):
        values = diagnostic_values(diags[-1], "control") if diags else None
        return values if values and pred(values) else None

    live["pose"] = False
    graph.spin_until(lambda: control(lambda v: v["stale_sources"] == "fingertip"), 30,
                     "diagnostics naming the stale fingertip pose")
    first = control(lambda v: True)
    graph.spin_until(lambda: control(lambda v: int(v["stale_skips"]) > int(first["stale_skips"])
                                     and v["stale_sources"] == "fingertip"), 30,
                     "a second report while stale")
    assert control(lambda v: True)["commands"] == first["commands"]  # not commanding
    live["pose"] = True
    sent = int(first["commands"])
    graph.spin_until(lambda: control(lambda v: int(v["commands"]) > sent + 5
                                     and v["stale_sources"] == ""), 30,
                     "commanding again once the pose is fresh")


def test_deactivate_mid_run_bridge_holds_safe(graph, tmp_path, pendulum_policy):
    task = "InvertedPendulum-v5"
    applied = _collect(graph, topics.APPLIED_COMMAND, Float64MultiArray)
    commands = _collect(graph, "/effort_controller/commands", Float64MultiArray)
    spec_file = _spec_file(tmp_path, task)
    _start_robot_pair(graph, task, str(pendulum_policy), spec_file, mode="realtime",
                      controller={"use_sim_time": True}, command_timeout=0.2, on_timeout="zero")
    graph.spin_until(lambda: len(commands) >= 20, 60, "the controller commanding in realtime")
    _transition(graph, "controller", Transition.TRANSITION_DEACTIVATE)
    assert _state(graph, "controller") == "inactive"

    def zeros_in_a_row(n):
        tail = applied[-n:]
        return len(tail) == n and all(list(m.data) == [0.0] for m in tail)

    graph.spin_until(lambda: zeros_in_a_row(10), 30, "the bridge applying its zero timeout action")
    count = len(commands)
    mark = len(applied)
    graph.spin_until(lambda: len(applied) >= mark + 10, 30, "more held steps")
    assert len(commands) == count and zeros_in_a_row(20)  # an inactive controller is silent
