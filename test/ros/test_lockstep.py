"""The lockstep loop through DDS equals the offline rollout, episode for episode."""

import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray

from learned_control import topics
from learned_control.checkpoint import load_checkpoint
from learned_control.evaluation import evaluate
from learned_control.ros import qos
from learned_control.tasks import make_env

pytestmark = pytest.mark.ros


def test_lockstep_returns_equal_offline_evaluate(graph, pendulum_policy):
    episodes, seed = 3, 7
    summaries = []
    graph.node.create_subscription(Float64MultiArray, topics.EPISODE,
                                   lambda m: summaries.append(list(m.data)), qos.SUMMARY)
    graph.start("sim_bridge", task="InvertedPendulum-v5", seed=seed, mode="lockstep",
                max_episodes=episodes)
    graph.start("controller", task="InvertedPendulum-v5", checkpoint=pendulum_policy,
                mode="lockstep")
    graph.spin_until(lambda: len(summaries) >= episodes, 600, f"{episodes} episode summaries")

    offline = evaluate(load_checkpoint(pendulum_policy).model, make_env("InvertedPendulum-v5"),
                       episodes, seed)
    ros_returns = [s[1] for s in summaries]
    assert [s[4] for s in summaries] == [seed + i for i in range(episodes)]  # seeds
    assert [s[2] for s in summaries] == offline.lengths
    np.testing.assert_allclose(ros_returns, offline.returns, rtol=0, atol=1e-9)
    assert offline.mean == 1000.0  # a trained policy, not a trivial one
    # the terminal observation travels with the summary (T + 1 observations per episode)
    assert all(len(s) == 5 + 4 for s in summaries)
