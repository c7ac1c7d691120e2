"""Real rclpy over DDS: each node in its own process, the test process observes.

Every test gets its own ROS_DOMAIN_ID, held under a lock file while it runs, so concurrent test
runs on one machine never share a graph.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 rclpy not installed (pip install -e .[ros])")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from learned_control.ros import services  # noqa: E402
from learned_control.runtime.supervisor import die_with_parent  # noqa: E402
from rclpy.node import Node  # noqa: E402

DOMAINS = range(1, 101)
"""ROS_DOMAIN_IDs the tests use: their DDS ports stay below Linux's ephemeral ports."""

DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "learned_control-ros-domains"
"""One lock file per domain; a process holds a domain while it holds the file's flock."""

COOL_DOWN_S = 30.0
"""A domain released less than this long ago (s) is taken only when no other is free: the
stopped nodes' DDS participants may still be announced in it for a while."""

_cursor = os.getpid()  # where this process starts looking, so processes spread out


def claim_domain() -> tuple[int, int]:
    """``(domain, fd)``: a domain of :data:`DOMAINS` that no other process on this machine holds,
    locked by an exclusive ``flock`` on its lock file (``fd``) until :func:`release_domain` or
    the process ends (the kernel drops the lock even on SIGKILL: no stale locks)."""
    global _cursor
    try:
        DOMAIN_LOCKS.mkdir()
        DOMAIN_LOCKS.chmod(0o1777)  # every user's test runs claim here, as in /tmp
    except FileExistsError:
        pass
    now = time.time()
    ordered = [DOMAINS[(_cursor + i) % len(DOMAINS)] for i in range(len(DOMAINS))]
    for cooled in (True, False):
        for domain in ordered:
            path = DOMAIN_LOCKS / f"{domain}.lock"
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
                if os.fstat(fd).st_uid == os.getuid():
                    os.fchmod(fd, 0o666)  # openable by every user, past the umask
            except OSError:  # another user's lock file it may not open
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by another process (or by this one)
                os.close(fd)
                continue
            released = os.fstat(fd)  # a released domain's file holds a byte, stamped then
            if cooled and released.st_size and now - released.st_mtime < COOL_DOWN_S:
                os.close(fd)  # closing drops the lock
                continue
            _cursor = domain  # the next claim starts after this one
            return domain, fd
    raise RuntimeError(f"every ROS domain in {DOMAINS} is held by another process")


def release_domain(fd: int) -> None:
    """Release a domain from :func:`claim_domain`, stamping its lock file with the time."""
    os.pwrite(fd, b"\n", 0)
    os.close(fd)


class NodeProcess:
    """A node started as ``python -m learned_control.ros.<module> --ros-args -p k:=v ...``."""

    def __init__(self, module: str, params: dict, env: dict, log: Path) -> None:
        args = [f"{k}:={v}" for k, v in params.items()]
        cmd = [sys.executable, "-m", f"learned_control.ros.{module}", "--ros-args"]
        for a in args:
            cmd += ["-p", a]
        self.log = log
        self.proc = subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)  # none outlives a killed pytest

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    @property
    def output(self) -> str:
        return self.log.read_text()


class Graph:
    """Starts node processes and an observer node in one ROS domain; tears everything down."""

    def __init__(self, tmp_path: Path) -> None:
        self.domain, self._domain_lock = claim_domain()
        self.env = {**os.environ, "ROS_DOMAIN_ID": str(self.domain), "PYTHONUNBUFFERED": "1"}
        self.tmp_path = tmp_path
        self.procs: list[NodeProcess] = []
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.domain)
        self.node = Node("test_observer", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def start(self, module: str, **params) -> NodeProcess:
        proc = NodeProcess(module, params, self.env, self.tmp_path / f"{module}-{len(self.procs)}.log")
        self.procs.append(proc)
        return proc

    def spin_until(self, condition, timeout: float, what: str) -> None:
        """Spin the observer until ``condition()`` is true; fail naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.log.name}\n{p.output[-2000:]}" for p in self.procs)
                pytest.fail(f"timed out after {timeout} s waiting for {what}\n{logs}")
            self.executor.spin_once(timeout_sec=0.05)

    def publish_matched(self, pub, msg, timeout: float = 60.0) -> None:
        """Publish ``msg`` once ``pub`` has matched a reader: a lockstep controller reads live
        observations only."""
        self.spin_until(lambda: pub.get_subscription_count() >= 1, timeout,
                        f"a reader of {pub.topic_name}")
        pub.publish(msg)

    def spin_for(self, seconds: float) -> None:
        """Spin the observer for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def call(self, client, request, timeout: float = 20.0, resend: float | None = None):
        """The answer to ``request``; ``resend`` for a request that is safe to repeat
        (:func:`learned_control.ros.services.call`)."""
        return services.call(self.spin_until, client, request, timeout,
                             f"answer of {client.srv_name}", resend)

    def change_state(self, node: str, transition: int, timeout: float = 20.0) -> bool:
        """Whether lifecycle node ``node`` took ``transition`` (a ``Transition`` id), settled by
        its state when the answer is dropped (:func:`learned_control.ros.services.change_state`)."""
        return services.change_state(self.spin_until, self.node, f"/{node}", transition, timeout)

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        release_domain(self._domain_lock)


@pytest.fixture
def graph(tmp_path):
    g = Graph(tmp_path)
    yield g
    g.close()


def diagnostic_values(msg, name_suffix: str) -> dict[str, str] | None:
    """Key/values of the status whose name ends with ``name_suffix`` in a DiagnosticArray."""
    for status in msg.status:
        if status.name.endswith(name_suffix):
            return {kv.key: kv.value for kv in status.values}
    return None


@pytest.fixture(scope="session")
def pendulum_policy(tmp_path_factory) -> Path:
    """A BC policy checkpoint for InvertedPendulum-v5, trained on LQR demonstrations."""
    import numpy as np
    import torch

    from learned_control.checkpoint import save_checkpoint
    from learned_control.evaluation import run_episode
    from learned_control.tasks import get_task
    from learned_control.training.bc import BCConfig, mlp_policy_for, train_bc
    from scripted_experts import PendulumLQR

    task = get_task("InvertedPendulum-v5")
    env = task.make_env()
    env.reset(seed=0)
    expert = PendulumLQR(env)
    obs, act = [], []
    rng = np.random.default_rng(0)

    class Noisy:
        def act(self, o):
            a = expert.act(o)
            obs.append(o)
            act.append(a)
            return np.clip(a + rng.normal(0, 0.1, a.shape), -3, 3)

    for seed in range(100, 105):
        run_episode(Noisy(), env, seed)
    torch.manual_seed(0)
    policy = mlp_policy_for(task)
    train_bc(policy, np.array(obs), np.array(act), BCConfig(epochs=20), progress=False)
    return save_checkpoint(tmp_path_factory.mktemp("policy") / "pendulum.pt", policy, task.name)
