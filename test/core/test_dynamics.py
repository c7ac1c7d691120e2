"""Dynamics ensembles: shapes, batched forward = per-member forward, checkpoints, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.data.episodes import Transitions
from learned_control.errors import ConfigError, DatasetError
from learned_control.models.dynamics import EnsembleDynamics
from learned_control.training.dynamics import DynamicsTrainConfig, plot_history, train_dynamics

KINDS = [dict(members=5, probabilistic=False), dict(members=5, probabilistic=True),
         dict(members=1, probabilistic=False), dict(members=1, probabilistic=True),
         dict(members=2, probabilistic=True, hidden_sizes=(8, 24))]


def _model(**kw) -> EnsembleDynamics:
    torch.manual_seed(0)
    return EnsembleDynamics(obs_dim=4, act_dim=2, hid_size=16, num_layers=2, **kw)


@pytest.mark.parametrize("kw", KINDS)
def test_predict_shapes(kw):
    model = _model(**kw)
    obs, act = torch.randn(7, 4), torch.randn(7, 2)
    assert model.predict(obs, act).shape == (kw["members"], 7, 4)
    assert model.predict(obs.expand(kw["members"], 7, 4), act.expand(kw["members"], 7, 2),
                         sample=True).shape == (kw["members"], 7, 4)
    mean, logstd = model(obs.expand(kw["members"], 7, 4), act.expand(kw["members"], 7, 2))
    assert mean.shape == (kw["members"], 7, 4)
    assert (logstd is None) == (not kw["probabilistic"])


def test_hidden_sizes_give_the_layer_widths_in_order():
    """The small FetchReach world model, 17 -> 32 -> 64 -> 13: ``hidden_sizes`` replaces
    ``hid_size x num_layers``; bad widths are refused."""
    model = EnsembleDynamics(13, 4, members=1, hid_size=200, num_layers=3, hidden_sizes=(32, 64))
    shapes = [tuple(layer.weight.shape) for layer in (*model.layers, model.head)]
    assert shapes == [(1, 17, 32), (1, 32, 64), (1, 64, 13)]
    assert model.get_config()["hidden_sizes"] == [32, 64]
    with pytest.raises(ConfigError, match=r"hidden_sizes=\[32, 0\]; expected widths >= 1"):
        EnsembleDynamics(13, 4, hidden_sizes=(32, 0))


def test_wrong_member_dim_is_refused():
    with pytest.raises(ConfigError, match=r"\(5, B, d\)"):
        _model(members=5).predict(torch.randn(3, 7, 4), torch.randn(3, 7, 2))


@pytest.mark.parametrize("kw", KINDS[:2])
def test_ensemble_forward_equals_per_member(kw):
    model = _model(**kw)
    obs, act = torch.randn(5, 9, 4), torch.randn(5, 9, 2)
    mean, logstd = model(obs, act)
    for e in range(5):
        h = model.input_normalizer.normalize(torch.cat([obs[e], act[e]], -1))
        for layer in model.layers:
            h = torch.nn.functional.silu(h @ layer.weight[e] + layer.bias[e, 0])
        out = h @ model.head.weight[e] + model.head.bias[e, 0]
        torch.testing.assert_close(mean[e], out[:, :4], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [*KINDS, dict(members=3, num_layers=0, activation="silu"),
                                dict(members=2, num_layers=1, activation="gelu")])
def test_folded_ensemble_predicts_what_the_model_does(kw):
    """The planner's folded snapshot (normalizers folded into the weights) is the same function:
    means, and samples drawn from the same generator state."""
    kw = {"num_layers": 2, "activation": "relu", **kw}
    torch.manual_seed(0)
    model = EnsembleDynamics(obs_dim=4, act_dim=2, hid_size=16, **kw).eval()
    model.set_stats(torch.randn(200, 4) * 3 + 1, torch.randn(200, 2) * 2,
                    torch.randn(200, 4) * 3 + 1.5)  # stats far from (0, 1): folding matters
    obs, act = torch.randn(kw["members"], 9, 4), torch.randn(kw["members"], 9, 2)
    folded = model.folded()
    with torch.no_grad():
        torch.testing.assert_close(folded.predict(obs, act), model.predict(obs, act))
        for sample in (False, True):
            expected = model.predict(obs, act, sample, torch.Generator().manual_seed(3))
            got = folded.predict(obs, act, sample, torch.Generator().manual_seed(3))
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_probabilistic_logstd_within_soft_bounds():
    model = _model(members=2, probabilistic=True)
    with torch.no_grad():
        model.head.bias.fill_(100.0)
    _, high = model(torch.randn(2, 3, 4), torch.randn(2, 3, 2))
    with torch.no_grad():
        model.head.bias.fill_(-100.0)
    _, low = model(torch.randn(2, 3, 4), torch.randn(2, 3, 2))
    assert bool((high <= model.max_logstd + 1e-4).all()) and bool((low >= model.min_logstd - 1e-4).all())


@pytest.mark.parametrize("kw", KINDS)
def test_checkpoint_round_trip(tmp_path, kw):
    model = _model(**kw)
    model.set_stats(torch.randn(50, 4), torch.randn(50, 2), torch.randn(50, 4))
    path = save_checkpoint(tmp_path / "dyn.pt", model, task="InvertedPendulum-v5", metadata={"k": 1})
    ckpt = load_checkpoint(path)
    assert type(ckpt.model) is EnsembleDynamics and ckpt.task == "InvertedPendulum-v5"
    obs, act = torch.randn(6, 4), torch.randn(6, 2)
    torch.testing.assert_close(ckpt.model.predict(obs, act), model.predict(obs, act))


def _linear_data(n: int, seed: int = 0) -> Transitions:
    """Contiguous trajectory of s' = 0.9 s + 0.1 [a, a] (exactly learnable)."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((n + 1, 4))
    act = rng.uniform(-1, 1, (n, 2))
    obs[0] = rng.normal(size=4)
    for t in range(n):
        obs[t + 1] = 0.9 * obs[t] + 0.1 * np.concatenate([act[t], act[t]])
    return Transitions(obs[:-1], act, np.zeros(n), obs[1:], np.zeros(n, bool))


@pytest.mark.parametrize("probabilistic", [False, True])
def test_training_reduces_error_and_restores_best(tmp_path, probabilistic):
    data = _linear_data(1500)
    model = _model(members=3, probabilistic=probabilistic)
    seen = []
    history = train_dynamics(model, data, DynamicsTrainConfig(epochs=15, batch_size=64, patience=3,
                                                              rollout_steps=5),
                             callback=lambda epoch, m: seen.append((epoch, m)))
    assert [e for e, _ in seen] == list(range(len(history.val_one_step_mse)))
    assert history.val_one_step_mse[history.best_epoch] == min(history.val_one_step_mse)
    assert history.val_one_step_mse[history.best_epoch] < 0.1 * history.val_one_step_mse[0]
    assert np.isfinite(history.val_rollout_mse).all()
    # the restored weights are the best epoch's
    n_val = int(len(data) * 0.1)
    with torch.no_grad():
        val = [torch.as_tensor(x[-n_val:], dtype=torch.float32)
               for x in (data.observations, data.actions, data.next_observations)]
        err = float(((model.predict(val[0], val[1]).mean(0) - val[2]) ** 2).mean())
    assert err == pytest.approx(history.val_one_step_mse[history.best_epoch], rel=1e-5)
    assert plot_history(history, tmp_path / "curve.png").stat().st_size > 0


def test_training_refuses_wrong_sizes():
    with pytest.raises(DatasetError):
        train_dynamics(_model(members=1), Transitions(np.zeros((10, 3)), np.zeros((10, 2)),
                                                      np.zeros(10), np.zeros((10, 3)),
                                                      np.zeros(10, bool)))


def test_config_validation_names_field():
    with pytest.raises(ConfigError, match="val_fraction=1.5"):
        DynamicsTrainConfig(val_fraction=1.5)


def test_train_dynamics_cli_from_minari(tmp_path, capsys):
    from learned_control.cli import main
    from learned_control.data.episodes import Episode
    from learned_control.data.minari_io import save_episodes
    from learned_control.tasks import make_env

    env = make_env("InvertedPendulum-v5")
    rng = np.random.default_rng(0)
    episodes = []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        rows = [obs]
        acts = rng.uniform(-1, 1, (8, 1))
        for a in acts:
            rows.append(env.step(a)[0])
        episodes.append(Episode(np.array(rows), acts, np.ones(8), np.zeros(8, bool),
                                np.eye(8, dtype=bool)[-1]))
    save_episodes("dyn-test/pendulum-v0", episodes, env)
    assert main(["train-dynamics", "--dataset", "dyn-test/pendulum-v0", "--task",
                 "InvertedPendulum-v5", "--members", "2", "--hid-size", "8", "--num-layers", "1",
                 "--epochs", "3", "--rollout-steps", "3", "--torch-threads", "1", "--device", "cpu",
                 "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    path = out.split("dynamics: ")[-1].strip()
    ckpt = load_checkpoint(path)
    assert ckpt.task == "InvertedPendulum-v5" and ckpt.model.members == 2
    assert ckpt.metadata["source"] == "dyn-test/pendulum-v0" and ckpt.metadata["transitions"] == 160
    run_dir = ckpt.path.parent
    assert (run_dir / "curves.png").is_file() and any((run_dir / "tensorboard").iterdir())
