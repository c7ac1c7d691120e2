"""The model-based (PETS-style) loop through the node graph, unattended for k iterations.

Before the loop, at most ``initial_random_steps`` random-policy transitions are written as a bag
into ``<out_dir>/bags/`` and the ``learner`` node (``what: dynamics``,
``sources: [<out_dir>/bags]``, kept running throughout) trains the first ensemble on request
(``~/train``) and announces it on ``model_updated``. A ``controller`` (``actor: cem``, planner
settings from ``<task>.yaml``) starts with it and keeps running. Each iteration then runs
``episodes_per_iteration`` seeded lockstep episodes through a fresh ``sim_bridge`` while a fresh
``recorder`` writes them into a new bag in the same folder; after every iteration but the last the
learner refits on every bag so far and the controller hot-swaps the new checkpoint (waited for on
its diagnostics) before the next iteration's episodes. Node logs go to ``<out_dir>/logs/``,
checkpoints to ``<out_dir>/models/``.

With a ``spec_file`` the loop runs on the robot's own topics
(:meth:`~.graph_run.LockstepGraph.run_robot_episodes`): the bridge is the robot's ros2_control
driver (a fresh one per iteration, pausing between episodes as a robot's reset does), the
controller runs in robot mode (``mode`` lockstep or
realtime), the recorder records only the spec's topics, the random data is written in the same
topics, and the learner converts every bag with the spec (episodes split at the pauses, rewards
and terminations from the task's functions). The bridge's ``episode`` summaries only report the
returns.

The bags are named ``iteration-01``, ``iteration-02``, ... and ``random``: the learner reads them
sorted by name and holds out the end of the data for validation, so it is random-policy data that
is held out, never the newest planner episodes (which the next plans need most).
"""

from __future__ import annotations

import os
import time

from ..checkpoint import load_checkpoint
from ..errors import LearnedControlError
from ..params import parameter_file
from ..tasks import Task, get_task
from ..training.mbrl import IterationResult, save_curve, write_random_bag
from .graph_run import LockstepGraph, new_loop_dir, robot_link, task_parameters

__all__ = ["run_mbrl_loop"]


def run_mbrl_loop(
    task: str | Task,
    iterations: int,
    episodes_per_iteration: int,
    seed: int,
    out_dir: str | os.PathLike,
    initial_random_steps: int = 2000,
    learner: dict | None = None,
    torch_threads: int = 1,
    timeout: float = 600.0,
    domain_id: int | None = None,
    on_iteration=None,
    spec_file: str | os.PathLike | None = None,
    mode: str = "lockstep",
) -> list[IterationResult]:
    """Run the loop; returns the random data (iteration 0) and one result per iteration, also
    saved (after each iteration) as ``returns.json`` and ``returns.png`` in ``out_dir``.

    Args:
        task: a task name, or a :class:`Task` (its env kwargs go to the nodes too).
        iterations: planning iterations k (>= 1).
        episodes_per_iteration: lockstep episodes per iteration (>= 1); iteration ``i`` uses reset
            seeds ``seed + 1000 i``, ``seed + 1000 i + 1``, ...
        seed: seed of the random data (reset seeds ``seed, seed + 1, ...``), the learner and the
            planner.
        out_dir: receives ``bags/``, ``models/``, ``logs/`` and the curve (must not hold bags
            yet).
        initial_random_steps: at most this many random-policy transitions (whole episodes).
        learner: extra learner node parameters (epochs, hid_size, members, patience, ...).
        torch_threads: torch threads of the controller and the learner.
        timeout: seconds allowed for each wait (start-up, a training job, an iteration).
        domain_id: ROS domain of the graph; default ``$ROS_DOMAIN_ID`` (else 0).
        on_iteration: called with each :class:`IterationResult` as it is done.
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

    def report(result: IterationResult) -> None:
        results.append(result)
        save_curve(results, out, spec.name)
        if on_iteration is not None:
            on_iteration(result)

    random_bag = bags / "random"
    report(
        write_random_bag(
            spec, initial_random_steps, seed, random_bag, robot.specs if robot else None
        )
    )
    with LockstepGraph(out / "logs", timeout, domain_id) as graph:
        graph.start(
            "learner",
            {
                **(learner or {}),
                "what": "dynamics",
                **task_parameters(spec),
                "sources": f"['{bags}']",
                "output_dir": str(out / "models"),
                "seed": seed,
                "torch_threads": torch_threads,
                **(robot.learner() if robot else {}),
            },
        )
        checkpoint = graph.train()
        graph.start(
            "controller",
            {
                **task_parameters(spec),
                "checkpoint": checkpoint,
                "actor": "cem",
                "mode": "lockstep",
                "seed": seed,
                "torch_threads": torch_threads,
                **(robot.controller(timeout) if robot else {}),
            },
            params_file=parameter_file(spec.name),
        )
        for iteration in range(1, iterations + 1):
            start = time.perf_counter()
            # (a robot-mode controller is configured by its first run)
            model = graph.wait_for_model(checkpoint) if robot is None or iteration > 1 else ""
            bag = bags / f"iteration-{iteration:02d}"
            episode_seed, suffix = seed + 1000 * iteration, f"_{iteration}"
            if robot is None:
                run = graph.run_episodes(
                    spec, episodes_per_iteration, episode_seed, bag, suffix=suffix
                )
            else:
                run = graph.run_robot_episodes(
                    spec, robot, episodes_per_iteration, episode_seed, bag, suffix=suffix
                )
                model = model or run.control.get("model", "")
            if run.control.get("model") != model:
                raise LearnedControlError(
                    f"iteration {iteration} ran {run.control.get('model')}, not {model}"
                )
            trained_on = int(load_checkpoint(checkpoint).metadata["transitions"])
            if iteration < iterations:
                checkpoint = graph.train()  # the controller swaps it in from model_updated
            report(
                IterationResult(
                    iteration, model, trained_on, run.result, str(bag), time.perf_counter() - start
                )
            )
    return results
