"""The PointMaze forks as registered tasks: train-bc with --preset from a small fork dataset,
then evaluate, all from the command line; presets resolve per class, explicit flags win."""

import re

import pytest

from learned_control.checkpoint import load_checkpoint
from learned_control.cli import build_parser, main
from learned_control.cli.train_bc import apply_preset
from learned_control.data.minari_io import save_episodes
from learned_control.envs.pointmaze_fork import expert_demos
from learned_control.models.policy_classes import PRESETS
from learned_control.tasks import get_task


def _value(out: str, key: str) -> str:
    match = re.search(rf"^{key}: (\S+)", out, re.MULTILINE)
    assert match, f"no '{key}:' line in output:\n{out}"
    return match.group(1)


@pytest.mark.parametrize("task_name", ["PointMazeFork-v0", "PointMazeForkWide-v0"])
def test_train_bc_and_evaluate_on_a_fork_task(task_name, tmp_path, capsys):
    task = get_task(task_name)
    assert task.has_success and task.obs_dim == 8 and task.act_dim == 2
    env = task.make_env()
    dataset = save_episodes(f"cli-test/{task_name.lower().removesuffix('-v0')}-v0",
                            expert_demos(env, 6, seed=0), env)
    env.close()
    common = ["--task", task_name, "--seed", "0", "--torch-threads", "1"]
    assert main(["train-bc", "--dataset", dataset, "--policy", "mixture", "--preset",
                 "multimodal", "--epochs", "2", "--hid-size", "32", "--num-layers", "1",
                 "--runs-dir", str(tmp_path / "runs"), *common]) == 0
    policy = _value(capsys.readouterr().out, "policy")
    ckpt = load_checkpoint(policy)
    config = ckpt.model.get_config()
    preset = PRESETS["multimodal"]["mixture"]
    assert ckpt.task == task_name and ckpt.resolve_task() is task
    assert (config["chunk_size"], config["execute_steps"]) == (preset.chunk_size,
                                                               preset.execute_steps)
    assert (config["hid_size"], config["num_layers"]) == (32, 1)  # given: not the preset's
    assert ckpt.metadata["bc_config"]["epochs"] == 2
    assert ckpt.metadata["bc_config"]["batch_size"] == preset.batch_size

    assert main(["evaluate", policy, "--episodes", "2", *common]) == 0
    out = capsys.readouterr().out
    assert int(_value(out, "episodes")) == 2
    assert _value(out, "success") != "n/a"  # the fork reports is_success


def _parsed(*argv: str):
    args = build_parser().parse_args(["train-bc", "--dataset", "x/y-v0", *argv])
    return args, apply_preset(args)


@pytest.mark.parametrize("name", sorted(PRESETS["multimodal"]))
def test_preset_sets_every_flag_left_at_its_default(name):
    preset = PRESETS["multimodal"][name]
    args, options = _parsed("--policy", name, "--preset", "multimodal")
    assert options == preset.options
    for flag in ("hid_size", "num_layers", "chunk_size", "execute_steps", "epochs",
                 "batch_size", "lr"):
        assert getattr(args, flag) == getattr(preset, flag), flag
    # a value equal to the flag's default, given on the command line, still wins
    args, _ = _parsed("--policy", name, "--preset", "multimodal", "--hid-size", "64",
                      "--lr", "0.001", "--epochs", "50")
    assert (args.hid_size, args.lr, args.epochs) == (64, 0.001, 50)
    assert args.num_layers == preset.num_layers


def test_without_a_preset_the_defaults_stay():
    args, options = _parsed("--policy", "discrete")
    assert options == {}
    assert (args.hid_size, args.num_layers, args.chunk_size, args.epochs) == (64, 2, 1, 50)


def test_help_names_the_presets(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train-bc", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--preset {multimodal}" in out
    for name, preset in PRESETS["multimodal"].items():
        assert f"{name} {preset.describe()}" in out
