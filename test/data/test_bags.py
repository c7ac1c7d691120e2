"""Bags: sqlite3/mcap round trip of episodes, pairing, cut bags, bad input."""

import numpy as np
import pytest

from learned_control import topics
from learned_control.data.bags import BagWriter, bag_to_episodes, typestore, write_bag
from learned_control.data.episodes import Episode
from learned_control.errors import DatasetError
from learned_control.tasks import get_task


def _episodes(rng: np.random.Generator, lengths=(5, 3), obs_dim=4, act_dim=1, expert=False):
    eps = []
    for i, steps in enumerate(lengths):
        acts = rng.normal(size=(steps, act_dim))
        eps.append(Episode(observations=rng.normal(size=(steps + 1, obs_dim)), actions=acts,
                           rewards=rng.normal(size=steps), terminations=np.zeros(steps, bool),
                           truncations=np.zeros(steps, bool), seed=10 + i,
                           expert_actions=acts + 1.0 if expert else None))
    return eps


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_round_trip(tmp_path, storage):
    eps = _episodes(np.random.default_rng(0), expert=True)
    write_bag(tmp_path / "bag", eps, storage=storage)
    back = bag_to_episodes(tmp_path / "bag", max_episode_steps=5)
    assert len(back) == 2
    for a, b in zip(eps, back):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.expert_actions, b.expert_actions)
        assert a.seed == b.seed
    # length 5 == time limit: truncated; length 3: terminated
    assert back[0].truncations[-1] and not back[0].terminations.any()
    assert back[1].terminations[-1] and not back[1].truncations.any()


def test_task_time_limit_and_obs_check(tmp_path):
    task = get_task("InvertedPendulum-v5")
    eps = _episodes(np.random.default_rng(1), obs_dim=task.obs_dim)
    write_bag(tmp_path / "bag", eps, labels=task.labels)
    back = bag_to_episodes(tmp_path / "bag", task=task)  # limit 1000: both terminated
    assert all(ep.terminations[-1] for ep in back)
    with pytest.raises(DatasetError, match="size 4; task Reacher-v5 needs 10"):
        bag_to_episodes(tmp_path / "bag", task=get_task("Reacher-v5"))


def test_episode_cut_before_summary_is_dropped(tmp_path):
    eps = _episodes(np.random.default_rng(2), lengths=(4,))
    store = typestore()
    with BagWriter(tmp_path / "bag") as bag:
        write = bag.write
        for t, ep_obs in enumerate(eps[0].observations[:-1]):
            write(topics.OBSERVATION, t + 1, store.types["std_msgs/msg/Float64MultiArray"](
                layout=store.types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
                data=ep_obs))
    with pytest.raises(DatasetError, match="no complete episode"):
        bag_to_episodes(tmp_path / "bag")


def test_missing_messages_are_reported(tmp_path):
    eps = _episodes(np.random.default_rng(3), lengths=(3,))
    eps_short = [Episode(eps[0].observations[:3], eps[0].actions[:2], eps[0].rewards[:2],
                         eps[0].terminations[:2], eps[0].truncations[:2])]
    write_bag(tmp_path / "bag", eps_short)
    # rewrite a bag whose summary claims more steps than recorded
    from rosbags.rosbag2 import Reader
    with Reader(tmp_path / "bag") as reader:
        raws = [(c.topic, ts, raw) for c, ts, raw in reader.messages()]
    store = typestore()
    with BagWriter(tmp_path / "bad") as bag:
        for topic, ts, raw in raws:
            if topic == topics.EPISODE:
                msg = store.deserialize_cdr(raw, "std_msgs/msg/Float64MultiArray")
                msg.data = np.concatenate([msg.data[:2], [7.0], msg.data[3:]])
                bag.write(topic, ts, msg)
            else:
                bag.write_raw(topic, ts, raw)
    with pytest.raises(DatasetError, match="2 'observation' messages for 7 steps"):
        bag_to_episodes(tmp_path / "bad")


def test_refuses_existing_path_and_bad_storage(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(DatasetError, match="already exists"):
        BagWriter(tmp_path / "bag")
    with pytest.raises(DatasetError, match="not one of"):
        BagWriter(tmp_path / "new", storage="rosbag1")
    with pytest.raises(DatasetError, match="no bag at"):
        bag_to_episodes(tmp_path / "missing")
