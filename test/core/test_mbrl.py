"""The model-based loop's core: the initial random data and the saved curve (no ROS)."""

import json

import pytest

from learned_control.data.bags import bag_to_episodes
from learned_control.errors import ConfigError
from learned_control.tasks import get_task
from learned_control.training.mbrl import random_episodes, save_curve, write_random_bag

TASK = get_task("InvertedPendulum-v5")


def test_random_data_is_whole_episodes_within_the_budget_and_round_trips_through_a_bag(tmp_path):
    """300 steps: whole random episodes (reset seeds 5, 6, ...) filling all but the last one's
    worth of the budget; the bag gives back the same episodes."""
    episodes = random_episodes(TASK, 300, seed=5)
    total = sum(map(len, episodes))
    assert total <= 300 and total > 300 - 50  # random episodes on the pendulum last < 50 steps
    assert [e.seed for e in episodes] == list(range(5, 5 + len(episodes)))
    assert all(e.terminations[-1] for e in episodes)  # whole episodes: the pole fell
    result = write_random_bag(TASK, 300, 5, tmp_path / "random")
    assert result.episodes.lengths == [len(e) for e in episodes]
    back = bag_to_episodes(tmp_path / "random", TASK)
    assert [e.episode_return for e in back] == pytest.approx(result.episodes.returns)
    with pytest.raises(ConfigError, match="shorter than the first random episode"):
        random_episodes(TASK, 1, seed=5)


def test_curve_is_saved_as_json_and_png(tmp_path):
    first = write_random_bag(TASK, 100, 0, tmp_path / "a")
    second = write_random_bag(TASK, 200, 1, tmp_path / "b")
    second.iteration = 1
    json_path, png_path = save_curve([first, second], tmp_path / "out", TASK.name)
    rows = json.loads(json_path.read_text())["iterations"]
    assert [row["iteration"] for row in rows] == [0, 1]
    assert rows[1]["mean"] == pytest.approx(second.episodes.mean)
    assert rows[1]["episodes"]["seeds"] == second.episodes.seeds
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
