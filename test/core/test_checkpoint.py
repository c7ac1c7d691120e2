"""Checkpoints: our format round trip, the seed-format saved dict, and clear errors."""

import numpy as np
import pytest
import torch
from torch import nn

from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.errors import CheckpointError
from learned_control.models.policies import MLPPolicy


def _trained_like_policy() -> MLPPolicy:
    torch.manual_seed(0)
    policy = MLPPolicy(5, 2, hid_size=16, num_layers=2, activation="tanh",
                       action_low=[-2, -2], action_high=[2, 2])
    policy.fit_normalizers(torch.randn(100, 5) * 3 + 1, torch.randn(100, 2) * 0.5)
    return policy


def test_our_format_round_trip(tmp_path):
    policy = _trained_like_policy()
    path = save_checkpoint(tmp_path / "sub" / "policy.pt", policy, "Pusher-v5", {"epochs": 7})
    assert [p.name for p in path.parent.iterdir()] == ["policy.pt"]  # no temporary file left
    ckpt = load_checkpoint(path)
    obs = np.random.default_rng(0).normal(size=(9, 5))
    np.testing.assert_array_equal(ckpt.model.act(obs), policy.act(obs))
    assert ckpt.task == "Pusher-v5" and ckpt.metadata["epochs"] == 7
    assert ckpt.model.get_config() == policy.get_config()
    ckpt.check_fits(5, 2, "Pusher-v5")
    with pytest.raises(CheckpointError, match="size 5.*gives 4"):
        ckpt.check_fits(4, 2)
    with pytest.raises(CheckpointError, match="'Pusher-v5', not 'Reacher-v5'"):
        ckpt.check_fits(5, 2, "Reacher-v5")


class _PlainNet(nn.Module):
    """A seed-format ``net``: a ReLU MLP with its own attribute names."""

    def __init__(self, n_in, n_out, hid):
        super().__init__()
        self.fc_in = nn.Linear(n_in, hid)
        self.hidden_block = nn.Linear(hid, hid)
        self.head = nn.Linear(hid, n_out)

    def forward(self, x):
        return self.head(torch.relu(self.hidden_block(torch.relu(self.fc_in(x)))))


@pytest.mark.parametrize("as_numpy", [False, True])
def test_seed_format_loads_with_any_layer_names(tmp_path, as_numpy):
    torch.manual_seed(1)
    net = _PlainNet(23, 7, 64)
    stats = {"X_mean": torch.randn(23), "X_std": torch.rand(23) + 0.5,
             "Y_mean": torch.randn(7), "Y_std": torch.rand(7) + 0.5}
    saved = {k: v.numpy() if as_numpy else v for k, v in stats.items()}
    torch.save({"net": net.state_dict(), "hid_size": 64, "num_layers": 2, **saved},
               tmp_path / "seed_format.pt")
    ckpt = load_checkpoint(tmp_path / "seed_format.pt", action_low=[-2] * 7, action_high=[2] * 7)
    obs = np.random.default_rng(1).normal(size=(4, 23)).astype(np.float32)
    with torch.no_grad():
        x = (torch.as_tensor(obs) - stats["X_mean"]) / stats["X_std"]
        expected = (net(x) * stats["Y_std"] + stats["Y_mean"]).clamp(-2, 2).numpy()
    np.testing.assert_allclose(ckpt.model.act(obs), expected, rtol=1e-5, atol=1e-5)
    assert ckpt.task is None


def test_seed_format_with_wrong_chain_is_refused(tmp_path):
    net = _PlainNet(23, 7, 32)  # says hid_size 64 below
    torch.save({"net": net.state_dict(), "hid_size": 64, "num_layers": 2,
                "X_mean": torch.zeros(23), "X_std": torch.ones(23),
                "Y_mean": torch.zeros(7), "Y_std": torch.ones(7)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not form the chain 23 -> 64 x 2 -> 7"):
        load_checkpoint(tmp_path / "bad.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file at .*nowhere.pt"):
        load_checkpoint(tmp_path / "nowhere.pt")


def test_truncated_file(tmp_path):
    path = save_checkpoint(tmp_path / "policy.pt", _trained_like_policy())
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt.*not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")


def test_corrupt_file(tmp_path):
    (tmp_path / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="noise.pt.*not a readable checkpoint"):
        load_checkpoint(tmp_path / "noise.pt")


def test_foreign_dict_and_pickled_object_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a learned_control checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"net": _PlainNet(2, 1, 4)}, tmp_path / "object.pt")  # a whole pickled module
    with pytest.raises(CheckpointError, match="unsafe to load"):
        load_checkpoint(tmp_path / "object.pt")
