"""Normalizer round trip, its statistics, and that BC fits it on the training split only."""

import numpy as np
import torch

from learned_control.models.mlp import Normalizer
from learned_control.models.policies import MLPPolicy
from learned_control.training.bc import BCConfig, split_indices, train_bc


def test_round_trip_and_statistics():
    data = torch.randn(500, 3) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([5.0, -2.0, 0.0])
    norm = Normalizer.fit(data)
    np.testing.assert_allclose(norm.mean, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.std, data.std(0, unbiased=False) + 1e-5, rtol=1e-5)
    z = norm.normalize(data)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(norm.denormalize(z), data, rtol=1e-5, atol=1e-5)


def test_constant_column_stays_finite():
    norm = Normalizer.fit(np.ones((10, 2)))
    assert torch.isfinite(norm.normalize(torch.ones(4, 2))).all()


def test_statistics_travel_in_the_state_dict():
    norm = Normalizer.fit(torch.randn(50, 2) + 3)
    other = Normalizer(2)
    other.load_state_dict(norm.state_dict())
    assert torch.equal(other.mean, norm.mean) and torch.equal(other.std, norm.std)


def test_bc_fits_normalizers_on_training_split_only():
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(400, 3)), rng.normal(size=(400, 1))
    config = BCConfig(epochs=1, val_fraction=0.25, seed=3)
    _, val_idx = split_indices(len(obs), config.val_fraction, config.seed)
    obs[val_idx.numpy()] += 1000.0  # validation rows would drag the mean far away
    act[val_idx.numpy()] -= 1000.0
    train = np.setdiff1d(np.arange(len(obs)), val_idx.numpy())
    policy = MLPPolicy(3, 1, hid_size=8)
    train_bc(policy, obs, act, config, progress=False)
    np.testing.assert_allclose(policy.obs_normalizer.mean, obs[train].mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(policy.act_normalizer.mean, act[train].mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(policy.obs_normalizer.std, obs[train].std(0) + 1e-5, rtol=1e-4)
