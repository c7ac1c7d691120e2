"""A bag of a robot's own topics to episodes: the bridge as a ros2_control driver (Reacher:
joint states, fingertip pose, goal; JointTrajectory commands) with a robot-mode controller, the
real recorder with the spec; ``bag2minari --spec --lockstep`` on its bag gives the env's
observations."""

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from std_msgs.msg import Float64MultiArray

from conftest import diagnostic_values
from learned_control import topics
from learned_control.data.robot_bags import convert_bag
from learned_control.ros import qos
from learned_control.specs import load_specs
from learned_control.tasks import get_task
from test_robot_mode import _collect, _random_policy, _spec_file, _state, _transition

pytestmark = pytest.mark.ros

EPISODES = 2


def test_spec_bag_of_the_bridge_as_driver_converts_to_the_env_observations(graph, tmp_path):
    task, seed, bag = "Reacher-v5", 5, tmp_path / "bag"
    spec_file = _spec_file(tmp_path, task, type="JointTrajectory")
    specs = load_specs(spec_file)
    command = specs.command.topic
    summaries = _collect(graph, topics.EPISODE, Float64MultiArray, qos.SUMMARY)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray)
    graph.start("recorder", bag=str(bag), storage="mcap", mode="lockstep", spec_file=spec_file)
    recorded = ["/joint_states", "/fingertip/pose", "/goal", command, "/applied_command",
                "/reward", "/episode"]
    graph.spin_until(lambda: all(graph.node.count_subscribers(t) >= 1 for t in recorded), 60,
                     "the recorder's subscriptions")
    graph.start("sim_bridge", task=task, mode="lockstep", interface="ros2_control",
                spec_file=spec_file, wait_for_recorder=True, seed=seed, max_episodes=EPISODES)
    graph.start("controller", task=task, checkpoint=_random_policy(task, tmp_path / "p.pt"),
                mode="lockstep", spec_file=spec_file, autostart=False)
    assert _state(graph, "controller") == "unconfigured"
    _transition(graph, "controller", Transition.TRANSITION_CONFIGURE)

    def writers_matched() -> bool:  # the command reaches bridge and recorder, the assembled one
        values = next((v for m in reversed(diags) if (v := diagnostic_values(m, "control"))), None)
        return values is not None and int(values.get(f"subscribers/{command}", 0)) >= 2 \
            and int(values.get(f"subscribers//{topics.ASSEMBLED_OBSERVATION}", 0)) >= 1

    graph.spin_until(writers_matched, 60, "the controller's writers matching bridge and recorder")
    _transition(graph, "controller", Transition.TRANSITION_ACTIVATE)

    def recorder_wrote(n: int) -> bool:
        values = next((v for m in reversed(diags)
                       if (v := diagnostic_values(m, "recorder: recording"))), None)
        return values is not None and int(values.get("written//episode", 0)) >= n

    graph.spin_until(lambda: len(summaries) >= EPISODES and recorder_wrote(EPISODES), 120,
                     f"{EPISODES} episodes, observed and recorded")
    graph.procs[0].stop()  # the recorder: SIGINT, the bag closed

    result = convert_bag(bag, get_task(task), specs, lockstep=True)
    assert result.notes == [] and result.boundaries == "the bridge's '/episode' summaries"
    assert [len(ep) for ep in result.episodes] == [50] * EPISODES
    env = get_task(task).make_env()
    for k, ep in enumerate(result.episodes):
        assert ep.seed == seed + k and ep.truncations[-1] and not ep.terminations.any()
        obs, _ = env.reset(seed=ep.seed)
        expected, rewards = [obs], []
        for action in ep.actions:  # the converted actions, replayed offline
            obs, reward, *_ = env.step(action)
            expected.append(obs)
            rewards.append(reward)
        np.testing.assert_allclose(ep.observations, expected, rtol=0, atol=1e-9,
                                   err_msg=f"episode {k}")
        np.testing.assert_allclose(ep.rewards, rewards, rtol=0, atol=1e-9)
    env.close()
