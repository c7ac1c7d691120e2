"""Bring the learned_control graph up: sim_bridge + controller (lifecycle), optionally recorder
and learner; the graph ``learned-control up`` runs, from the same flags as launch arguments.

    ros2 launch launch/sim.launch.py task:=InvertedPendulum-v5 checkpoint:=policy.pt \
        mode:=lockstep record:=/tmp/run_bag
    ros2 launch launch/sim.launch.py checkpoint:=dynamics.pt actor:=cem   # CEM-MPC planner
    ros2 launch launch/sim.launch.py checkpoint:=policy.pt expert:=expert.zip record:=/tmp/dagger
        # DAgger data: the policy drives, the expert labels every observation (expert_command)
    ros2 launch launch/sim.launch.py task:=Swimmer-v5 env_kwargs:='{"reset_noise_scale": 0.2}' \
        checkpoint:=policy.pt   # any Gymnasium id, with keyword arguments for gym.make
    ros2 launch launch/sim.launch.py task:=Hopper-v5 interface:=driver spec_file:=robot.yaml \
        mode:=realtime checkpoint:=policy.pt namespace:=robot1   # the bridge as a driver
    ros2 launch launch/sim.launch.py task:=Hopper-v5 no_bridge:=true spec_file:=robot.yaml \
        mode:=realtime checkpoint:=policy.pt record:=/tmp/robot_bag   # the robot's drivers
    ros2 launch launch/sim.launch.py bridge_only:=true   # a controller of your own

The graph, its parameters and remappings and the refusal of contradictory arguments are
:class:`learned_control.bringup.Bringup`'s, as for ``up``. Parameters come from ``params_file``,
else the task's parameter file, ``<task>.yaml`` or ``default.yaml`` for a task without its own
(:func:`learned_control.params.parameter_file`), in ``share/learned_control/config`` of a colcon
install (the ament index) or else in the installed package's ``learned_control/config``. The
managed nodes start with ``autostart`` false and are configured, then activated, by the standard
lifecycle events (controller first, so the bridge never steps without a listener); the learner
activates itself.
"""

from pathlib import Path

import launch
import lifecycle_msgs.msg
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue

from learned_control.bringup import Bringup
from learned_control.params import PARAMETER_DIR, parameter_file

CONFIGURE = lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE
ACTIVATE = lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE


def _transition(node: LifecycleNode, transition_id: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                       transition_id=transition_id))


def _config_dir() -> Path:
    """``share/learned_control/config`` of a colcon install, else the package's own files."""
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("learned_control")) / "config"
    except (ImportError, LookupError):  # not installed with colcon (PackageNotFoundError)
        return PARAMETER_DIR
    return share if share.is_dir() else PARAMETER_DIR


def _graph(context) -> Bringup:
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    def listed(name: str) -> list[str]:
        return [item.strip() for item in arg(name).split(",") if item.strip()]

    return Bringup(
        arg("task"), arg("env_kwargs"), mode=arg("mode"), interface=arg("interface"),
        spec_file=arg("spec_file"), namespace=arg("namespace"),
        bridge=arg("no_bridge").lower() != "true", controller=arg("bridge_only").lower() != "true",
        learner=arg("learner").lower() == "true", checkpoint=arg("checkpoint"),
        actor=arg("actor"), expert=arg("expert"), record=arg("record"),
        record_topics=listed("record_topics"), learner_sources=listed("learner_sources"))


def _parameters(graph: Bringup, node: str, **extra) -> dict:
    """The node's parameters beyond the file; strings as they are (a JSON object or an id with
    a colon is not parsed as YAML)."""
    values = {**graph.parameters(node), **extra}
    return {k: ParameterValue(v, value_type=str) if isinstance(v, str) else v
            for k, v in values.items()}


def _nodes(context):
    graph = _graph(context)
    params = LaunchConfiguration("params_file").perform(context) or str(
        parameter_file(graph.task, _config_dir()))
    graph.check_parameter_file(Path(params))
    common = {"namespace": graph.namespace, "output": "screen",
              "remappings": graph.remappings()}
    actions = []
    if graph.record:
        actions.append(Node(package="learned_control", executable="recorder", name="recorder",
                            parameters=[params, _parameters(graph, "recorder")], **common))
    if graph.learner:
        actions.append(Node(package="learned_control", executable="learner", name="learner",
                            parameters=[params, _parameters(graph, "learner")], **common))
    first = []  # lifecycle nodes in activation order: the controller, then the bridge
    if graph.controller:
        first.append(LifecycleNode(
            package="learned_control", executable="controller", name="controller",
            parameters=[params, _parameters(graph, "controller", autostart=False)], **common))
    if graph.bridge:
        first.append(LifecycleNode(
            package="learned_control", executable="sim_bridge", name="sim_bridge",
            parameters=[params, _parameters(graph, "sim_bridge", autostart=False)], **common))
    actions += first
    for node, after in zip(first, first[1:] + [None], strict=True):
        actions.append(RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, goal_state="inactive",
            entities=[_transition(node, ACTIVATE)])))
        if after is not None:
            actions.append(RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, goal_state="active",
                entities=[_transition(after, CONFIGURE)])))
    actions.append(_transition(first[0], CONFIGURE))
    return actions


def generate_launch_description() -> launch.LaunchDescription:
    return launch.LaunchDescription([
        DeclareLaunchArgument("task", default_value="InvertedPendulum-v5",
                              description="a registered task or any Gymnasium id (module:EnvId "
                                          "too); parameters from its <task>.yaml, else "
                                          "default.yaml"),
        DeclareLaunchArgument("env_kwargs", default_value="",
                              description="keyword arguments for gym.make as a JSON object "
                                          "(empty: none)"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="checkpoint (.pt) for the controller: a policy, or "
                                          "a dynamics ensemble with actor:=cem; needed exactly "
                                          "when the controller runs"),
        DeclareLaunchArgument("actor", default_value="policy",
                              description="policy, or cem (CEM-MPC through a dynamics model; "
                                          "planner settings from <task>.yaml)"),
        DeclareLaunchArgument("expert", default_value="",
                              description="DAgger labeller: an expert (policy .pt, SB3 .zip or "
                                          "cem:<dynamics .pt>) acting on every observation; its "
                                          "action goes to expert_command (empty: none)"),
        DeclareLaunchArgument("mode", default_value="lockstep",
                              description="lockstep or realtime"),
        DeclareLaunchArgument("record", default_value="",
                              description="path of a new bag to record into (empty: no recorder)"),
        DeclareLaunchArgument("record_topics", default_value="",
                              description="with record: the topics to record, comma-separated, "
                                          "each NAME or NAME:pkg/msg/Type (empty: the default)"),
        DeclareLaunchArgument("interface", default_value="",
                              description="the bridge's: sim (observation vector) or driver "
                                          "(ros2_control-shaped topics of spec_file; the "
                                          "controller in robot mode); empty: sim"),
        DeclareLaunchArgument("spec_file", default_value="",
                              description="robot spec YAML for interface:=driver or "
                                          "no_bridge:=true"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node and its topics (empty: "
                                          "none)"),
        DeclareLaunchArgument("bridge_only", default_value="false",
                              description="true: no controller (for your own; no checkpoint)"),
        DeclareLaunchArgument("no_bridge", default_value="false",
                              description="true: no bridge, the robot's drivers publish (needs "
                                          "spec_file)"),
        DeclareLaunchArgument("learner", default_value="false",
                              description="true: run the learner node too"),
        DeclareLaunchArgument("learner_sources", default_value="",
                              description="with learner: its sources, comma-separated (bags, "
                                          "folders of bags, Minari ids)"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="parameter file (empty: the task's, from the ament "
                                          "share folder or the installed package)"),
        OpaqueFunction(function=_nodes),
    ])
