"""The learning loops on a robot's own topics: the bridge as a ros2_control driver in realtime,
the controller in robot mode, the recorder recording only the spec's topics, the learner
converting them with the spec; the bridge's episode summaries only report the returns."""

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from learned_control.data.robot_bags import convert_bag
from learned_control.errors import ConfigError
from learned_control.ros.dagger_loop import run_dagger_loop
from learned_control.ros.mbrl_loop import run_mbrl_loop
from learned_control.specs import default_specs, dump_specs, load_specs
from learned_control.tasks import get_task

pytestmark = pytest.mark.ros

TASK = get_task("InvertedPendulum-v5")
ROBOT_TOPICS = {"/joint_states", "/effort_controller/commands"}


def _spec_file(tmp_path) -> str:
    path = tmp_path / "robot.yaml"
    path.write_text(dump_specs(default_specs(TASK.name)))
    return str(path)


def _check_robot_bags(results, spec_file) -> None:
    """Every iteration's bag holds the robot's topics only and converts (episodes split at the
    driver's reset pauses) into as many episodes as the bridge reported."""
    for result in results[1:] if results[0].bag.endswith("random") else results:
        with Reader(result.bag) as reader:
            assert {c.topic for c in reader.connections} == ROBOT_TOPICS
        conversion = convert_bag(result.bag, TASK, load_specs(spec_file), task_rewards=True)
        assert conversion.boundaries == "gaps between commands"
        assert len(conversion.episodes) == len(result.episodes.lengths), conversion.notes


@pytest.mark.slow
def test_dagger_loop_on_the_robots_topics_in_realtime_reaches_its_lockstep_return(
        graph, tmp_path, pendulum_policy):
    """The expert (the fixtures' BC pendulum policy) drives round 0 in realtime on the driver;
    the learner trains on the converted bags with the expert relabelling every observation, and
    the policy of round 2 reaches the lockstep loop's return (1000, test_dagger_loop) within
    10%."""
    spec_file = _spec_file(tmp_path)
    out = tmp_path / "dagger"
    results = run_dagger_loop(TASK.name, str(pendulum_policy), iterations=2,
                              episodes_per_iteration=1, seed=0, out_dir=out,
                              learner={"epochs": 30}, timeout=300, domain_id=graph.domain,
                              spec_file=spec_file, mode="realtime")
    assert [r.model.split("@")[1] for r in results] == [pendulum_policy.name, "bc-0001.pt",
                                                        "bc-0002.pt"]
    expert_run, first, second = (r.episodes for r in results)
    assert expert_run.lengths == [1000]
    # the converted bag: the steps the controller answered (a realtime episode may lose its
    # first ones to the driver's timeout action)
    assert 990 <= results[1].trained_on <= 1000
    assert results[1].trained_on < results[2].trained_on <= 1000 + sum(first.lengths)
    assert second.returns[0] >= 0.9 * 1000.0, (first.returns, second.returns)
    log = (out / "logs" / "controller.log").read_text()
    assert "model_updated: now running MLPPolicy@bc-0002.pt" in log, log[-2000:]
    _check_robot_bags(results, spec_file)


def test_lockstep_robot_rounds_convert_to_the_envs_own_observations(graph, tmp_path):
    """In lockstep each converted robot episode is the env's own: its observations equal an
    offline replay of its actions from the round's reset seeds, every step up to the state where
    the episode ended (the driver shows it during the reset pause), where the task's
    termination function ends it."""
    spec_file = _spec_file(tmp_path)
    results = run_mbrl_loop(TASK.name, iterations=1, episodes_per_iteration=2, seed=0,
                            out_dir=tmp_path / "loop", initial_random_steps=200,
                            learner={"epochs": 5, "members": 2}, timeout=120,
                            domain_id=graph.domain, spec_file=spec_file, mode="lockstep")
    _check_robot_bags(results, spec_file)
    (run,) = results[1:]
    conversion = convert_bag(run.bag, TASK, load_specs(spec_file), lockstep=True,
                             task_rewards=True)
    assert conversion.notes == []
    env = TASK.make_env()
    for k, (episode, length) in enumerate(zip(conversion.episodes, run.episodes.lengths)):
        assert len(episode) == length and episode.terminations[-1]
        obs, _ = env.reset(seed=1000 + k)
        replay = [obs] + [env.step(action)[0] for action in episode.actions]
        np.testing.assert_allclose(episode.observations, replay, rtol=0, atol=1e-9)
    env.close()


def test_realtime_without_a_spec_and_a_bad_spec_are_refused_before_any_node_starts(tmp_path):
    with pytest.raises(ConfigError, match="runs on a robot's topics only; give a spec file"):
        run_mbrl_loop(TASK.name, 1, 1, 0, tmp_path / "a", mode="realtime")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: InvertedPendulum-v5\nobservation: {}\n")
    with pytest.raises(ConfigError):
        run_dagger_loop(TASK.name, "expert.pt", 1, 1, 0, tmp_path / "b", spec_file=bad)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
