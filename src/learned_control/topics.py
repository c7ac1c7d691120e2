"""Topic and service names (relative, so a namespace runs several robots) and message layouts.

Pairing rule for training data (recorder -> ``bag2minari``):
    Per episode the bridge publishes, in order, ``T`` observations (one per step, each answered by
    exactly one command in lockstep), ``T`` ``applied_command`` messages (the action actually
    applied at each step, after clipping or the timeout policy) and ``T`` rewards, then one
    ``episode`` summary whose ``length`` is ``T`` and which carries the terminal observation
    (published before any reset, so a dataset gets ``T + 1`` observations, and no controller ever
    answers a terminal state). Observation ``t`` pairs with applied command ``t``.
    ``applied_command``, ``reward`` and ``episode`` are always reliable; in lockstep the observation
    is reliable too, so a bag recorded in lockstep pairs exactly. In realtime the observation stream
    is best-effort; an episode whose counts do not match its summary is reported and skipped, never
    mis-paired. ``expert_command`` (DAgger relabels), when present, is published by the labeller
    once per observation in the same order.
"""

__all__ = [
    "OBSERVATION",
    "COMMAND",
    "APPLIED_COMMAND",
    "EXPERT_COMMAND",
    "REWARD",
    "EPISODE",
    "JOINT_STATES",
    "CLOCK",
    "DIAGNOSTICS",
    "MODEL_UPDATED",
    "GOAL",
    "ASSEMBLED_OBSERVATION",
    "EPISODE_FIELDS",
    "RESET",
    "PAUSE",
    "RESUME",
    "RELOAD",
    "TRAIN",
    "CANCEL",
    "RECORDED_TOPICS",
]

OBSERVATION = "observation"  # std_msgs/Float64MultiArray, dim[0].label = comma-joined labels
COMMAND = "command"  # std_msgs/Float64MultiArray, one action
APPLIED_COMMAND = "applied_command"  # std_msgs/Float64MultiArray, the action the bridge applied
EXPERT_COMMAND = "expert_command"  # std_msgs/Float64MultiArray, expert relabel of an observation
REWARD = "reward"  # std_msgs/Float64
EPISODE = "episode"  # std_msgs/Float64MultiArray, EPISODE_FIELDS
JOINT_STATES = "/joint_states"  # sensor_msgs/JointState, sim-time stamps
CLOCK = "/clock"  # rosgraph_msgs/Clock
DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray
MODEL_UPDATED = "model_updated"  # std_msgs/String, checkpoint path (latched)
GOAL = "goal"  # geometry_msgs/PointStamped, goal of a goal-conditioned task
ASSEMBLED_OBSERVATION = "assembled_observation"  # std_msgs/Float64MultiArray, robot mode

EPISODE_FIELDS = ("episode_index", "return", "length", "success", "seed")
"""Layout of the ``episode`` summary: these five values (success is 1/0, NaN when the env reports
none), then the terminal observation ``(obs_dim,)``."""

RESET, PAUSE, RESUME, RELOAD = "~/reset", "~/pause", "~/resume", "~/reload"
"""std_srvs/Trigger services, private to their node (``/<ns>/sim_bridge/reset``, ``.../pause``,
``.../resume``; ``/<ns>/controller/reload``), like the standard ``~/change_state``: two nodes in one
namespace never collide."""

TRAIN, CANCEL = "~/train", "~/cancel"
"""std_srvs/Trigger services of the learner (``/<ns>/learner/train``, ``.../cancel``): start a
training job in the background (answered at once), stop the running one between epochs."""

RECORDED_TOPICS = {
    OBSERVATION: "std_msgs/msg/Float64MultiArray",
    COMMAND: "std_msgs/msg/Float64MultiArray",
    APPLIED_COMMAND: "std_msgs/msg/Float64MultiArray",
    EXPERT_COMMAND: "std_msgs/msg/Float64MultiArray",
    REWARD: "std_msgs/msg/Float64",
    EPISODE: "std_msgs/msg/Float64MultiArray",
    JOINT_STATES: "sensor_msgs/msg/JointState",
}
"""What the recorder records by default: topic -> ROS 2 message type name."""
