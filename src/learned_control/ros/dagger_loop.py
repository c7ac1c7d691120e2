"""DAgger through the node graph, unattended for k iterations.

Iteration 0: a ``controller`` drives with the expert itself (``checkpoint`` = the expert, or
``actor: cem`` for a ``cem:<dynamics checkpoint>`` expert) for ``episodes_per_iteration`` seeded
lockstep episodes while the ``recorder`` writes them into ``<out_dir>/bags/iteration-00``: the
expert's demonstrations. The ``learner`` node (``what: bc``, ``labels: expert``,
``sources: [<out_dir>/bags]``, kept running throughout) trains the first policy on them. Then a
controller runs the learner's policy, with the expert as its labeller (parameter ``expert``: the
expert acts on every observation the policy sees and its action goes to ``expert_command``, which
the recorder keeps), and k times: seeded episodes driven by the policy are recorded into a new
bag, the learner retrains on the aggregate of every bag so far (labels: the expert's), and the
controller hot-swaps the new checkpoint from ``model_updated`` (waited for on its diagnostics)
before the next iteration's episodes. Node logs go to ``<out_dir>/logs/``, checkpoints to
``<out_dir>/models/``; the return by iteration to ``returns.json`` / ``returns.png``.

With a ``spec_file`` the loop runs on the robot's own topics
(:meth:`~.graph_run.LockstepGraph.run_robot_episodes`, ``mode`` lockstep or realtime): the
controller in robot mode drives (the expert, then the policy), the recorder records only the
spec's topics, and the learner converts the bags with the spec and has the expert relabel every
observation as it loads them (a robot's bags carry no ``expert_command``). The bridge's
``episode`` summaries only report the returns.
"""

from __future__ import annotations

import os
import time

from .. import topics
from ..checkpoint import load_checkpoint
from ..params import parameter_file
from ..tasks import Task, get_task
from ..training.mbrl import IterationResult, save_curve
from .graph_run import BRIDGE_TOPICS, LockstepGraph, new_loop_dir, robot_link, task_parameters

__all__ = ["run_dagger_loop"]


def run_dagger_loop(
    task: str | Task,
    expert: str,
    iterations: int,
    episodes_per_iteration: int,
    seed: int,
    out_dir: str | os.PathLike,
    learner: dict | None = None,
    torch_threads: int = 1,
    timeout: float = 600.0,
    domain_id: int | None = None,
    on_iteration=None,
    spec_file: str | os.PathLike | None = None,
    mode: str = "lockstep",
) -> list[IterationResult]:
    """Run DAgger through ROS; returns the expert's episodes (iteration 0) and one result per
    policy iteration, also saved (after each iteration) as ``returns.json`` and ``returns.png``.

    Args:
        task: a task name, or a :class:`Task` (its env kwargs go to the nodes too).
        expert: a policy checkpoint, an SB3 ``.zip`` or ``cem:<dynamics checkpoint>``.
        iterations: DAgger iterations k (>= 1) after the expert's demonstrations.
        episodes_per_iteration: lockstep episodes per iteration (>= 1); iteration ``i`` uses
            reset seeds ``seed + 1000 i``, ``seed + 1000 i + 1``, ...
        seed: seed of the episodes, the learner and a planner expert.
        out_dir: receives ``bags/``, ``models/``, ``logs/`` and the curve (must not hold bags yet).
        learner: extra learner node parameters (epochs, hid_size, num_layers, batch_size, ...).
        torch_threads: torch threads of the controller and the learner.
        timeout: seconds allowed for each wait (start-up, a training job, an iteration).
        domain_id: ROS domain of the graph; default ``$ROS_DOMAIN_ID`` (else 0).
        on_iteration: called with each :class:`~learned_control.training.mbrl.IterationResult`.
        spec_file: a robot spec YAML: run on the robot's topics (see the module doc).
        mode: with ``spec_file``: ``lockstep`` or ``realtime``.

    Raises:
        ConfigError: bad counts, a bad spec or mode, or ``out_dir`` already holding bags.
        LearnedControlError: a node exited, a training job failed or a wait timed out.
    """
    spec = task if isinstance(task, Task) else get_task(task)
    robot = robot_link(spec, spec_file, mode)
    out, bags = new_loop_dir(out_dir, iterations, episodes_per_iteration)
    results: list[IterationResult] = []
    recorded = (*BRIDGE_TOPICS, topics.EXPERT_COMMAND)
    planner_expert = expert.startswith("cem:")
    controller = {
        **task_parameters(spec),
        "mode": "lockstep",
        "seed": seed,
        "torch_threads": torch_threads,
        # robot mode: the learner's expert relabels (a robot-mode controller labels nothing)
        **(robot.controller(timeout) if robot else {"expert": expert}),
    }
    params_file = parameter_file(spec.name) if planner_expert else None

    with LockstepGraph(out / "logs", timeout, domain_id) as graph:
        graph.start(
            "learner",
            {
                **(learner or {}),
                "what": "bc",
                "labels": "expert",
                **task_parameters(spec),
                "sources": f"['{bags}']",
                "output_dir": str(out / "models"),
                "seed": seed,
                "torch_threads": torch_threads,
                **({**robot.learner(), "expert": expert} if robot else {}),
            },
        )
        driver = expert[4:] if planner_expert else expert
        graph.start(
            "controller",
            {**controller, "checkpoint": driver, "actor": "cem" if planner_expert else "policy"},
            params_file=params_file,
        )
        checkpoint = driver
        for iteration in range(iterations + 1):
            start = time.perf_counter()
            # (a robot-mode controller just started is configured by its first run)
            fresh = robot is not None and iteration <= 1
            model = "" if fresh else graph.wait_for_model(checkpoint)
            bag = bags / f"iteration-{iteration:02d}"
            episode_seed, suffix = seed + 1000 * iteration, f"_{iteration}"
            if robot is None:
                run = graph.run_episodes(
                    spec, episodes_per_iteration, episode_seed, bag, suffix, recorded
                )
            else:
                run = graph.run_robot_episodes(
                    spec, robot, episodes_per_iteration, episode_seed, bag, suffix
                )
                model = model or run.control.get("model", "")
            trained_on = (
                0 if iteration == 0 else int(load_checkpoint(checkpoint).metadata["transitions"])
            )
            if iteration < iterations:
                checkpoint = graph.train()  # a running policy controller swaps it in
                if iteration == 0:  # from the expert driving to the policy with the labeller
                    graph.stop("controller")
                    graph.start("controller", {**controller, "checkpoint": checkpoint})
            results.append(
                IterationResult(
                    iteration, model, trained_on, run.result, str(bag), time.perf_counter() - start
                )
            )
            save_curve(results, out, spec.name, "DAgger through ROS", "the expert driving")
            if on_iteration is not None:
                on_iteration(results[-1])
    return results
