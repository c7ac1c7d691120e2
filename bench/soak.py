"""Soak: the realtime graph for minutes, then the robot-mode controller at rising input rates.

1. Two realtime graphs, one after the other, each started as a user does (``learned-control up
   --mode realtime``) and watched by an observer node in this process for ``--minutes`` each:
   InvertedPendulum-v5 with a policy and the recorder (``--record``), and Reacher-v5 with the
   CEM planner (``--actor cem``). Per minute it prints the bridge's achieved rate (its own step
   count on ``/diagnostics`` over the minute) against its configured rate, the tick jitter p99 (the
   99th percentile of ``|interval - period|`` between ``applied_command`` and between ``command``
   messages, seen by the observer, so DDS delivery is included), missed ticks (intervals longer
   than 1.5 periods, on the bridge's and on the controller's stream), each node's resident
   memory (``VmRSS`` of ``/proc/<pid>/status``) and the bag's size on disk.
   Targets: rate within 1% every minute, resident memory growth <= 5 MB from the end of the first
   minute to the end, and no missed tick on the policy graph.
2. The controller alone in robot mode (``spec_file``: Reacher-v5's exported spec, lockstep:
   one command per input stamp) with a policy, fed by this process as a robot would: every input
   is a ``/joint_states`` message with the fingertip pose and the goal of the same stamp, replayed
   from a seeded Reacher episode, at 100, 250 and 500 Hz for ``--robot-seconds`` each. Prints
   commands per input, input-to-command latency p50/p99 (from publishing an input's last message
   to its command arriving here; the input's index rides in the goal's x, which the controller's
   ``assembled_observation``, published just before each command, carries) and dropped inputs
   (inputs without a command). Target: at 500 Hz none dropped and
   latency p99 <= 1 ms.

The models are seeded and untrained (timing and memory do not depend on the weights): an MLP
policy per task and a dynamics ensemble of :class:`EnsembleDynamics`' default size for the
planner.
Writes ``soak.png`` (rate, memory and latency) and the bag into ``--out`` (default: a new
temporary folder), and exits non-zero when a target is missed. Runs in ``$ROS_DOMAIN_ID`` (give
it a domain of its own).

Usage: ``python bench/soak.py [--minutes 10] [--robot-seconds 10] [--out DIR]``
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import torch  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from learned_control import topics  # noqa: E402
from learned_control.checkpoint import save_checkpoint  # noqa: E402
from learned_control.models.dynamics import EnsembleDynamics  # noqa: E402
from learned_control.ros import qos  # noqa: E402
from learned_control.ros.robot_msgs import MSG_TYPES, msg_from_sample, to_stamp  # noqa: E402
from learned_control.specs import default_specs, driver_samples, dump_specs  # noqa: E402
from learned_control.tasks import get_task  # noqa: E402
from learned_control.training.bc import mlp_policy_for  # noqa: E402

CLI = [sys.executable, "-c", "import sys; from learned_control.cli import main; sys.exit(main())"]
RATE_TOLERANCE = 0.01
RSS_GROWTH_MB = 5.0
ROBOT_RATES = (100, 250, 500)
ROBOT_TARGET_HZ, LATENCY_P99_MS = 500, 1.0
GOAL_X = 4  # Reacher-v5's observation: cos q (2), sin q (2), target x, y, ...
GOAL_BASE, GOAL_STEP = 0.1, 1e-6  # robot mode: input k's goal x (m)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (``VmRSS``); NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def node_pids(up_pid: int) -> dict[str, int]:
    """``{node module: pid}`` of the children of ``up``."""
    pids = {}
    for child in Path(f"/proc/{up_pid}/task/{up_pid}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_text().split("\0")
        module = next((a for a in argv if a.startswith("learned_control.ros.")), None)
        if module:
            pids[module.rsplit(".", 1)[1]] = int(child)
    return pids


def dir_mb(path: Path) -> float:
    """Size of the files under ``path`` in MB (0 before it exists)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def jitter_missed(stamps: list[float], period: float) -> tuple[float, int]:
    """``(p99 of |interval - period| in ms, intervals > 1.5 periods)``."""
    if len(stamps) < 2:
        return float("nan"), 0
    gaps = np.diff(stamps)
    return 1e3 * float(np.percentile(np.abs(gaps - period), 99)), int(np.sum(gaps > 1.5 * period))


class Observer:
    """Arrival times of ``applied_command`` and of the controller's commands, and the bridge's
    step count from its ``/diagnostics`` (``(arrival, steps)``)."""

    def __init__(self, node: Node, command_topic: str = topics.COMMAND) -> None:
        self.applied: list[float] = []
        self.commands: list[float] = []
        self.steps: list[tuple[float, int]] = []
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics,
                                 qos.RELIABLE)
        node.create_subscription(Float64MultiArray, topics.APPLIED_COMMAND,
                                 lambda _: self.applied.append(time.monotonic()), qos.RELIABLE)
        node.create_subscription(Float64MultiArray, command_topic,
                                 lambda _: self.commands.append(time.monotonic()), qos.RELIABLE)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": bridge"):
                steps = next((kv.value for kv in status.values if kv.key == "steps"), None)
                if steps is not None:
                    self.steps.append((time.monotonic(), int(steps)))

    def step_rate(self, lo: float, hi: float) -> float:
        """The bridge's steps per second between its reports nearest to ``lo`` and ``hi``."""
        first = min(self.steps, key=lambda s: abs(s[0] - lo))
        last = min(self.steps, key=lambda s: abs(s[0] - hi))
        return (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else float("nan")


def soak_graph(name: str, args: list[str], period: float, minutes: int, out: Path,
               node: Node, executor, bag: Path | None) -> dict:
    """Run ``up <args>`` for ``minutes`` after its first applied command; per-minute rows."""
    obs = Observer(node)
    log = out / f"{name}.log"
    with open(log, "w") as f:
        up = subprocess.Popen(CLI + ["up", *args], stdout=f, stderr=subprocess.STDOUT)
    rows, rss_trace = [], []
    try:
        deadline = time.monotonic() + 300
        while len(obs.commands) < 5:
            if up.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name}: the graph did not start:\n{log.read_text()[-3000:]}")
            executor.spin_once(timeout_sec=0.05)
        pids = node_pids(up.pid)
        start = time.monotonic()
        next_sample = start
        print(f"\n{name}: up {' '.join(args)}  (period {1e3 * period:.0f} ms, nodes {pids})")
        print(f"{'min':>3} {'rate Hz':>8} {'vs cfg':>7} {'jit p99 ms':>10} {'ctl jit':>8} "
              f"{'missed':>6} {'ctl miss':>8}  " + " ".join(f"{n + ' MB':>12}" for n in pids)
              + f"  {'bag MB':>7}")
        for minute in range(1, minutes + 1):
            end = start + 60 * minute
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
                if time.monotonic() >= next_sample:
                    rss_trace.append((time.monotonic() - start,
                                      {n: rss_mb(p) for n, p in pids.items()}))
                    next_sample += 5.0
                if up.poll() is not None:
                    raise SystemExit(f"{name}: up ended:\n{log.read_text()[-3000:]}")
            lo = end - 60
            applied = [t for t in obs.applied if lo <= t < end]
            commands = [t for t in obs.commands if lo <= t < end]
            rate = obs.step_rate(lo, end)
            jit, missed = jitter_missed(applied, period)
            cjit, cmissed = jitter_missed(commands, period)
            rss = {n: rss_mb(p) for n, p in pids.items()}
            rows.append(dict(minute=minute, rate=rate, ratio=rate * period, jitter=jit,
                             missed=missed, ctl_jitter=cjit, ctl_missed=cmissed, rss=rss,
                             bag=dir_mb(bag) if bag else float("nan")))
            print(f"{minute:>3} {rate:>8.2f} {rate * period:>7.3f} {jit:>10.2f} {cjit:>8.2f} "
                  f"{missed:>6} {cmissed:>8}  " + " ".join(f"{v:>12.1f}" for v in rss.values())
                  + f"  {rows[-1]['bag']:>7.2f}", flush=True)
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            code = up.wait()
    if code != 0:
        raise SystemExit(f"{name}: up exited with {code}:\n{log.read_text()[-3000:]}")
    return {"rows": rows, "rss": rss_trace}


def graph_verdicts(name: str, result: dict, strict_ticks: bool) -> list[str]:
    """The targets ``result`` missed, in words."""
    rows, missed = result["rows"], []
    for row in rows:
        if abs(row["ratio"] - 1) > RATE_TOLERANCE:
            missed.append(f"{name}: minute {row['minute']} rate {row['ratio']:.3f} of the "
                          f"configured (target within {RATE_TOLERANCE:.0%})")
        if strict_ticks and row["missed"] + row["ctl_missed"]:
            missed.append(f"{name}: minute {row['minute']}: {row['missed']} bridge and "
                          f"{row['ctl_missed']} controller ticks missed (target 0)")
    if len(rows) >= 2:
        for node in rows[0]["rss"]:
            growth = rows[-1]["rss"][node] - rows[0]["rss"][node]
            print(f"{name}: {node} resident memory {rows[0]['rss'][node]:.1f} -> "
                  f"{rows[-1]['rss'][node]:.1f} MB after minute 1 ({growth:+.1f} MB, "
                  f"target <= {RSS_GROWTH_MB:g})")
            if growth > RSS_GROWTH_MB:
                missed.append(f"{name}: {node} grew {growth:.1f} MB after the first minute")
    return missed


def robot_inputs(task_name: str, steps: int, seed: int = 0) -> list[list]:
    """Per step, the driver messages (joint states, poses, goals) of a seeded random episode."""
    task = get_task(task_name)
    spec = default_specs(task_name).observation
    env = task.make_env()
    env.reset(seed=seed)
    env.action_space.seed(seed)
    u = env.unwrapped
    inputs = []
    for _ in range(steps):
        samples = driver_samples(spec, u.model, u.data, 0.0)
        inputs.append([(src, msg_from_sample(src, samples[src.name]))
                       for src in spec.sources if src.topic])
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    return inputs


def robot_mode(node: Node, executor, policy: Path, out: Path, seconds: float) -> list[dict]:
    """The controller alone in robot mode, fed at each rate of :data:`ROBOT_RATES`."""
    task_name = "Reacher-v5"
    specs = default_specs(task_name)
    spec_file = out / "reacher-spec.yaml"
    spec_file.write_text(dump_specs(specs))
    inputs = robot_inputs(task_name, 1000)
    pubs = {src.name: node.create_publisher(MSG_TYPES[src.type], src.topic, qos.SENSOR)
            for src, _ in inputs[0]}
    # the controller publishes the observation it assembled, then its command, per answered
    # input; the input's index rides in the goal's x (observation element GOAL_X)
    arrivals: list[float] = []
    answered: list[int] = []
    node.create_subscription(Float64MultiArray, specs.command.topic,
                             lambda _: arrivals.append(time.perf_counter()), qos.RECORDING)
    node.create_subscription(
        Float64MultiArray, topics.ASSEMBLED_OBSERVATION,
        lambda m: answered.append(round((m.data[GOAL_X] - GOAL_BASE) / GOAL_STEP)), qos.RECORDING)
    counter = [0]

    def publish() -> float:
        k = counter[0]
        counter[0] += 1
        stamp = to_stamp(1e-3 * k)  # unique, rising: one command per stamp
        for src, msg in inputs[k % len(inputs)]:
            msg.header.stamp = stamp
            if src.type == "goal":
                msg.point.x = GOAL_BASE + GOAL_STEP * k
            pubs[src.name].publish(msg)
        return time.perf_counter()

    log = out / "robot-controller.log"
    argv = [sys.executable, "-m", "learned_control.ros.controller", "--ros-args",
            "-p", f"task:={task_name}", "-p", f"checkpoint:={policy}", "-p", "mode:=lockstep",
            "-p", f"spec_file:={spec_file}"]
    with open(log, "w") as f:
        ctl = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
    rows = []
    try:
        deadline = time.monotonic() + 120
        while len(arrivals) < 20:  # warm-up at 50 Hz until it commands
            if ctl.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"robot mode: the controller did not command:\n"
                                 f"{log.read_text()[-3000:]}")
            publish()
            end = time.monotonic() + 0.02
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.005)
        executor.spin_once(timeout_sec=0.5)
        if answered[-1] >= counter[0] or answered[-1] < 0:
            raise SystemExit(f"robot mode: element {GOAL_X} is not the goal's x")
        print(f"\nrobot mode: controller alone ({task_name} policy, lockstep on {spec_file.name}"
              f"), inputs from this process for {seconds:g} s per rate")
        print(f"{'input Hz':>8} {'achieved':>8} {'inputs':>7} {'cmd/input':>9} {'dropped':>7} "
              f"{'p50 ms':>7} {'p99 ms':>7}")
        for rate in ROBOT_RATES:
            sent: list[float] = []
            first, first_answer, offset = len(arrivals), len(answered), counter[0]
            stop = threading.Event()

            def feed(rate=rate, sent=sent, stop=stop) -> None:
                period, t = 1.0 / rate, time.perf_counter()
                end = t + seconds
                while t < end and not stop.is_set():
                    sent.append(publish())
                    t += period
                    pause = t - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)

            thread = threading.Thread(target=feed)
            began = time.perf_counter()
            thread.start()
            while thread.is_alive():
                executor.spin_once(timeout_sec=0.01)
            finished = time.perf_counter()
            settle = time.monotonic() + 1.0
            while time.monotonic() < settle:
                executor.spin_once(timeout_sec=0.01)
            got = arrivals[first:]
            inputs_of = [k - offset for k in answered[first_answer:]]
            pairs = min(len(got), len(inputs_of))
            latency = 1e3 * (np.array(got[:pairs]) - np.array(sent)[inputs_of[:pairs]])
            row = dict(rate=rate, achieved=len(sent) / (finished - began), inputs=len(sent),
                       per_input=len(got) / len(sent), dropped=len(sent) - len(got),
                       p50=float(np.percentile(latency, 50)),
                       p99=float(np.percentile(latency, 99)), latency=latency)
            rows.append(row)
            print(f"{rate:>8} {row['achieved']:>8.1f} {row['inputs']:>7} "
                  f"{row['per_input']:>9.3f} {row['dropped']:>7} {row['p50']:>7.3f} "
                  f"{row['p99']:>7.3f}", flush=True)
    finally:
        ctl.send_signal(signal.SIGINT)
        try:
            ctl.wait(30)
        except subprocess.TimeoutExpired:
            ctl.kill()
    return rows


def plot(results: dict[str, dict], robot: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, result in results.items():
        minutes = [r["minute"] for r in result["rows"]]
        axes[0].plot(minutes, [r["ratio"] for r in result["rows"]], "o-", label=name)
        for node in result["rss"][0][1] if result["rss"] else []:
            axes[1].plot([t / 60 for t, _ in result["rss"]], [v[node] for _, v in result["rss"]],
                         label=f"{name}: {node}")
    axes[0].axhspan(1 - RATE_TOLERANCE, 1 + RATE_TOLERANCE, color="g", alpha=0.15)
    axes[0].set(xlabel="minute", ylabel="achieved / configured rate", title="bridge rate")
    axes[1].set(xlabel="minute", ylabel="resident memory (MB)", title="node memory")
    for ax in axes[:2]:
        ax.legend(fontsize=7)
    if robot:
        axes[2].boxplot([r["latency"] for r in robot], whis=(1, 99), showfliers=False)
        axes[2].set_xticks(range(1, len(robot) + 1), [f"{r['rate']} Hz" for r in robot])
    axes[2].axhline(LATENCY_P99_MS, color="r", ls="--", label="p99 target")
    axes[2].set(ylabel="input-to-command latency (ms)", title="robot mode (whiskers p1-p99)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10, help="minutes per graph (default 10)")
    parser.add_argument("--robot-seconds", type=float, default=10.0,
                        help="seconds per input rate in robot mode (default 10)")
    parser.add_argument("--out", default="", help="folder for the plot, logs and the bag")
    args = parser.parse_args()
    if args.minutes < 1 or args.robot_seconds <= 0:
        parser.error("--minutes must be >= 1 and --robot-seconds > 0")
    out = Path(args.out or tempfile.mkdtemp(prefix="soak-"))
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    pendulum, reacher = get_task("InvertedPendulum-v5"), get_task("Reacher-v5")
    pendulum_policy = save_checkpoint(out / "pendulum.pt", mlp_policy_for(pendulum), pendulum.name)
    reacher_policy = save_checkpoint(out / "reacher.pt", mlp_policy_for(reacher), reacher.name)
    dynamics = save_checkpoint(out / "reacher-dynamics.pt",
                               EnsembleDynamics(reacher.obs_dim, reacher.act_dim), task=reacher)

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = Node("soak_observer")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    bag = out / "pendulum-bag"
    results, missed = {}, []
    try:
        results["policy+recorder"] = soak_graph(
            "policy+recorder", ["--task", pendulum.name, "--checkpoint", str(pendulum_policy),
                                "--mode", "realtime", "--record", str(bag)],
            pendulum.dt, args.minutes, out, node, executor, bag)
        missed += graph_verdicts("policy+recorder", results["policy+recorder"], True)
        results["cem"] = soak_graph(
            "cem", ["--task", reacher.name, "--checkpoint", str(dynamics), "--actor", "cem",
                    "--mode", "realtime"], reacher.dt, args.minutes, out, node, executor, None)
        missed += graph_verdicts("cem", results["cem"], False)
        robot = robot_mode(node, executor, reacher_policy, out, args.robot_seconds)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    at_target = next(r for r in robot if r["rate"] == ROBOT_TARGET_HZ)
    if at_target["dropped"] or at_target["p99"] > LATENCY_P99_MS:
        missed.append(f"robot mode at {ROBOT_TARGET_HZ} Hz: {at_target['dropped']} dropped, "
                      f"latency p99 {at_target['p99']:.3f} ms (target 0 and <= "
                      f"{LATENCY_P99_MS:g} ms)")
    plot(results, robot, out / "soak.png")
    print(f"\nplot: {out / 'soak.png'}; logs and bag in {out}")
    for line in missed:
        print(f"MISSED: {line}")
    print("all targets met" if not missed else f"{len(missed)} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
