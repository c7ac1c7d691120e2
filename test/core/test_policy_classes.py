"""Policy classes: shapes, likelihoods, checkpoints, seeded sampling, and a bimodal toy."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.errors import ConfigError
from learned_control.models.policy_classes import (POLICY_CLASSES, PRESETS, GenerativePolicy,
                                                   make_policy)
from learned_control.training.bc import BCConfig, loss_figure, train_bc

OBS_DIM, ACT_DIM = 3, 2
SMALL = {"hid_size": 32, "num_layers": 2}
NAMES = sorted(POLICY_CLASSES)
GENERATIVE = [n for n in NAMES if n != "mse"]


def _policy(name: str, **kwargs):
    torch.manual_seed(0)
    extra = {} if name == "mse" else {"seed": 3}
    if name == "gaussian":
        extra["deterministic"] = False
    return make_policy(name, OBS_DIM, ACT_DIM, [-1.0, -2.0], [1.0, 2.0], **SMALL, **extra, **kwargs)


def _fitted(name: str, **kwargs):
    policy = _policy(name, **kwargs)
    rng = np.random.default_rng(0)
    policy.fit_normalizers(rng.normal(size=(64, OBS_DIM)), rng.uniform(-1, 1, size=(64, ACT_DIM)))
    return policy


@pytest.mark.parametrize("name", NAMES)
def test_act_single_and_batched(name):
    policy = _fitted(name)
    obs = np.random.default_rng(1).normal(size=(5, OBS_DIM))
    single, batch = policy.act(obs[0]), policy.act(obs)
    assert single.shape == (ACT_DIM,) and batch.shape == (5, ACT_DIM)
    assert np.all(batch >= [-1.0, -2.0]) and np.all(batch <= [1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(3,\)"):
        policy.act(np.zeros(OBS_DIM + 1))


@pytest.mark.parametrize("name", GENERATIVE)
def test_seeded_sampling_reproducible(name):
    policy = _fitted(name)
    obs = np.random.default_rng(2).normal(size=(8, OBS_DIM))
    policy.reset(seed=11)
    first = policy.act(obs)
    second = policy.act(obs)
    policy.reset(seed=11)
    np.testing.assert_array_equal(policy.act(obs), first)
    assert not np.array_equal(first, second)  # the generator moves on between calls


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, tmp_path):
    policy = _fitted(name)
    path = save_checkpoint(tmp_path / f"{name}.pt", policy, task="toy")
    loaded = load_checkpoint(path).model
    assert type(loaded) is type(policy) and loaded.get_config() == policy.get_config()
    obs = np.random.default_rng(3).normal(size=(6, OBS_DIM))
    for p in (policy, loaded):
        p.reset(seed=5) if isinstance(p, GenerativePolicy) else p.reset()
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))


@pytest.mark.parametrize("name", ["gaussian", "mixture", "cvae"])
def test_distribution_shapes(name):
    policy = _fitted(name)
    obs_n = torch.randn(7, OBS_DIM)
    dist = policy.prior(obs_n) if name == "cvae" else policy.distribution(obs_n)
    event = (policy.latent_dim,) if name == "cvae" else (ACT_DIM,)
    assert dist.batch_shape == (7,) and dist.event_shape == event
    samples = dist.sample((4,))
    assert samples.shape == (4, 7, *event)
    assert dist.log_prob(samples).shape == (4, 7)


@pytest.mark.parametrize("name", ["discrete", "diffusion"])
def test_loss_is_finite_scalar(name):
    policy = _fitted(name)
    loss, metrics = policy.loss(torch.randn(9, OBS_DIM), torch.randn(9, ACT_DIM))
    assert loss.shape == () and torch.isfinite(loss)
    assert all(not v.requires_grad for v in metrics.values())


def test_action_chunks_execute_first_k():
    policy = _fitted("mixture", chunk_size=4, execute_steps=2)
    obs = np.zeros((1, OBS_DIM))
    loss, _ = policy.loss(torch.randn(5, OBS_DIM), torch.randn(5, 4, ACT_DIM))
    assert torch.isfinite(loss)
    policy.reset(seed=0)
    with torch.no_grad():
        chunk = policy.sample_chunk(policy.obs_normalizer.normalize(torch.zeros(1, OBS_DIM)))
    policy.reset(seed=0)
    first, second = policy.act(obs), policy.act(obs)
    expected = policy.act_normalizer.denormalize(chunk.reshape(1, 4, ACT_DIM)).clamp(
        policy.action_low, policy.action_high).numpy()
    np.testing.assert_allclose(first, expected[:, 0], rtol=1e-5)
    np.testing.assert_allclose(second, expected[:, 1], rtol=1e-5)
    third = policy.act(obs)  # a fresh chunk
    assert not np.allclose(third, expected[:, 2])


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="num_bins=10"):
        make_policy("discrete", 2, 1, num_bins=10)
    with pytest.raises(ConfigError, match="execute_steps=3"):
        make_policy("mixture", 2, 1, chunk_size=2, execute_steps=3)
    with pytest.raises(ConfigError, match="policy='bogus'"):
        make_policy("bogus", 2, 1)


def test_diffusion_uses_diffusers_schedule():
    from diffusers import DDPMScheduler

    policy = _fitted("diffusion")
    reference = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
    x, noise, t = torch.randn(4, ACT_DIM), torch.randn(4, ACT_DIM), torch.tensor([0, 10, 50, 99])
    abar = policy.alphas_cumprod[t][:, None]
    torch.testing.assert_close(abar.sqrt() * x + (1 - abar).sqrt() * noise,
                               reference.add_noise(x, noise, t))
    assert len(policy.sampler.timesteps) == policy.inference_steps == 10
    sample = torch.randn(4, ACT_DIM)
    for i, t in enumerate(policy.sampler.timesteps):
        eps = torch.randn(4, ACT_DIM)
        expected = policy.sampler.step(eps, t, sample).prev_sample
        torch.testing.assert_close(policy.ddim_step(i, eps, sample), expected)
        sample = expected


BIMODAL_BUDGET = {"mse": 30, "gaussian": 30, "mixture": 30, "cvae": 60, "discrete": 30,
                  "diffusion": 80}


@pytest.mark.parametrize("name", NAMES)
def test_bimodal_toy(name):
    """Actions +1 or -1 for the same state: generative classes keep both modes, mse averages."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(2000, 1))
    act = rng.choice([-1.0, 1.0], size=(2000, 1))
    extra = {} if name == "mse" else {"seed": 0}
    policy = make_policy(name, 1, 1, [-2.0], [2.0], hid_size=64, num_layers=2, **extra)
    train_bc(policy, obs, act, BCConfig(epochs=BIMODAL_BUDGET[name], batch_size=128, lr=2e-3,
                                        val_fraction=0.0), progress=False)
    samples = policy.act(rng.uniform(-1, 1, size=(500, 1)))[:, 0]
    high, low = np.mean(np.abs(samples - 1) < 0.3), np.mean(np.abs(samples + 1) < 0.3)
    if name in ("mse", "gaussian"):  # the mean of the two modes
        assert np.all(np.abs(samples) < 0.3), samples[np.abs(samples) >= 0.3][:5]
    else:
        assert high >= 0.3 and low >= 0.3, (high, low)


@pytest.mark.parametrize("name", NAMES)
def test_every_class_resets_with_an_optional_seed(name):
    """One signature, ``reset(seed=None)``, on every class; a seed reproduces the sampling (a
    deterministic class acts the same either way), no seed lets the sampling move on."""
    signature = inspect.signature(POLICY_CLASSES[name].reset)
    assert list(signature.parameters) == ["self", "seed"]
    assert signature.parameters["seed"].default is None
    policy = _fitted(name)
    obs = np.random.default_rng(4).normal(size=(8, OBS_DIM))
    policy.reset(seed=7)
    first = policy.act(obs)
    policy.reset()
    again = policy.act(obs)
    policy.reset(seed=7)
    np.testing.assert_array_equal(policy.act(obs), first)
    assert np.array_equal(again, first) == (name == "mse")


def test_bench_and_cli_read_one_preset_table():
    """``bench/multimodal.py`` and ``train-bc --preset`` import the table, neither copies it."""
    from learned_control.cli import train_bc as cli

    path = Path(__file__).parents[2] / "bench" / "multimodal.py"
    spec = importlib.util.spec_from_file_location("bench_multimodal", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.PRESET is PRESETS["multimodal"] and cli.PRESETS is PRESETS
    assert set(bench.CLASSES) == set(POLICY_CLASSES) == set(PRESETS["multimodal"])


@pytest.mark.parametrize("name", ["mixture", "mse"])
def test_loss_curve_shows_negative_losses(name):
    """The mixture's NLL on nearly deterministic targets goes below 0: its curve is drawn on a
    linear axis whose limits hold every loss; positive losses (mse) keep a log axis."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(512, OBS_DIM))
    act = np.tanh(obs[:, :ACT_DIM]) * 0.5
    policy = _policy(name)
    result = train_bc(policy, obs, act, BCConfig(epochs=15, batch_size=32), progress=False)
    losses = result.train_losses + result.val_losses
    fig = loss_figure(result)
    ax = fig.axes[0]
    assert (min(losses) < 0) == (name == "mixture"), losses
    assert ax.get_yscale() == ("linear" if name == "mixture" else "log")
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["train"].get_ydata(), result.train_losses)
    np.testing.assert_array_equal(lines["validation"].get_ydata(), result.val_losses)
    low, high = ax.get_ylim()
    assert low <= min(losses) and max(losses) <= high
    plt.close(fig)
