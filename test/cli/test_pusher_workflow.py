"""The Pusher behavior-cloning workflow end to end with a scripted expert and small budgets:
collect under Minari's public id -> minari.load_dataset finds the local copy -> train-bc ->
evaluation beats random -> export to the seed's saved-dict format -> load it back (ours and a
plain torch module of the seed's layout give the same actions)."""

import re

import minari
import numpy as np
import pytest
import torch
from scripted_experts import PusherScripted
from torch import nn

from learned_control.actors import RandomActor
from learned_control.checkpoint import export_seed_format, load_checkpoint
from learned_control.cli import main
from learned_control.errors import CheckpointError, DatasetError
from learned_control.evaluation import evaluate
from learned_control.models.policies import MLPPolicy
from learned_control.tasks import get_task
from learned_control.training.experts import collect_dataset

TASK = get_task("Pusher-v5")
DATASET = "mujoco/pusher/expert-v0"


def _value(out: str, key: str) -> str:
    match = re.search(rf"^{key}: (\S+)", out, re.MULTILINE)
    assert match, f"no '{key}:' line in output:\n{out}"
    return match.group(1)


class SeedNet(nn.Module):
    """The seed's network layout (hidden ReLU layers, then ``out``), written plainly."""

    def __init__(self, input_dim, output_dim, hid_size, num_layers):
        super().__init__()
        sizes = [input_dim] + [hid_size] * num_layers
        self.hidden = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(sizes[-1], output_dim)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


def test_pusher_workflow_with_a_scripted_expert(tmp_path, capsys):
    env = TASK.make_env()
    expert = PusherScripted(env)
    collect_dataset(expert, TASK, DATASET, episodes=30, seed=0, algorithm_name="scripted",
                    progress=False)

    dataset = minari.load_dataset(DATASET)  # what a user's script calls, no download
    assert (dataset.total_episodes, dataset.total_steps) == (30, 3000)
    assert dataset.spec.env_spec.id == "Pusher-v5"
    assert dataset.spec.env_spec.max_episode_steps == 100
    assert dataset.observation_space.shape == (23,) and dataset.action_space.shape == (7,)
    np.testing.assert_array_equal(dataset.action_space.low, -2.0)
    meta = dataset.storage.metadata
    assert meta["locally_made"] is True and "Locally made" in meta["description"]
    assert meta["algorithm_name"] == "scripted" and meta["public_dataset"]["total_steps"] == 500000
    assert dataset.recover_environment().spec.id == "Pusher-v5"
    assert {len(ep.actions) for ep in dataset.iterate_episodes()} == {100}

    seed_file = tmp_path / "seed_policy.pt"
    assert main(["train-bc", "--dataset", DATASET, "--task", "Pusher-v5", "--epochs", "60",
                 "--hid-size", "128", "--num-layers", "2", "--batch-size", "64",
                 "--export-seed-format", str(seed_file), "--runs-dir", str(tmp_path / "runs"),
                 "--seed", "0", "--torch-threads", "1"]) == 0
    out = capsys.readouterr().out
    ours = load_checkpoint(_value(out, "policy")).model
    assert _value(out, "seed-format policy") == str(seed_file)

    episodes, seed = 10, 1000  # seeds not in the dataset
    returns = {name: evaluate(actor, env, episodes, seed).mean for name, actor in (
        ("expert", expert), ("bc", ours),
        ("random", RandomActor(TASK.action_low, TASK.action_high, seed=0)))}
    score = 100 * (returns["bc"] - returns["random"]) / (returns["expert"] - returns["random"])
    print(returns, f"normalized {score:.1f}")
    assert returns["expert"] > returns["random"] + 50  # about -40 against -150
    assert score > 80, returns

    exported = load_checkpoint(seed_file, action_low=TASK.action_low,
                               action_high=TASK.action_high).model
    raw = torch.load(seed_file, weights_only=True)
    assert set(raw) == {"net", "hid_size", "num_layers", "X_mean", "X_std", "Y_mean", "Y_std"}
    plain = SeedNet(23, 7, raw["hid_size"], raw["num_layers"])
    plain.load_state_dict(raw["net"])  # strict: the seed's key names
    obs = np.concatenate([ep.observations[:-1] for ep in dataset.iterate_episodes()])
    np.testing.assert_allclose(exported.act(obs), ours.act(obs), atol=1e-6)
    with torch.no_grad():
        x = (torch.as_tensor(obs, dtype=torch.float32) - raw["X_mean"]) / raw["X_std"]
        by_seed = (plain(x) * raw["Y_std"] + raw["Y_mean"]).numpy()
    np.testing.assert_allclose(np.clip(by_seed, -2, 2), ours.act(obs), atol=1e-5)


def test_stand_in_refuses_another_env_and_export_another_class(tmp_path):
    reacher = get_task("Reacher-v5")
    with pytest.raises(DatasetError, match="recorded in Pusher-v5 with max_episode_steps=100"):
        collect_dataset(RandomActor(reacher.action_low, reacher.action_high), reacher, DATASET,
                        episodes=1, progress=False)
    assert DATASET not in minari.list_local_datasets()
    with pytest.raises(CheckpointError, match="with tanh activations"):
        export_seed_format(MLPPolicy(23, 7, activation="tanh"), tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
