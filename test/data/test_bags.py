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


def test_an_episode_that_lost_expert_labels_is_dropped_not_left_unlabelled(tmp_path):
    """A DAgger bag whose recorder missed the first label of episode 0: that episode is dropped
    with the reason, episode 1 keeps its labels (none silently become ``None``)."""
    eps = _episodes(np.random.default_rng(4), lengths=(4, 3), expert=True)
    write_bag(tmp_path / "bag", eps)
    from rosbags.rosbag2 import Reader
    with Reader(tmp_path / "bag") as reader:
        raws = [(c.topic, ts, raw) for c, ts, raw in reader.messages()]
    first_label = next(i for i, (topic, _, _) in enumerate(raws)
                       if topic == topics.EXPERT_COMMAND)
    with BagWriter(tmp_path / "lost") as bag:
        for topic, ts, raw in raws[:first_label] + raws[first_label + 1:]:
            bag.write_raw(topic, ts, raw)
    notes = []
    (kept,) = bag_to_episodes(tmp_path / "lost", notes=notes)
    np.testing.assert_array_equal(kept.expert_actions, eps[1].expert_actions)
    assert len(notes) == 1 and "episode 0: 3 'expert_command' messages for 4 steps" in notes[0]


def test_refuses_existing_path_and_bad_storage(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(DatasetError, match="already exists"):
        BagWriter(tmp_path / "bag")
    with pytest.raises(DatasetError, match="not one of"):
        BagWriter(tmp_path / "new", storage="rosbag1")
    with pytest.raises(DatasetError, match="no bag at"):
        bag_to_episodes(tmp_path / "missing")


KILLED_WRITER = """
import os, signal, sys
import numpy as np
from learned_control.data import bags
sys.path.insert(0, {test_dir!r})
from test_bags import _episodes

write, summaries = bags.BagWriter.write, []
def flushing_write(self, topic, stamp, msg):
    write(self, topic, stamp, msg)
    if topic == "episode":
        summaries.append(stamp)
        if len(summaries) == 2:  # the third episode is written but never flushed
            self.flush()
bags.BagWriter.write = flushing_write
bags.BagWriter.close = lambda self: os.kill(os.getpid(), signal.SIGKILL)
bags.write_bag({bag!r}, _episodes(np.random.default_rng(1), lengths=(4, 6, 5)), {storage!r})
"""


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_of_a_killed_writer_is_reindexed(tmp_path, storage, capsys):
    """SIGKILL after two flushed episodes and one unflushed: the bag has no metadata.yaml;
    reindex (run by bag_to_episodes) recovers exactly the two, an mcap's cut tail dropped."""
    import subprocess
    import sys
    from pathlib import Path

    from learned_control.data.bags import reindex

    bag = tmp_path / "killed"
    script = KILLED_WRITER.format(test_dir=str(Path(__file__).parent), bag=str(bag),
                                  storage=storage)
    assert subprocess.run([sys.executable, "-c", script]).returncode == -9
    assert not (bag / "metadata.yaml").exists()
    if storage == "mcap":  # a chunk record cut short, as a kill in the middle of a write leaves
        (mcap,) = bag.glob("*.mcap")
        with mcap.open("ab") as f:
            f.write(b"\x06" + (500).to_bytes(8, "little") + b"\0" * 100)
    want = _episodes(np.random.default_rng(1), lengths=(4, 6, 5))
    back = bag_to_episodes(bag, max_episode_steps=10)
    assert "reindexed" in capsys.readouterr().err
    assert [len(ep) for ep in back] == [4, 6]
    for a, b in zip(want[:2], back, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
    assert reindex(bag) is None  # metadata.yaml written: nothing more to do
    from rosbags.rosbag2 import Reader
    with Reader(bag) as reader:
        assert {c.topic: c.msgcount for c in reader.connections}["episode"] == 2


def test_reindex_refuses_what_is_not_a_bag(tmp_path):
    from learned_control.data.bags import reindex

    with pytest.raises(DatasetError, match="no bag folder"):
        reindex(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="0 storage files"):
        reindex(tmp_path / "empty")
    (tmp_path / "empty" / "empty.mcap").write_bytes(b"not mcap")
    with pytest.raises(DatasetError, match="not an mcap file"):
        reindex(tmp_path / "empty")
