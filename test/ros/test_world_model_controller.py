"""The world-model pipeline's policy checkpoint runs in the controller node, lockstep over DDS.

The bridge runs registry tasks only; the fixed-goal FetchReach is not one, so the checkpoint
(13-d goal + robot observation, task ``FetchReach-v4``) runs on the random-goal FetchReach-v4,
which is the pipeline's deterministic evaluation; the pipeline here trains on random
goals (``random_goals=True``) as a deployment on that task would.
"""

import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray

from learned_control import topics
from learned_control.checkpoint import load_checkpoint
from learned_control.data.minari_io import rollout_episodes
from learned_control.ros import qos
from learned_control.tasks import make_env
from learned_control.training.world_model import WorldModelConfig, run_world_model

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_world_model_policy_in_controller_equals_offline_rollout(graph, tmp_path):
    config = WorldModelConfig(
        expert_steps=256,
        n_steps=64,
        n_envs=2,
        eval_every=128,
        eval_callback_episodes=2,
        collect_steps=300,
        aggregation_steps=100,
        rounds=1,
        model_ppo_steps=256,
        model_envs=4,
        eval_episodes=2,
        members=2,
        hid_size=32,
        num_layers=2,
        epochs=2,
        random_goals=True,
        dataset_prefix="test/wm-ros",
    )
    checkpoint = run_world_model(config, tmp_path / "run", progress=False).checkpoint

    episodes, seed = 3, 11
    summaries = []
    graph.node.create_subscription(
        Float64MultiArray, topics.EPISODE, lambda m: summaries.append(list(m.data)), qos.SUMMARY
    )
    graph.start(
        "sim_bridge", task="FetchReach-v4", seed=seed, mode="lockstep", max_episodes=episodes
    )
    graph.start("controller", task="FetchReach-v4", checkpoint=str(checkpoint), mode="lockstep")
    graph.spin_until(lambda: len(summaries) >= episodes, 120, f"{episodes} episode summaries")

    offline = rollout_episodes(
        load_checkpoint(checkpoint).model, make_env("FetchReach-v4"), episodes, seed, progress=False
    )
    assert [s[4] for s in summaries] == [seed + i for i in range(episodes)]
    assert [s[2] for s in summaries] == [len(ep) for ep in offline]
    np.testing.assert_allclose(
        [s[1] for s in summaries], [ep.episode_return for ep in offline], rtol=0, atol=1e-9
    )
    # the terminal observation depends on every action of the episode
    np.testing.assert_allclose(
        [s[5:] for s in summaries], [ep.observations[-1] for ep in offline], rtol=0, atol=1e-9
    )
