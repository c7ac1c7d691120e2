"""Smoke matrix over every Gymnasium MuJoCo v5 env and the gymnasium-robotics mazes and Fetch
envs: the task is derived, BC trains on random transitions, evaluate runs an episode, and
export-spec writes a spec whose assembler reproduces the env's observation, or refuses in one
line naming what no robot topic carries. (The lockstep bridge part:
test/ros/test_smoke_lockstep.py.)
"""

from __future__ import annotations

import math

import pytest

from learned_control.actors import RandomActor
from learned_control.cli import main as cli_main
from learned_control.data.episodes import Transitions
from learned_control.data.minari_io import rollout_episodes
from learned_control.evaluation import evaluate
from learned_control.specs import load_specs
from learned_control.tasks import get_task
from learned_control.training.bc import BCConfig, mlp_policy_for, train_bc
from smoke_envs import ENVS, assert_spec_reproduces_observation

pytestmark = pytest.mark.smoke

MAX_STEPS, TRANSITIONS = 50, 200

WRITES = {"HalfCheetah-v5", "Hopper-v5", "InvertedPendulum-v5", "Pusher-v5", "Reacher-v5",
          "Swimmer-v5", "Walker2d-v5"}
REFUSES = {  # env -> a quantity its refusal must name
    "Ant-v5": "cfrc_ext", "Humanoid-v5": "cinert", "HumanoidStandup-v5": "cinert",
    "InvertedDoublePendulum-v5": "qfrc_constraint", "PointMaze_UMaze-v3": "site_xpos",
    "AntMaze_UMaze-v5": "cfrc_ext", "FetchReach-v4": "site_xpos", "FetchPush-v4": "site_xpos",
    "FetchSlide-v4": "site_xpos", "FetchPickAndPlace-v4": "site_xpos",
}


def test_the_matrix_decides_every_env() -> None:
    assert sorted(WRITES | set(REFUSES)) == sorted(ENVS) and not WRITES & set(REFUSES)


@pytest.mark.parametrize("env_id", ENVS)
def test_smoke(env_id: str, tmp_path, capsys) -> None:
    task = get_task(env_id)
    env = task.make_env(max_episode_steps=MAX_STEPS)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (task.obs_dim,) == (len(task.labels),)
    assert env.action_space.shape == (task.act_dim,)
    assert task.dt > 0

    actor = RandomActor(task.action_low, task.action_high, seed=0)
    episodes = []
    while sum(len(ep) for ep in episodes) < TRANSITIONS:
        episodes += rollout_episodes(actor, env, 1, seed=len(episodes), progress=False)
    data = Transitions.from_episodes(episodes)
    policy = mlp_policy_for(task, hid_size=32)
    result = train_bc(policy, data.observations, data.actions,
                      BCConfig(epochs=2, batch_size=64), progress=False)
    assert len(result.train_losses) == 2 and all(map(math.isfinite, result.train_losses))
    assert result.train_size + result.val_size == len(data) >= TRANSITIONS

    run = evaluate(policy, env, episodes=1, seed=0)
    assert 1 <= run.lengths[0] <= MAX_STEPS and math.isfinite(run.returns[0])
    assert (run.successes[0] is None) == (not task.has_success)

    path = tmp_path / "spec.yaml"
    code = cli_main(["export-spec", env_id, "-o", str(path)])
    err = capsys.readouterr().err
    if env_id in WRITES:
        assert code == 0, err
        assert_spec_reproduces_observation(load_specs(path))
    else:
        assert code == 2 and not path.exists()
        lines = [ln for ln in err.splitlines() if ln.startswith("learned-control export-spec")]
        assert len(lines) == 1, err  # one line (gymnasium-robotics may warn beside it)
        assert env_id in lines[0] and "carried by no robot topic" in lines[0]
        assert REFUSES[env_id] in lines[0]
