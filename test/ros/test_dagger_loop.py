"""DAgger through ROS: the policy drives, the controller's expert labels every
observation, the recorder keeps both, the learner retrains on the aggregate and hot-swaps."""

import json

import numpy as np
import pytest

from learned_control.actors import load_actor
from learned_control.data.bags import bag_to_episodes
from learned_control.errors import ConfigError
from learned_control.ros.dagger_loop import run_dagger_loop
from learned_control.tasks import get_task

pytestmark = pytest.mark.ros

TASK = get_task("InvertedPendulum-v5")


def test_dagger_loop_labels_the_policys_states_with_the_expert_and_retrains(graph, tmp_path,
                                                                            pendulum_policy):
    """Expert: the BC pendulum policy of the fixtures (it balances). Iteration 0 records its own
    episode; iterations 1 and 2 are driven by the learner's policies (bc-0001, bc-0002, trained
    on the aggregate with the expert's labels), and every recorded observation carries the
    expert's action for exactly that observation."""
    out = tmp_path / "dagger"
    results = run_dagger_loop(TASK.name, str(pendulum_policy), iterations=2,
                              episodes_per_iteration=1, seed=0, out_dir=out,
                              learner={"epochs": 30}, timeout=300, domain_id=graph.domain)
    assert [r.iteration for r in results] == [0, 1, 2]
    assert [r.model.split("@")[1] for r in results] == [pendulum_policy.name, "bc-0001.pt",
                                                        "bc-0002.pt"]
    expert_run, first, second = (r.episodes for r in results)
    assert expert_run.lengths == [1000]  # the expert balances
    assert results[1].trained_on == 1000
    assert results[2].trained_on == 1000 + first.lengths[0]  # the aggregate of both bags
    assert second.returns == [1000.0]  # the retrained policy balances too
    # one policy controller from iteration 1 on: bc-0002 came in over model_updated
    log = (out / "logs" / "controller.log").read_text()
    assert "model_updated: now running" in log and "bc-0002.pt" in log, log[-2000:]

    expert = load_actor(pendulum_policy, TASK)
    for result in results:
        (episode,) = bag_to_episodes(result.bag, TASK)
        assert episode.expert_actions is not None and len(episode) == result.episodes.lengths[0]
        labels = np.stack([expert.act(obs) for obs in episode.observations[:-1]])
        np.testing.assert_allclose(episode.expert_actions, labels, atol=1e-6)
        driven_by_expert = np.abs(episode.actions - episode.expert_actions).max() < 1e-6
        assert driven_by_expert == (result.iteration == 0)
    rows = json.loads((out / "returns.json").read_text())["iterations"]
    assert [row["episodes"]["lengths"] for row in rows] == [r.episodes.lengths for r in results]
    assert (out / "returns.png").stat().st_size > 0


def test_bad_counts_and_a_used_out_dir_are_refused_before_any_node_starts(tmp_path):
    with pytest.raises(ConfigError, match="iterations=0, episodes_per_iteration=1"):
        run_dagger_loop(TASK.name, "expert.pt", 0, 1, 0, tmp_path)
    (tmp_path / "bags" / "old").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already holds bags"):
        run_dagger_loop(TASK.name, "expert.pt", 1, 1, 0, tmp_path)
