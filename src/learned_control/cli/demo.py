"""``learned-control demo``: expert -> Minari dataset -> behavior cloning -> evaluation table,
then the BC policy through the ROS node graph (bridge + controller + recorder, lockstep).

The main job behind ``make demo``: every stage is a call to a core function (the graph stage to
:func:`learned_control.ros.graph_run.run_lockstep_graph`), so the same pipeline runs from Python,
from this command and through the ROS nodes. Without rclpy the graph stage is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from ..actors import RandomActor, load_sb3_expert
from ..data.bags import bag_to_episodes
from ..data.minari_io import load_transitions
from ..evaluation import EvalResult, evaluate
from ..training.bc import BCConfig, mlp_policy_for, train_bc_run
from ..training.experts import collect_dataset, train_expert
from ..utils import config_from, configure_torch, new_run_dir, resolve_device, seed_everything
from .common import add_bc_args, add_expert_args, add_runtime_args, add_task_arg, task_from_args
from .evaluate import format_success

__all__ = ["add_arguments", "run", "percent", "normalized_score"]


HELP = "expert -> Minari dataset -> BC -> evaluation table (the README's main job)"

DESCRIPTION = """Train an SB3 expert, collect a local Minari dataset with it, train a BC policy on
that dataset, then evaluate expert, BC and a random policy on the same seeded episodes and print a
table. Outputs go in a run directory."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_arg(parser)
    add_expert_args(parser, "--expert-steps", what="expert ")
    parser.add_argument(
        "--collect-episodes",
        type=int,
        default=20,
        help="expert episodes recorded into the dataset (default: %(default)s)",
    )
    parser.add_argument(
        "--noise-std",
        type=float,
        default=0.0,
        help="action noise during collection, fraction of the half-range (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=10,
        help="seeded evaluation episodes per policy (default: %(default)s)",
    )
    parser.add_argument(
        "--no-ros",
        action="store_true",
        help="skip running the BC policy through the ROS node graph",
    )
    add_bc_args(parser)
    parser.set_defaults(epochs=30)
    add_runtime_args(parser)


def percent(policy: float, expert: float) -> float:
    """Policy return as a percentage of the expert's return."""
    return 100.0 * policy / expert


def normalized_score(policy: float, expert: float, random: float) -> float:
    """``100 * (policy - random) / (expert - random)``: meaningful when returns can be negative."""
    return 100.0 * (policy - random) / (expert - random)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    start = time.perf_counter()
    configure_torch(args.torch_threads)
    device = resolve_device(args.device)
    config = config_from(BCConfig, args)
    task = task_from_args(args)
    run_dir = new_run_dir(args.runs_dir, "demo")
    console = Console()
    console.print(f"run directory: {run_dir}")
    stages: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        stages[name] = time.perf_counter() - t0
        console.print(f"[bold]{name}[/bold] done in {stages[name]:.1f} s")

    t0 = time.perf_counter()
    model = train_expert(
        task,
        args.algo,
        args.expert_steps,
        args.seed,
        str(device),
        tensorboard_log=run_dir / "expert_tensorboard",
    )
    model.save(run_dir / "expert.zip")
    expert = load_sb3_expert(run_dir / "expert.zip", task, device=str(device))  # the safe path
    stage("expert", t0)

    t0 = time.perf_counter()
    dataset_id = f"learned_control/{run_dir.name}-v0"
    collect_dataset(
        expert,
        task,
        dataset_id,
        args.collect_episodes,
        seed=10_000 + args.seed,
        noise_std=args.noise_std,
        algorithm_name=f"{expert.algo} expert",
    )
    console.print(f"dataset: {dataset_id}")
    stage("collect", t0)

    t0 = time.perf_counter()
    transitions, env = load_transitions(dataset_id, task)
    seed_everything(args.seed)
    policy = mlp_policy_for(task, args.hid_size, args.num_layers, args.activation)
    _, ckpt = train_bc_run(
        policy,
        transitions,
        task,
        config,
        run_dir,
        device,
        metadata={"source": dataset_id, "source_kind": "minari"},
    )
    console.print(f"policy: {ckpt}")
    stage("train-bc", t0)

    t0 = time.perf_counter()
    results: dict[str, EvalResult] = {}
    random = RandomActor(task.action_low, task.action_high, seed=args.seed)
    for name, actor in (("expert", expert), ("BC", policy), ("random", random)):
        results[name] = evaluate(actor, env, args.eval_episodes, args.seed, progress=True)
    stage("evaluate", t0)

    graph = None
    if args.no_ros:
        pass
    elif importlib.util.find_spec("rclpy") is None:
        console.print(
            "ROS 2 (rclpy) is not installed: skipping the node graph "
            "(pip install -e '.[ros]' adds it)"
        )
    else:
        from ..ros.graph_run import run_lockstep_graph

        t0 = time.perf_counter()
        console.print(
            "running BC through the node graph (sim_bridge + controller + recorder, "
            f"lockstep); node logs in {run_dir / 'logs'}"
        )
        graph = run_lockstep_graph(
            task,
            ckpt,
            args.eval_episodes,
            args.seed,
            run_dir / "logs",
            bag=run_dir / "bag",
            torch_threads=args.torch_threads or 1,
        )
        results["BC via ROS"] = graph.result
        stage("ros-graph", t0)

    exp, rnd = results["expert"].mean, results["random"].mean
    table = Table(
        title=f"{task.name}: behavior cloning vs its expert "
        f"({args.eval_episodes} seeded episodes each)"
    )
    for col in ("policy", "mean return", "std", "% of expert", "normalized score", "success"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    order = ("expert", "BC", "BC via ROS", "random")
    for name, res in sorted(results.items(), key=lambda item: order.index(item[0])):
        table.add_row(
            name,
            f"{res.mean:.1f}",
            f"{res.std:.1f}",
            f"{percent(res.mean, exp):.1f}",
            f"{normalized_score(res.mean, exp, rnd):.1f}",
            format_success(res.success_rate),
        )
    console.print(table)
    if graph is not None:
        offline, ros = results["BC"], graph.result
        # counts may differ when the graph failed; the lengths check below reports that
        gap = max(abs(a - b) for a, b in zip(offline.returns, ros.returns, strict=False))
        assert graph.bag is not None  # run with bag= above
        recorded = bag_to_episodes(graph.bag, task)
        console.print(
            f"through ROS (lockstep): {1 / graph.seconds_per_step:.0f} steps/s, controller "
            f"latency p50 {float(graph.control['p50_ms']):.3f} ms, p99 "
            f"{float(graph.control['p99_ms']):.3f} ms; returns equal offline BC: "
            f"{'yes' if gap <= 1e-6 and ros.lengths == offline.lengths else 'NO'} "
            f"(max |difference| {gap:.2g}); bag {graph.bag}: {len(recorded)} episodes, "
            f"{sum(len(ep) for ep in recorded)} steps"
        )
    console.print("stage times: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    console.print(f"wall time: {time.perf_counter() - start:.1f} s")
    console.print(
        "normalized score = 100 x (policy - random) / (expert - random), random "
        "measured in this run"
    )
    return 0
