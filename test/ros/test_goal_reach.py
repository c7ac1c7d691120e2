"""Goal-conditioned FetchReach: a policy cloned from the scripted reach expert runs in
the controller node, and the goal it reaches is the one given on the ``goal`` topic."""

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from lifecycle_msgs.msg import Transition
from std_msgs.msg import Float64MultiArray

from conftest import diagnostic_values
from learned_control import topics
from learned_control.checkpoint import save_checkpoint
from learned_control.data.episodes import Transitions
from learned_control.data.minari_io import rollout_episodes
from learned_control.envs.fetch_reach import ReachExpert
from learned_control.evaluation import evaluate
from learned_control.ros import qos
from learned_control.tasks import get_task
from learned_control.training.bc import BCConfig, mlp_policy_for, train_bc

pytestmark = pytest.mark.ros

TASK = get_task("FetchReach-v4")


@pytest.fixture(scope="module")
def reach_policy(tmp_path_factory):
    """BC (64x2) on 50 episodes of the reach expert (random goals); 100% success offline."""
    env = TASK.make_env()
    data = Transitions.from_episodes(rollout_episodes(ReachExpert(), env, 50, 0, False))
    torch.manual_seed(0)
    policy = mlp_policy_for(TASK)
    train_bc(policy, data.observations, data.actions, BCConfig(epochs=50), progress=False)
    assert evaluate(policy, env, 20, seed=10_000).success_rate == 1.0  # fresh random goals
    return save_checkpoint(tmp_path_factory.mktemp("reach") / "reach.pt", policy, TASK.name)


def test_the_controller_reaches_the_goal_given_on_the_topic(graph, reach_policy):
    summaries = []
    graph.node.create_subscription(Float64MultiArray, topics.EPISODE,
                                   lambda m: summaries.append(np.array(m.data)), qos.SUMMARY)
    diags = []
    graph.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, diags.append, qos.RELIABLE)
    goal_pub = graph.node.create_publisher(PointStamped, topics.GOAL, qos.RELIABLE)
    graph.start("controller", task=TASK.name, checkpoint=reach_policy, mode="lockstep")
    graph.start("sim_bridge", task=TASK.name, mode="lockstep", max_episodes=2, autostart=False)
    assert graph.change_state("sim_bridge", Transition.TRANSITION_CONFIGURE)
    graph.spin_until(goal_pub.get_subscription_count, 30, "the bridge's goal subscription")

    goal = np.array([1.25, 0.85, 0.50])  # inside the env's goal range, not its own sample
    msg = PointStamped()
    msg.header.frame_id = "world"
    msg.point.x, msg.point.y, msg.point.z = map(float, goal)
    goal_pub.publish(msg)

    def bridge(key):
        values = next((v for v in (diagnostic_values(m, "bridge") for m in reversed(diags)) if v),
                      {})
        return values.get(key)

    graph.spin_until(lambda: bridge("goals") == "1", 30, "the bridge taking the goal")
    assert graph.change_state("sim_bridge", Transition.TRANSITION_ACTIVATE)
    graph.spin_until(lambda: len(summaries) >= 2, 60, "two episodes")
    for summary in summaries:
        terminal = summary[5:]
        np.testing.assert_allclose(terminal[:3], goal)  # desired_goal: the given one
        assert summary[3] == 1.0  # is_success
        assert np.linalg.norm(terminal[3:6] - goal) < 0.05  # the gripper is at the given goal
