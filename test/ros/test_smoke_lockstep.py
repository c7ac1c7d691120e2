"""Smoke matrix, ROS part: for every env of the matrix the real sim bridge node steps in lockstep
against an answering node over DDS (one process for all envs, in a domain of its own), and what
went through ROS equals an offline rollout with the same seed and actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import claim_domain, release_domain
from learned_control.runtime.supervisor import die_with_parent
from learned_control.tasks import get_task
from smoke_envs import ENVS

pytestmark = [pytest.mark.ros, pytest.mark.smoke]

SCRIPT = Path(__file__).with_name("smoke_lockstep.py")


def test_bridge_steps_in_lockstep_for_every_env(tmp_path):
    domain, lock = claim_domain()
    try:
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run([sys.executable, str(SCRIPT), *ENVS], env=env, text=True,
                              capture_output=True, timeout=300, preexec_fn=die_with_parent)
    finally:
        release_domain(lock)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["env"] for r in rows] == ENVS
    for row in rows:
        assert row["obs_dim"] == get_task(row["env"]).obs_dim, row
        assert row["compared"] >= 2, row  # at least one lockstep step
        assert row["max_obs_error"] <= 1e-9 and row["max_applied_error"] == 0.0, row
