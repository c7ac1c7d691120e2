"""Launch files parse, and every executable, parameter file and parameter they name exists."""

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from learned_control.actors import default_mpc_config
from learned_control.bringup import Bringup
from learned_control.errors import ConfigError
from learned_control.params import PARAMETER_DIR, node_section, parameter_file
from learned_control.planning.mpc import PLANNER_PARAMETERS
from learned_control.ros.recorder import RecorderConfig
from learned_control.runtime.bridge import BridgeConfig
from learned_control.runtime.controller import ControllerConfig
from learned_control.specs import default_specs, dump_specs
from learned_control.tasks import TASKS
from learned_control.training.learner import LearnerConfig

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
TASK_FILES = sorted(p.stem for p in PARAMETER_DIR.glob("*.yaml")
                    if p.stem not in ("default", "diagnostics_agg"))
NODE_EXTRAS = ("autostart", "torch_threads")
DECLARED = {
    "sim_bridge": {f.name for f in dataclasses.fields(BridgeConfig)} | set(NODE_EXTRAS),
    "controller": {f.name for f in dataclasses.fields(ControllerConfig)} | set(NODE_EXTRAS),
    "recorder": {f.name for f in dataclasses.fields(RecorderConfig)},
    "learner": {f.name for f in dataclasses.fields(LearnerConfig)} | set(NODE_EXTRAS),
}


def _console_scripts() -> set[str]:
    text = (ROOT / "setup.py").read_text()
    return set(re.findall(r"[\"'](\w+)\s*=\s*learned_control[\w.]*:main[\"']", text))


def _node_calls(tree: ast.AST):
    for call in ast.walk(tree):
        if (isinstance(call, ast.Call)
                and getattr(call.func, "id", None) in ("Node", "LifecycleNode")):
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
    assert {ast.literal_eval(n["executable"]) for n in nodes} == set(DECLARED)
    for node in nodes:
        executable = ast.literal_eval(node["executable"])
        assert executable in scripts, f"{executable} is not a console script in setup.py"
        assert ast.literal_eval(node["name"]) == executable
        # the file's section and the graph's parameters (checked below), nothing else
        assert ast.unparse(node["parameters"]).startswith("[params, _parameters(graph, ")
    args = {ast.literal_eval(c.args[0]) for c in ast.walk(tree) if isinstance(c, ast.Call)
            and getattr(c.func, "id", None) == "DeclareLaunchArgument"}
    # up's flags, as launch arguments (--no-bridge: no_bridge:=true; lists comma-separated)
    assert args == {"task", "env_kwargs", "checkpoint", "mode", "record", "record_topics", "actor",
                    "expert", "interface", "spec_file", "namespace", "bridge_only", "no_bridge",
                    "learner", "learner_sources", "params_file"}
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               for a in n.names}
    assert ("learned_control.params", "parameter_file") in imports  # the package's own files
    assert ("learned_control.bringup", "Bringup") in imports  # up's graph
    assert "get_package_share_directory" in path.read_text()  # a colcon install's share folder


def test_parameter_files_are_package_data_installed_to_share_too():
    """The parameter files ship inside the package (found without the source checkout) and
    setup.py installs them as package data and into share/learned_control/config."""
    import learned_control

    assert PARAMETER_DIR == Path(learned_control.__file__).parent / "config"
    # a file per task that has its own settings, default.yaml for the others (the PointMaze
    # forks among them); diagnostics_agg.yaml is the aggregator's, not a graph's
    files = {p.stem for p in PARAMETER_DIR.glob("*.yaml")} - {"diagnostics_agg"}
    assert {"default", "InvertedPendulum-v5", "HalfCheetah-v5"} <= files <= set(TASKS) | {"default"}
    setup = (ROOT / "setup.py").read_text()
    assert '"config/*.yaml"' in setup and 'glob(f"src/{PACKAGE}/config/*.yaml")' in setup


@pytest.mark.parametrize("task", [*TASK_FILES, "Swimmer-v5", "PointMazeFork-v0"])
def test_parameter_file_per_task_declares_only_known_parameters(task):
    """Each task file, and default.yaml (it names no task) for any id without one: a Gymnasium
    id or a registered task whose defaults are the generic ones."""
    path = parameter_file(task)
    assert path.name == (f"{task}.yaml" if task in TASK_FILES else "default.yaml")
    params = yaml.safe_load(path.read_text())
    # /**/<node>: the section applies in any namespace (a plain <node> key only outside one)
    assert set(params) == {f"/**/{node}" for node in DECLARED}
    for node in DECLARED:
        values = node_section(params, node)
        unknown = set(values) - DECLARED[node]
        assert not unknown, f"{path}: {node} declares no parameters {sorted(unknown)}"
        if "task" in values:
            assert values["task"] == task
    # and the values pass the nodes' own validation
    BridgeConfig(**{k: v for k, v in node_section(params, "sim_bridge").items()
                    if k not in NODE_EXTRAS})
    ControllerConfig(**{k: v for k, v in node_section(params, "controller").items()
                        if k not in NODE_EXTRAS})
    RecorderConfig(bag="any", **node_section(params, "recorder"))
    LearnerConfig(**{k: v for k, v in node_section(params, "learner").items()
                     if k not in NODE_EXTRAS})


@pytest.mark.parametrize("task", ["InvertedPendulum-v5", "Reacher-v5", "Pusher-v5",
                                  "HalfCheetah-v5"])
def test_planner_defaults_are_written_in_the_task_parameter_file(task):
    """The planner tasks' defaults live in their parameter file (every planner setting written),
    the file default_mpc_config reads, and they make a valid cem controller."""
    values = node_section(yaml.safe_load(parameter_file(task).read_text()), "controller")
    assert set(PLANNER_PARAMETERS) <= set(values)
    expected = ControllerConfig(**{k: v for k, v in values.items() if k not in NODE_EXTRAS},
                                actor="cem").planner()
    assert default_mpc_config(task) == expected


def _overrides(spec) -> dict[str, str]:
    return dict(spec.argv[i + 1].split(":=", 1) for i, a in enumerate(spec.argv) if a == "-p")


@pytest.mark.parametrize("actor", ["policy", "cem"])
def test_up_starts_the_launch_files_nodes_with_declared_parameters_only(actor):
    """``learned-control up`` is the launch file as processes: same nodes, same parameter file,
    and its ``-p`` overrides are parameters those nodes declare."""
    from learned_control.cli.up import graph_specs

    params_file = parameter_file("InvertedPendulum-v5")
    graph = Bringup("InvertedPendulum-v5", checkpoint="model.pt", actor=actor,
                    expert="expert.zip", record="bag", learner=True)
    specs = graph_specs(graph, params_file)
    assert [s.name for s in specs] == ["recorder", "learner", "controller", "sim_bridge"]
    for spec in specs:
        assert spec.argv[spec.argv.index("--params-file") + 1] == str(params_file)
        overrides = _overrides(spec)
        assert set(overrides) <= DECLARED[spec.name], (spec.name, overrides)
        if spec.name == "controller":
            assert overrides["actor"] == actor and overrides["expert"] == "expert.zip"
        if spec.name == "learner":  # trains what the controller runs, on the expert's labels
            assert overrides["what"] == ("dynamics" if actor == "cem" else "bc")
            assert overrides["labels"] == "expert"
        if spec.name != "recorder":
            assert overrides["task"] == "InvertedPendulum-v5" and "env_kwargs" not in overrides
    assert "-r" not in specs[0].argv  # no namespace, no remapping


def test_up_gives_the_nodes_any_task_and_its_env_kwargs_as_strings():
    """A task without its own parameter file runs on default.yaml, with ``task`` and
    ``env_kwargs`` as ``-p`` overrides; the JSON object is YAML-quoted so it stays a string."""
    from learned_control.cli.up import graph_specs

    params_file = parameter_file("Swimmer-v5")
    assert params_file.name == "default.yaml"
    graph = Bringup("Swimmer-v5", '{"reset_noise_scale": 0.2}', checkpoint="model.pt")
    for spec in graph_specs(graph, params_file):
        overrides = _overrides(spec)
        assert overrides["task"] == "Swimmer-v5"
        assert yaml.safe_load(overrides["env_kwargs"]) == '{"reset_noise_scale": 0.2}'


@pytest.mark.parametrize(("discovery", "expected"),
                         [("localhost", "LOCALHOST"), ("subnet", "SUBNET")])
def test_up_limits_dds_discovery_unless_the_environment_chose(discovery, expected, monkeypatch):
    """Every node of ``up`` gets ``ROS_AUTOMATIC_DISCOVERY_RANGE`` from ``--discovery``; a value
    already in the environment is left to the nodes unchanged (they inherit it)."""
    from learned_control.cli.up import graph_specs

    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    graph = Bringup("InvertedPendulum-v5", checkpoint="model.pt")
    specs = graph_specs(graph, Path("p.yaml"), discovery=discovery)
    assert [s.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] for s in specs] == [expected] * len(specs)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SYSTEM_DEFAULT")
    specs = graph_specs(graph, Path("p.yaml"), discovery=discovery)
    assert all("ROS_AUTOMATIC_DISCOVERY_RANGE" not in s.env for s in specs)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> str:
    """The exported spec of InvertedPendulum-v5 (``/joint_states``, an absolute command topic)."""
    path = tmp_path_factory.mktemp("spec") / "pendulum.yaml"
    path.write_text(dump_specs(default_specs("InvertedPendulum-v5")))
    return str(path)


def _graphs(spec_file: str) -> dict[str, Bringup]:
    task = "InvertedPendulum-v5"
    return {
        "sim": Bringup(task, checkpoint="p.pt", record="bag", learner=True),
        "driver": Bringup(task, checkpoint="p.pt", interface="driver", spec_file=spec_file,
                          record="bag", namespace="robot1", mode="realtime"),
        "bridge-only": Bringup(task, controller=False, record="bag", namespace="/lab/r2/"),
        "no-bridge": Bringup(task, checkpoint="p.pt", bridge=False, spec_file=spec_file,
                             record="bag", learner=True, namespace="robot1",
                             learner_sources=["/data/bags"]),
    }


def test_every_graph_shape_gives_its_nodes_declared_parameters_only(spec_file):
    """Each graph (the launch file's as up's) runs the nodes it says, with parameters they
    declare and values their configs accept."""
    graphs = _graphs(spec_file)
    assert {k: g.nodes for k, g in graphs.items()} == {
        "sim": ["recorder", "learner", "controller", "sim_bridge"],
        "driver": ["recorder", "controller", "sim_bridge"],
        "bridge-only": ["recorder", "sim_bridge"],
        "no-bridge": ["recorder", "learner", "controller"],
    }
    configs = {"sim_bridge": BridgeConfig, "controller": ControllerConfig,
               "recorder": RecorderConfig, "learner": LearnerConfig}
    for graph in graphs.values():
        for node in graph.nodes:
            values = graph.parameters(node)
            assert set(values) <= DECLARED[node], (node, values)
            configs[node](**values)  # the node's own checks accept them
    driver, no_bridge = graphs["driver"], graphs["no-bridge"]
    assert driver.parameters("sim_bridge")["interface"] == "ros2_control"
    assert driver.parameters("controller")["spec_file"] == spec_file
    # the recorder records the robot's topics, and the bridge's side topics where it runs
    assert driver.parameters("recorder")["topics"] == [
        "applied_command", "reward", "episode", "/joint_states", "/effort_controller/commands",
        "assembled_observation"]
    assert no_bridge.parameters("recorder")["topics"] == [
        "/joint_states", "/effort_controller/commands", "assembled_observation"]
    # a robot-mode controller's writer exists only after configure saw the robot's topics
    assert "wait_for" not in driver.parameters("recorder")
    assert "wait_for" not in no_bridge.parameters("recorder")  # no bridge to hold back
    assert no_bridge.parameters("learner")["sources"] == ["/data/bags"]
    assert graphs["bridge-only"].parameters("recorder")["wait_for"] == ["command"]
    assert graphs["bridge-only"].namespace == "/lab/r2"


def test_a_namespaced_graph_with_the_bridge_moves_its_absolute_topics_under_it(spec_file):
    """With the bridge the graph is one simulated robot: /joint_states, /clock and the spec's
    absolute topics go under its namespace (never /diagnostics); without the bridge the spec's
    names stay as written; ``up`` passes the namespace and the remappings to every node."""
    from learned_control.cli.up import graph_specs

    graphs = _graphs(spec_file)
    assert graphs["sim"].remappings() == []  # no namespace
    assert graphs["driver"].remappings() == [
        ("/joint_states", "/robot1/joint_states"), ("/clock", "/robot1/clock"),
        ("/effort_controller/commands", "/robot1/effort_controller/commands")]
    assert graphs["bridge-only"].remappings() == [
        ("/joint_states", "/lab/r2/joint_states"), ("/clock", "/lab/r2/clock")]
    assert graphs["no-bridge"].remappings() == []
    for spec in graph_specs(graphs["driver"], parameter_file("InvertedPendulum-v5")):
        rules = [spec.argv[i + 1] for i, a in enumerate(spec.argv) if a == "-r"]
        assert rules == ["__ns:=/robot1", "/joint_states:=/robot1/joint_states",
                         "/clock:=/robot1/clock",
                         "/effort_controller/commands:=/robot1/effort_controller/commands"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bridge": False, "controller": False}, "leave nothing to run"),
    ({"controller": False, "checkpoint": "p.pt"}, "--bridge-only runs no controller; drop "
                                                  "--checkpoint"),
    ({"controller": False, "actor": "cem"}, "drop --actor cem"),
    ({}, "--checkpoint is needed to run the controller"),
    ({"checkpoint": "p.pt", "bridge": False}, "--no-bridge needs --spec-file"),
    ({"checkpoint": "p.pt", "interface": "driver"}, "--interface driver needs --spec-file"),
    ({"checkpoint": "p.pt", "bridge": False, "interface": "sim"}, "--no-bridge runs none"),
    ({"checkpoint": "p.pt", "spec_file": "SPEC"}, "--spec-file is for --interface driver"),
    ({"checkpoint": "p.pt", "spec_file": "SPEC", "bridge": False, "expert": "e.pt"},
     "--expert labels the observation topic"),
    ({"checkpoint": "p.pt", "record_topics": ["reward"]}, "--record-topics needs --record"),
    ({"checkpoint": "p.pt", "learner_sources": ["b"]}, "--learner-sources needs --learner"),
    ({"checkpoint": "p.pt", "namespace": "1robot"}, "'1robot' is not a ROS name"),
    ({"checkpoint": "p.pt", "interface": "ros2"}, "interface 'ros2'; expected one of"),
])
def test_contradictory_choices_are_refused_in_one_line(kwargs, message, spec_file):
    kwargs = {k: spec_file if v == "SPEC" else v for k, v in kwargs.items()}
    with pytest.raises(ConfigError) as err:
        Bringup("InvertedPendulum-v5", **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_spec_file_for_another_task_is_refused_before_any_node_starts(spec_file):
    with pytest.raises(ConfigError, match="a spec for task InvertedPendulum-v5"):
        Bringup("Reacher-v5", checkpoint="p.pt", bridge=False, spec_file=spec_file)


def test_under_a_namespace_a_parameter_file_with_plain_node_sections_is_refused(tmp_path):
    """ROS applies a plain ``sim_bridge:`` section only outside a namespace: silently running
    without the file's settings would lose them, so ``up`` refuses it, naming the fix."""
    plain = tmp_path / "plain.yaml"
    plain.write_text("sim_bridge:\n  ros__parameters:\n    seed: 3\n")
    graph = Bringup("InvertedPendulum-v5", controller=False, namespace="robot1")
    with pytest.raises(ConfigError, match=r"section 'sim_bridge' applies only outside a "
                                          r"namespace; name it '/\*\*/sim_bridge'"):
        graph.check_parameter_file(plain)
    Bringup("InvertedPendulum-v5", controller=False).check_parameter_file(plain)
    graph.check_parameter_file(parameter_file("InvertedPendulum-v5"))
