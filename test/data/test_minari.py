"""Minari I/O on real local datasets: create-then-load round trip and clear errors."""

import minari
import numpy as np
import pytest

from learned_control.actors import RandomActor
from learned_control.data.episodes import Episode
from learned_control.data.minari_io import (
    load_episodes,
    load_transitions,
    rollout_episodes,
    save_episodes,
)
from learned_control.data.sources import load_transitions as load_source
from learned_control.errors import DatasetError
from learned_control.tasks import get_task

TASK = get_task("InvertedPendulum-v5")


@pytest.fixture
def episodes():
    env = TASK.make_env()
    return rollout_episodes(RandomActor(env.action_space.low, env.action_space.high, seed=0),
                            env, episodes=4, seed=7, progress=False)


def test_rollout_records_final_observation_and_flags(episodes):
    for i, ep in enumerate(episodes):
        assert ep.observations.shape == (len(ep) + 1, 4) and ep.actions.shape == (len(ep), 1)
        assert ep.seed == 7 + i
        assert ep.terminations[-1] or ep.truncations[-1]
        assert not (ep.terminations[:-1].any() or ep.truncations[:-1].any())


def test_create_then_load_round_trip(episodes, minari_datasets_path):
    save_episodes("test/pendulum-random-v0", episodes, TASK.make_env())
    assert (minari_datasets_path / "test" / "pendulum-random-v0").is_dir()
    loaded, env = load_episodes("test/pendulum-random-v0")
    assert env.spec.id == "InvertedPendulum-v5"  # recovered from the dataset
    assert len(loaded) == len(episodes)
    for a, b in zip(loaded, episodes, strict=True):
        np.testing.assert_allclose(a.observations, b.observations, rtol=1e-6)
        np.testing.assert_allclose(a.actions, b.actions, rtol=1e-6)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.terminations, b.terminations)
        np.testing.assert_array_equal(a.truncations, b.truncations)
    flat, _ = load_transitions("test/pendulum-random-v0", TASK)
    assert len(flat) == sum(len(ep) for ep in episodes)
    np.testing.assert_allclose(flat.next_observations[0], episodes[0].observations[1], rtol=1e-6)
    via_source = load_source("test/pendulum-random-v0", TASK)
    np.testing.assert_array_equal(via_source.actions, flat.actions)


def test_size_mismatch_on_load_names_both_shapes(episodes):
    save_episodes("test/pendulum-random-v0", episodes, TASK.make_env())
    with pytest.raises(DatasetError, match="size 4 and actions of size 1; the task needs 23 and 7"):
        load_transitions("test/pendulum-random-v0", get_task("Pusher-v5"))


def test_size_mismatch_on_save_names_both_shapes_and_writes_nothing(episodes):
    wrong = [Episode(np.zeros((3, 5)), np.zeros((2, 1)), np.zeros(2), [False, True], [False] * 2)]
    with pytest.raises(DatasetError, match=r"observations \(5,\) and actions \(1,\).*"
                                           r"\(4,\) and \(1,\)"):
        save_episodes("test/wrong-v0", wrong, TASK.make_env())
    assert "test/wrong-v0" not in minari.list_local_datasets()


def test_unknown_id_says_how_to_list_local_ones():
    with pytest.raises(DatasetError, match="'nobody/nothing-v0'.*minari list local"):
        load_transitions("nobody/nothing-v0")


def test_existing_and_malformed_ids_are_refused_and_data_kept(episodes):
    save_episodes("test/pendulum-random-v0", episodes, TASK.make_env())
    with pytest.raises(DatasetError, match="already exists"):
        save_episodes("test/pendulum-random-v0", episodes[:1], TASK.make_env())
    assert len(load_episodes("test/pendulum-random-v0")[0]) == len(episodes)
    with pytest.raises(DatasetError, match="'no version' is malformed"):
        save_episodes("no version", episodes, TASK.make_env())
    with pytest.raises(DatasetError, match="no episodes"):
        save_episodes("test/empty-v0", [], TASK.make_env())


def test_unknown_source_kind():
    with pytest.raises(DatasetError, match="'csv' is unknown"):
        load_source("x", TASK, kind="csv")
