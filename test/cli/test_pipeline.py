"""The command-line pipeline end to end, tiny budgets: expert -> collect -> train-bc -> evaluate."""

import json
import re

import pytest

from learned_control.actors import load_actor
from learned_control.checkpoint import load_checkpoint
from learned_control.cli import main
from learned_control.evaluation import evaluate
from learned_control.tasks import get_task
from learned_control.models.policy_classes import DiffusionPolicy


def _value(out: str, key: str) -> str:
    match = re.search(rf"^{key}: (\S+)", out, re.MULTILINE)
    assert match, f"no '{key}:' line in output:\n{out}"
    return match.group(1)


def test_expert_collect_train_evaluate(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    common = ["--task", "InvertedPendulum-v5", "--seed", "0", "--torch-threads", "1"]

    assert main(["expert", "--steps", "64", "--eval-episodes", "1", "--runs-dir", runs,
                 *common]) == 0
    expert = _value(capsys.readouterr().out, "expert")
    assert expert.endswith("expert.zip")

    assert main(["collect", "--expert", expert, "--dataset-id", "cli-test/pendulum-v0",
                 "--episodes", "3", "--noise-std", "0.1", *common]) == 0
    out = capsys.readouterr().out
    assert "dataset: cli-test/pendulum-v0 (3 episodes" in out

    assert main(["train-bc", "--dataset", "cli-test/pendulum-v0", "--epochs", "2",
                 "--batch-size", "32", "--hid-size", "16", "--num-layers", "1",
                 "--activation", "tanh", "--val-fraction", "0.2", "--lr", "3e-3",
                 "--runs-dir", runs, *common]) == 0
    out = capsys.readouterr().out
    policy = _value(out, "policy")
    run_dir = _value(out, "run directory")
    ckpt = load_checkpoint(policy)
    assert ckpt.task == "InvertedPendulum-v5" and ckpt.metadata["source"] == "cli-test/pendulum-v0"
    assert ckpt.model.get_config()["hid_size"] == 16 and ckpt.metadata["epochs"] == 2
    assert (tmp_path / "runs").joinpath(run_dir.split("/runs/")[-1], "loss_curve.png").is_file()

    assert main(["train-bc", "--dataset", "cli-test/pendulum-v0", "--policy", "diffusion",
                 "--chunk-size", "4", "--execute-steps", "2", "--epochs", "2", "--hid-size", "16",
                 "--runs-dir", runs, *common]) == 0
    chunked = load_checkpoint(_value(capsys.readouterr().out, "policy")).model
    assert isinstance(chunked, DiffusionPolicy)
    assert (chunked.chunk_size, chunked.execute_steps, chunked.seed) == (4, 2, 0)

    assert main(["collect", "--expert", policy, "--dataset-id", "cli-test/from-bc-v0",
                 "--episodes", "1", *common]) == 0  # our checkpoint as the expert
    assert "dataset: cli-test/from-bc-v0 (1 episodes" in capsys.readouterr().out

    task = get_task("InvertedPendulum-v5")
    for path in (policy, expert):
        assert main(["evaluate", path, "--episodes", "2", "--plot", "--runs-dir", runs,
                     *common]) == 0
        out = capsys.readouterr().out
        assert int(_value(out, "episodes")) == 2
        # what evaluate printed is the evaluation of that file with those seeds, redone here
        again = evaluate(load_actor(path, task), task.make_env(), 2, 0)
        assert float(_value(out, "mean_return")) == pytest.approx(again.mean, abs=1e-4)
        assert float(_value(out, "std_return")) == pytest.approx(again.std, abs=1e-4)
        assert _value(out, "success") == "n/a"  # InvertedPendulum reports no is_success
        assert (tmp_path / "runs").joinpath(_value(out, "run directory").split("/runs/")[-1],
                                           "returns.png").is_file()

    assert main(["dagger", "--expert", policy, "--iterations", "1", "--demo-episodes", "1",
                 "--rollout-episodes", "1", "--validation-episodes", "2", "--eval-episodes", "1",
                 "--epochs", "1", "--runs-dir", runs, *common]) == 0
    out = capsys.readouterr().out
    assert "(returned)" in out
    run_dir = tmp_path / "runs" / _value(out, "run directory").split("/runs/")[-1]
    summary = json.loads((run_dir / "dagger.json").read_text())
    iterations = [r for r in summary["rows"] if r["name"] in ("BC (iter 0)", "DAgger iter 1")]
    assert len(iterations) == 2  # the returned policy is the better one on validation
    assert summary["chosen"] == max(iterations, key=lambda r: r["validation"])["name"]
    assert (run_dir / "dagger.png").is_file()
    assert load_checkpoint(run_dir / "policy.pt").metadata["trainer"] == "dagger"


def test_demo_at_tiny_budget_prints_the_table(tmp_path, capsys):
    assert main(["demo", "--expert-steps", "64", "--collect-episodes", "2", "--epochs", "1",
                 "--eval-episodes", "2", "--runs-dir", str(tmp_path), "--torch-threads", "1",
                 "--no-ros"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert set(rows) == {"expert", "BC", "random"}
    assert "100.0" in rows["expert"] and "n/a" in rows["BC"]
    assert "wall time:" in out
    run_dir = next(tmp_path.glob("demo-*"))
    for name in ("expert.zip", "policy.pt", "loss_curve.png"):
        assert (run_dir / name).is_file()


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["train-bc", "--dataset", "nobody/nothing-v0", "--runs-dir", str(tmp_path)]) == 2
    assert "'nobody/nothing-v0'" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.pt")]) == 2
    assert "no checkpoint file" in capsys.readouterr().err
    assert main(["train-bc", "--dataset", "x/y-v0", "--epochs", "0"]) == 2
    assert "BCConfig.epochs=0" in capsys.readouterr().err
    assert main(["train-bc", "--dataset", "x/y-v0", "--policy", "mse", "--chunk-size", "4"]) == 2
    assert "chunk_size=4 with policy='mse'" in capsys.readouterr().err  # before any data is read


@pytest.mark.parametrize("command", ["expert", "collect", "train-bc", "evaluate", "demo",
                                     "dagger"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--seed" in capsys.readouterr().out
