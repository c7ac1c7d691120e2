"""The command line on a task nobody registered: any Gymnasium id with --env-kwargs."""

import json
import re

import pytest

from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.cli import main
from learned_control.tasks import TASKS, get_task
from learned_control.training.bc import mlp_policy_for

TASK = "InvertedDoublePendulum-v5"
KWARGS = '{"reset_noise_scale": 0.05}'


def _value(out: str, key: str) -> str:
    match = re.search(rf"^{key}: (\S+)", out, re.MULTILINE)
    assert match, f"no '{key}:' line in output:\n{out}"
    return match.group(1)


def test_collect_train_evaluate_on_a_derived_task_with_env_kwargs(tmp_path, capsys):
    assert TASK not in TASKS
    task = get_task(TASK, KWARGS)
    untrained = save_checkpoint(tmp_path / "random.pt", mlp_policy_for(task), task)
    common = ["--task", TASK, "--env-kwargs", KWARGS, "--seed", "0", "--torch-threads", "1"]

    assert main(["collect", "--expert", str(untrained), "--dataset-id", "cli-test/idp-v0",
                 "--episodes", "3", "--noise-std", "0.5", *common]) == 0
    assert "dataset: cli-test/idp-v0 (3 episodes" in capsys.readouterr().out

    assert main(["train-bc", "--dataset", "cli-test/idp-v0", "--epochs", "1", "--hid-size", "8",
                 "--num-layers", "1", "--runs-dir", str(tmp_path / "runs"), *common]) == 0
    policy = _value(capsys.readouterr().out, "policy")
    ckpt = load_checkpoint(policy)
    assert ckpt.task == TASK and ckpt.task_layout["env_id"] == TASK
    assert ckpt.task_layout["env_kwargs"] == json.loads(KWARGS)
    assert ckpt.task_layout["obs_labels"] == list(task.labels)
    assert ckpt.resolve_task() is task

    assert main(["evaluate", policy, "--episodes", "2", *common]) == 0
    assert int(_value(capsys.readouterr().out, "episodes")) == 2


def test_unknown_task_is_one_line_and_env_kwargs_must_be_a_json_object(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "p.pt"), "--task", "InvertedDoublePendulum-v9"]) == 2
    # (gymnasium-robotics, imported to look the id up, may print its own notice first)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("learned-control evaluate: error: unknown task 'InvertedDoublePendulum")
    assert "close ids: InvertedDoublePendulum-v5" in err
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "p.pt", "--task", TASK, "--env-kwargs", "[1, 2]"])
    assert exit_.value.code == 2
    assert "expected a JSON object" in capsys.readouterr().err
