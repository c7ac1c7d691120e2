"""What a SIGKILL of the recorder loses under ``learned-control up --record``.

For each storage: ``up`` with an untrained InvertedPendulum-v5 policy records for ``--seconds``
after its first step,
the recorder is killed with SIGKILL, ``up`` stops the rest; the bag is reindexed and converted
(``bag_to_episodes``), and the time lost is the kill time minus the last recovered message's
stamp (both system clock). Target: at most 1 s (flush interval 0.5 s); exits 1 when missed.

Usage: ``python bench/recorder_kill.py [--seconds 8] [--runs 2]`` (ROS_DOMAIN_ID from the
environment, default 42).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from rosbags.rosbag2 import Reader

from learned_control.checkpoint import save_checkpoint
from learned_control.data.bags import bag_to_episodes, reindex
from learned_control.params import parameter_file
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for

TARGET_S = 1.0
CLI = [sys.executable, "-c", "import sys; from learned_control.cli import main; sys.exit(main())"]


def killed_run(work: Path, storage: str, seconds: float, checkpoint: Path) -> tuple[float, int]:
    """``(seconds lost, episodes recovered)`` of one run."""
    params = yaml.safe_load(parameter_file("InvertedPendulum-v5").read_text())
    params["/**/recorder"]["ros__parameters"]["storage"] = storage
    params_file = work / f"{storage}.yaml"
    params_file.write_text(yaml.safe_dump(params))
    bag = Path(tempfile.mkdtemp(dir=work)) / "bag"
    env = {**os.environ, "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", "42")}
    with open(work / "up.log", "w") as log:
        up = subprocess.Popen(
            CLI + ["up", "--task", "InvertedPendulum-v5", "--checkpoint", str(checkpoint),
                   "--record", str(bag), "--params-file", str(params_file)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "matched: starting" not in (work / "up.log").read_text():  # the first step
        if time.monotonic() > deadline or up.poll() is not None:
            raise SystemExit("up did not start stepping:\n" + (work / "up.log").read_text())
        time.sleep(0.1)
    time.sleep(seconds)
    recorder = int(Path(f"/proc/{up.pid}/task/{up.pid}/children").read_text().split()[0])
    killed = time.time_ns()
    os.kill(recorder, signal.SIGKILL)
    up.wait(60)
    print(reindex(bag))
    with Reader(bag) as reader:
        last = max(stamp for _, stamp, _ in reader.messages())
    return (killed - last) / 1e9, len(bag_to_episodes(bag))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    task = get_task("InvertedPendulum-v5")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        torch.manual_seed(3)
        checkpoint = save_checkpoint(work / "p.pt", mlp_policy_for(task), task.name)
        for storage in ("mcap", "sqlite3"):
            for run in range(args.runs):
                lost, episodes = killed_run(work, storage, args.seconds, checkpoint)
                worst = max(worst, lost)
                print(f"{storage} run {run}: lost {lost:.3f} s (target <= {TARGET_S} s), "
                      f"{episodes} episodes recovered")
    print(f"worst: {worst:.3f} s / target {TARGET_S} s = {worst / TARGET_S:.2f}")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
