"""One entry point from a data source (Minari dataset id or rosbag2 bag) to transitions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..errors import DatasetError
from ..tasks import Task
from .episodes import Transitions

if TYPE_CHECKING:
    from ..specs import RobotSpecs

__all__ = ["SOURCE_KINDS", "load_transitions"]

SOURCE_KINDS = ("minari", "bag")
"""What ``source`` names: a Minari dataset id, or the folder of a rosbag2 bag."""


def load_transitions(
    source: str,
    task: Task,
    kind: Literal["minari", "bag"] = "minari",
    download: bool = False,
    expert_labels: bool = False,
    specs: RobotSpecs | None = None,
    lockstep: bool = False,
    gap: float | None = None,
) -> Transitions:
    """Flat transitions of ``source``, checked against ``task``'s observation and action sizes.

    Args:
        source: a Minari dataset id (``kind="minari"``) or a rosbag2 bag path (``kind="bag"``).
        task: the task the data must fit.
        kind: which of :data:`SOURCE_KINDS` ``source`` is.
        download: for Minari ids that are not local, fetch them from the Minari server.
        expert_labels: label each observation with the expert's relabel (a bag's
            ``expert_command``, DAgger) instead of the action applied.
        specs: a bag of a robot's own topics: converted with this spec
            (:func:`~learned_control.data.robot_bags.convert_bag`: observations assembled as the
            controller does, episodes split at pauses longer than ``gap``, rewards and
            terminations from the task's functions); ``None``: the bridge's topics.
        lockstep: with ``specs``: the controller answered each stamp once (lockstep pairing).
        gap: with ``specs``: the pause (s) between commands that ends an episode (default
            :data:`~learned_control.data.robot_bags.DEFAULT_GAP_S`).

    Raises:
        DatasetError: unknown source or kind, data whose sizes do not fit ``task``, or
            ``expert_labels`` for data without them.
    """
    if kind == "minari":
        if expert_labels:
            raise DatasetError(
                f"Minari dataset {source!r} carries no expert relabels; "
                "expert labels come from bags recorded with an expert labelling"
            )
        from .minari_io import load_transitions as load_minari

        transitions, env = load_minari(source, task, download)
        env.close()
        return transitions
    if kind == "bag":
        if specs is not None:
            from .robot_bags import DEFAULT_GAP_S, convert_bag

            if expert_labels:
                raise DatasetError(
                    f"bag {source!r}: a robot's topics carry no expert relabels; relabel the "
                    "converted observations with an expert instead"
                )
            episodes = convert_bag(
                source,
                task,
                specs,
                gap=DEFAULT_GAP_S if gap is None else gap,
                task_rewards=True,
                lockstep=lockstep,
            ).episodes
            transitions = Transitions.from_episodes(episodes)
            transitions.check_fits(task.obs_dim, task.act_dim, f"bag {source!r}")
            return transitions
        from .bags import bag_to_episodes

        episodes = bag_to_episodes(source)
        if expert_labels and any(ep.expert_actions is None for ep in episodes):
            raise DatasetError(
                f"bag {source!r} has no expert_command for every observation; "
                "record it while the controller's expert labels"
            )
        transitions = Transitions.from_episodes(episodes, use_expert_actions=expert_labels)
        transitions.check_fits(task.obs_dim, task.act_dim, f"bag {source!r}")
        return transitions
    raise DatasetError(f"data source kind {kind!r} is unknown; expected one of {SOURCE_KINDS}")
