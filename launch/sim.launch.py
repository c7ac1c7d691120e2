"""Bring the learned_control graph up: sim_bridge + controller (lifecycle) and, optionally, recorder.

    ros2 launch launch/sim.launch.py task:=InvertedPendulum-v5 checkpoint:=policy.pt \
        mode:=lockstep record:=/tmp/run_bag
    ros2 launch launch/sim.launch.py checkpoint:=dynamics.pt actor:=cem   # CEM-MPC planner
    ros2 launch launch/sim.launch.py checkpoint:=policy.pt expert:=expert.zip record:=/tmp/dagger
        # DAgger data: the policy drives, the expert labels every observation (expert_command)
    ros2 launch launch/sim.launch.py task:=Swimmer-v5 env_kwargs:='{"reset_noise_scale": 0.2}' \
        checkpoint:=policy.pt   # any Gymnasium id, with keyword arguments for gym.make

Parameters come from the task's parameter file, ``<task>.yaml`` in the installed package's
``learned_control/config/`` or ``default.yaml`` for a task without its own
(:func:`learned_control.params.parameter_file`), with ``task`` and ``env_kwargs`` given to the
bridge and the controller as overrides; the managed nodes
start with ``autostart`` false and are configured, then activated, by the standard lifecycle events
(controller first, so the bridge never steps without a listener).
"""

import launch
import lifecycle_msgs.msg
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue

from learned_control.params import parameter_file


def _transition(node: LifecycleNode, transition_id: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                       transition_id=transition_id))


def _nodes(context):
    task = LaunchConfiguration("task").perform(context)
    # strings as they are (a JSON object or an id with a colon is not parsed as YAML)
    task_value = ParameterValue(task, value_type=str)
    env_kwargs = ParameterValue(LaunchConfiguration("env_kwargs").perform(context), value_type=str)
    mode = LaunchConfiguration("mode").perform(context)
    checkpoint = LaunchConfiguration("checkpoint").perform(context)
    actor = LaunchConfiguration("actor").perform(context)
    expert = LaunchConfiguration("expert").perform(context)
    record = LaunchConfiguration("record").perform(context)
    params = str(parameter_file(task))
    bridge = LifecycleNode(package="learned_control", executable="sim_bridge", name="sim_bridge",
                           namespace="", output="screen",
                           parameters=[params, {"task": task_value, "env_kwargs": env_kwargs,
                                                "mode": mode, "autostart": False,
                                                "wait_for_recorder": bool(record)}])
    controller = LifecycleNode(package="learned_control", executable="controller",
                               name="controller", namespace="", output="screen",
                               parameters=[params, {"task": task_value, "env_kwargs": env_kwargs,
                                                    "mode": mode, "checkpoint": checkpoint,
                                                    "actor": actor, "expert": expert,
                                                    "autostart": False}])
    configure = lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE
    activate = lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE
    actions = [
        bridge, controller,
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=controller, goal_state="inactive",
            entities=[_transition(controller, activate)])),
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=controller, goal_state="active",
            entities=[_transition(bridge, configure)])),
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=bridge, goal_state="inactive",
            entities=[_transition(bridge, activate)])),
        _transition(controller, configure),
    ]
    if record:
        actions.insert(0, Node(package="learned_control", executable="recorder", name="recorder",
                               output="screen",
                               parameters=[params, {"mode": mode, "bag": record}]))
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
                                          "a dynamics ensemble with actor:=cem"),
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
        OpaqueFunction(function=_nodes),
    ])
