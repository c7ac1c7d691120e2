"""MLP and MLPPolicy shapes: any leading shape in, same leading shape out."""

import numpy as np
import pytest
import torch

from learned_control.models.mlp import ACTIVATIONS, MLP
from learned_control.models.policies import MLPPolicy


@pytest.mark.parametrize("lead", [(), (5,), (2, 3, 4)])
@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_mlp_keeps_leading_shape(lead, num_layers):
    net = MLP(6, 2, hid_size=8, num_layers=num_layers)
    assert net(torch.randn(*lead, 6)).shape == (*lead, 2)
    assert len(net.linear_layers()) == num_layers + 1


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_mlp_hidden_activation_and_linear_output(activation):
    net = MLP(3, 1, hid_size=4, num_layers=2, activation=activation)
    kinds = [type(m) for m in net.net]
    assert kinds.count(ACTIVATIONS[activation]) == 2
    assert isinstance(net.net[-1], torch.nn.Linear)  # no output activation


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation='sigmoidish'"):
        MLP(3, 1, activation="sigmoidish")


def test_policy_act_single_and_batched_are_clipped():
    policy = MLPPolicy(4, 2, hid_size=8, action_low=[-1, -1], action_high=[1, 1])
    policy.act_normalizer.set_stats(torch.zeros(2), torch.full((2,), 100.0))  # huge raw actions
    single, batch = policy.act(np.ones(4)), policy.act(np.ones((7, 4)))
    assert single.shape == (2,) and batch.shape == (7, 2)
    assert np.abs(batch).max() <= 1.0
    np.testing.assert_allclose(batch[0], single, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(4,\)"):
        policy.act(np.ones(3))
