"""SB3 experts: tiny training runs, and loading zips without unpickling anything."""

import pickle

import cloudpickle
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC

from learned_control.actors import (
    NoisyActor,
    RandomActor,
    detect_algorithm,
    load_actor,
    load_sb3_expert,
)
from learned_control.errors import CheckpointError, ConfigError
from learned_control.tasks import get_task
from learned_control.training.experts import train_expert

TASK = get_task("InvertedPendulum-v5")
OBS = np.random.default_rng(0).normal(scale=0.1, size=(6, 4))


class UnpickleCalledError(AssertionError):
    pass


@pytest.fixture
def no_unpickling(monkeypatch):
    """Make every cloudpickle/pickle ``loads`` raise, so any unpickling fails the test."""
    def refuse(*args, **kwargs):
        raise UnpickleCalledError("an SB3 entry was unpickled")

    monkeypatch.setattr(cloudpickle, "loads", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    """Tiny PPO, SAC (with a serialized policy_kwargs), TD3 and TQC zips trained here."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("experts")
    models = {
        "ppo": PPO("MlpPolicy", TASK.make_env(), n_steps=64, batch_size=32, n_epochs=1, seed=0),
        "sac": SAC("MlpPolicy", TASK.make_env(), learning_starts=16, batch_size=16, seed=0,
                   policy_kwargs={"net_arch": [32, 32], "activation_fn": torch.nn.Tanh}),
        "td3": train_expert(TASK, "td3", steps=32, seed=0, progress=False),
        "tqc": train_expert(TASK, "tqc", steps=32, seed=0, progress=False),
    }
    models["ppo"].learn(64)
    models["sac"].learn(32)
    paths = {}
    for name, model in models.items():
        paths[name] = folder / f"{name}.zip"
        model.save(paths[name])
    return models, paths


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3", "tqc"])
def test_loads_without_unpickling_and_acts_like_the_original(zips, algo, no_unpickling):
    models, paths = zips
    actor = load_sb3_expert(paths[algo], TASK)
    assert actor.algo == algo
    expected, _ = models[algo].predict(OBS.astype(np.float32), deterministic=True)
    np.testing.assert_allclose(actor.act(OBS), expected, rtol=1e-6)
    assert actor.act(OBS[0]).shape == (1,)


def test_the_spy_catches_plain_sb3_loading(zips, no_unpickling):
    with pytest.raises(UnpickleCalledError):
        PPO.load(zips[1]["ppo"])  # what load_sb3_expert avoids


def test_serialized_policy_kwargs_are_rebuilt(zips, no_unpickling):
    actor = load_sb3_expert(zips[1]["sac"], TASK, algo="sac")
    layers = [m for m in actor.model.policy.actor.latent_pi if isinstance(m, torch.nn.Tanh)]
    assert len(layers) == 2


def test_algorithm_detection_and_explicit_override(zips):
    import json
    import zipfile

    for algo, path in zips[1].items():
        assert detect_algorithm(json.loads(zipfile.ZipFile(path).read("data"))) == algo
    with pytest.raises(ConfigError, match="'a2c'"):
        load_sb3_expert(zips[1]["ppo"], TASK, algo="a2c")


def test_trained_ppo_expert_saves_and_reloads(tmp_path, no_unpickling):
    model = train_expert(TASK, "ppo", steps=64, seed=0, progress=False)
    assert model.num_timesteps >= 64
    model.save(tmp_path / "expert.zip")
    actor = load_actor(tmp_path / "expert.zip", TASK)
    np.testing.assert_allclose(actor.act(OBS), model.predict(OBS.astype(np.float32),
                                                            deterministic=True)[0], rtol=1e-6)


def test_errors_name_the_file_and_shapes(zips, tmp_path):
    with pytest.raises(CheckpointError, match="observation space has shape \\(4,\\); task "
                                              "Pusher-v5 has \\(23,\\)"):
        load_sb3_expert(zips[1]["ppo"], get_task("Pusher-v5"))
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="fake.zip.*not a stable-baselines3 zip"):
        load_sb3_expert(tmp_path / "fake.zip", TASK)
    with pytest.raises(CheckpointError, match="no SB3 model file"):
        load_sb3_expert(tmp_path / "missing.zip", TASK)
    with pytest.raises(ConfigError, match="steps=0"):
        train_expert(TASK, "ppo", steps=0)


def test_noisy_and_random_actors_stay_in_bounds():
    class Zero:
        def act(self, obs):
            return np.zeros(1)

    low, high = np.array([-3.0]), np.array([3.0])
    noisy = NoisyActor(Zero(), low, high, noise_std=2.0, seed=0)
    actions = np.array([noisy.act(np.zeros(4)) for _ in range(200)])
    assert actions.min() == -3.0 and actions.max() == 3.0 and actions.std() > 1.0
    rand = RandomActor(low, high, seed=0).act(np.zeros((50, 4)))
    assert rand.shape == (50, 1) and np.all((rand >= -3) & (rand <= 3))
    with pytest.raises(ConfigError, match="noise_std=-1"):
        NoisyActor(Zero(), low, high, noise_std=-1)


def test_a_checkpointed_run_resumes_with_its_replay_buffer_and_settings(tmp_path, no_unpickling):
    from learned_control.training.experts import read_progress

    hyper = {"learning_starts": 40, "batch_size": 16, "train_freq": 2, "gamma": 0.9,
             "policy_kwargs": {"net_arch": [16, 16]}}
    run = tmp_path / "run"
    first = train_expert(TASK, "sac", steps=120, seed=0, progress=False, hyperparams=hyper,
                         run_dir=run, checkpoint_every=50, eval_episodes=1)
    assert [r["step"] for r in read_progress(run)] == [50, 100, 120]
    assert (run / "learning_curve.png").is_file()
    saved_obs = first.replay_buffer.observations[:120].copy()
    with pytest.raises(ConfigError, match="holds a sac run"):
        train_expert(TASK, "td3", steps=200, run_dir=run)
    resumed = train_expert(TASK, steps=200, seed=0, progress=False, run_dir=run,
                           checkpoint_every=50, eval_episodes=1)  # settings from the run
    assert resumed.num_timesteps == 200 and resumed.gamma == 0.9 and resumed.batch_size == 16
    assert resumed.train_freq.frequency == 2
    assert resumed.policy.actor.latent_pi[0].out_features == 16
    np.testing.assert_array_equal(resumed.replay_buffer.observations[:120], saved_obs)
    assert resumed.replay_buffer.pos == 200
    assert [r["step"] for r in read_progress(run)] == [50, 100, 120, 150, 200]
    with pytest.raises(ConfigError, match="hyperparameters"):
        train_expert(TASK, "sac", steps=10, hyperparams={"no_such_option": 1})
