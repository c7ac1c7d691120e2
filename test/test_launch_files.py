"""Launch files parse, and every executable, parameter file and parameter they name exists."""

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from learned_control.actors import default_mpc_config
from learned_control.params import PARAMETER_DIR, parameter_file
from learned_control.planning.mpc import PLANNER_PARAMETERS
from learned_control.ros.recorder import RecorderConfig
from learned_control.runtime.bridge import BridgeConfig
from learned_control.runtime.controller import ControllerConfig
from learned_control.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
NODE_EXTRAS = ("autostart", "torch_threads")
DECLARED = {
    "sim_bridge": {f.name for f in dataclasses.fields(BridgeConfig)} | set(NODE_EXTRAS),
    "controller": {f.name for f in dataclasses.fields(ControllerConfig)} | set(NODE_EXTRAS),
    "recorder": {f.name for f in dataclasses.fields(RecorderConfig)},
}


def _console_scripts() -> set[str]:
    text = (ROOT / "setup.py").read_text()
    return set(re.findall(r"[\"'](\w+)\s*=\s*learned_control[\w.]*:main[\"']", text))


def _node_calls(tree: ast.AST):
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) in ("Node", "LifecycleNode"):
            yield {k.arg: k.value for k in call.keywords}


def test_there_is_a_launch_file():
    assert [p.name for p in LAUNCH_FILES] == ["sim.launch.py"]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_names_only_existing_things(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    scripts = _console_scripts()
    nodes = list(_node_calls(tree))
    assert {ast.literal_eval(n["executable"]) for n in nodes} == {"sim_bridge", "controller",
                                                                  "recorder"}
    for node in nodes:
        executable = ast.literal_eval(node["executable"])
        assert executable in scripts, f"{executable} is not a console script in setup.py"
        assert ast.literal_eval(node["name"]) == executable
        for item in node["parameters"].elts:
            if isinstance(item, ast.Dict):
                for key in item.keys:
                    assert ast.literal_eval(key) in DECLARED[executable], (executable, key)
    args = {ast.literal_eval(c.args[0]) for c in ast.walk(tree) if isinstance(c, ast.Call)
            and getattr(c.func, "id", None) == "DeclareLaunchArgument"}
    assert args == {"task", "env_kwargs", "checkpoint", "mode", "record", "actor", "expert"}
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               for a in n.names}
    assert ("learned_control.params", "parameter_file") in imports  # the package's own files


def test_parameter_files_are_package_data_installed_to_share_too():
    """The parameter files ship inside the package (found without the source checkout) and
    setup.py installs them as package data and into share/learned_control/config."""
    import learned_control

    assert PARAMETER_DIR == Path(learned_control.__file__).parent / "config"
    assert {p.stem for p in PARAMETER_DIR.glob("*.yaml")} == set(TASKS) | {"default"}
    setup = (ROOT / "setup.py").read_text()
    assert '"config/*.yaml"' in setup and 'glob(f"src/{PACKAGE}/config/*.yaml")' in setup


@pytest.mark.parametrize("task", [*sorted(TASKS), "Swimmer-v5"])
def test_parameter_file_per_task_declares_only_known_parameters(task):
    """Each registered task's file, and default.yaml for any other id (it names no task)."""
    path = parameter_file(task)
    assert path.name == (f"{task}.yaml" if task in TASKS else "default.yaml")
    params = yaml.safe_load(path.read_text())
    assert set(params) == set(DECLARED)
    for node, section in params.items():
        values = section["ros__parameters"]
        unknown = set(values) - DECLARED[node]
        assert not unknown, f"{path}: {node} declares no parameters {sorted(unknown)}"
        if "task" in values:
            assert values["task"] == task
    # and the values pass the nodes' own validation
    BridgeConfig(**{k: v for k, v in params["sim_bridge"]["ros__parameters"].items()
                    if k not in NODE_EXTRAS})
    ControllerConfig(**{k: v for k, v in params["controller"]["ros__parameters"].items()
                        if k not in NODE_EXTRAS})
    RecorderConfig(bag="any", **params["recorder"]["ros__parameters"])


@pytest.mark.parametrize("task", ["InvertedPendulum-v5", "Reacher-v5", "Pusher-v5",
                                  "HalfCheetah-v5"])
def test_planner_defaults_are_written_in_the_task_parameter_file(task):
    """The planner tasks' defaults live in their parameter file (every planner setting written),
    the file default_mpc_config reads, and they make a valid cem controller."""
    values = yaml.safe_load(parameter_file(task).read_text())["controller"]["ros__parameters"]
    assert set(PLANNER_PARAMETERS) <= set(values)
    expected = ControllerConfig(**{k: v for k, v in values.items() if k not in NODE_EXTRAS},
                                actor="cem").planner()
    assert default_mpc_config(task) == expected


@pytest.mark.parametrize("actor", ["policy", "cem"])
def test_up_starts_the_launch_files_nodes_with_declared_parameters_only(actor):
    """``learned-control up`` is the launch file as processes: same nodes, same parameter file,
    and its ``-p`` overrides are parameters those nodes declare."""
    from learned_control.cli.up import graph_specs

    params_file = parameter_file("InvertedPendulum-v5")
    specs = graph_specs("InvertedPendulum-v5", "model.pt", "lockstep", "bag", params_file, actor,
                        expert="expert.zip")
    assert [s.name for s in specs] == ["recorder", "controller", "sim_bridge"]
    for spec in specs:
        assert spec.argv[spec.argv.index("--params-file") + 1] == str(params_file)
        overrides = dict(spec.argv[i + 1].split(":=", 1) for i, a in enumerate(spec.argv)
                         if a == "-p")
        assert set(overrides) <= DECLARED[spec.name], (spec.name, overrides)
        if spec.name == "controller":
            assert overrides["actor"] == actor and overrides["expert"] == "expert.zip"
        if spec.name != "recorder":
            assert overrides["task"] == "InvertedPendulum-v5" and "env_kwargs" not in overrides


def test_up_gives_the_nodes_any_task_and_its_env_kwargs_as_strings():
    """A task without its own parameter file runs on default.yaml, with ``task`` and
    ``env_kwargs`` as ``-p`` overrides; the JSON object is YAML-quoted so it stays a string."""
    from learned_control.cli.up import graph_specs

    params_file = parameter_file("Swimmer-v5")
    assert params_file.name == "default.yaml"
    specs = graph_specs("Swimmer-v5", "model.pt", "lockstep", "", params_file,
                        env_kwargs='{"reset_noise_scale": 0.2}')
    for spec in specs:
        overrides = dict(spec.argv[i + 1].split(":=", 1) for i, a in enumerate(spec.argv)
                         if a == "-p")
        assert overrides["task"] == "Swimmer-v5"
        assert yaml.safe_load(overrides["env_kwargs"]) == '{"reset_noise_scale": 0.2}'


@pytest.mark.parametrize(("discovery", "expected"), [("localhost", "LOCALHOST"), ("subnet", "SUBNET")])
def test_up_limits_dds_discovery_unless_the_environment_chose(discovery, expected, monkeypatch):
    """Every node of ``up`` gets ``ROS_AUTOMATIC_DISCOVERY_RANGE`` from ``--discovery``; a value
    already in the environment is left to the nodes unchanged (they inherit it)."""
    from learned_control.cli.up import graph_specs

    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    specs = graph_specs("InvertedPendulum-v5", "model.pt", "lockstep", "", Path("p.yaml"),
                        discovery=discovery)
    assert [s.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] for s in specs] == [expected] * len(specs)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SYSTEM_DEFAULT")
    specs = graph_specs("InvertedPendulum-v5", "model.pt", "lockstep", "", Path("p.yaml"),
                        discovery=discovery)
    assert all("ROS_AUTOMATIC_DISCOVERY_RANGE" not in s.env for s in specs)
