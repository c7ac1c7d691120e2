"""The package as a user gets it: a wheel installed into a fresh virtualenv, run from a folder
outside the checkout, finds its parameter files (package data) and its specs.

The virtualenv has no packages of its own but the wheel: a ``.pth`` file lends it the running
environment's site-packages (torch, mujoco, rclpy, ...) without the checkout's ``src``, so the
``learned_control`` it imports is the installed wheel's. The ROS libraries' search path comes with
the environment the running interpreter was started in.
"""

from __future__ import annotations

import shutil
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.install]
ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "package.xml", "resource", "launch", "src")


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtualenv with the checkout's wheel installed; its site-packages also see the
    running environment's (a .pth line), never the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "tree"  # a copy, so no build/ or egg-info lands in the checkout
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(source, tree / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"),
                          str(tree)], check=True, cwd=work)
    wheel, = (work / "dist").glob("learned_control-*.whl")
    env_dir = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    lent = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(own, "borrowed.pth").write_text("".join(f"{p}\n" for p in lent))
    subprocess.run(pip + ["--python", str(python), "install", "--no-deps", "--no-index",
                          str(wheel)], check=True)
    return env_dir


def _env(graph_env: dict) -> dict:
    """The environment of a user's shell: no PYTHONPATH (the tests put the checkout there)."""
    return {k: v for k, v in graph_env.items() if k != "PYTHONPATH"}


def test_the_installed_wheel_finds_its_files_outside_the_checkout(venv, graph, tmp_path):
    env = _env(graph.env)
    python, cli = venv / "bin" / "python", venv / "bin" / "learned-control"
    where = subprocess.run(
        [str(python), "-c", "import learned_control, learned_control.params as p; print("
                            "learned_control.__file__); print(p.parameter_file('Hopper-v5'))"],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout.split()
    assert Path(where[0]).is_relative_to(venv) and not Path(where[0]).is_relative_to(ROOT)
    assert Path(where[1]) == Path(where[0]).parent / "config" / "Hopper-v5.yaml"
    assert (venv / "share" / "learned_control" / "config" / "diagnostics_agg.yaml").is_file()
    assert (venv / "share" / "learned_control" / "launch" / "sim.launch.py").is_file()

    spec = subprocess.run([str(cli), "export-spec", "HalfCheetah-v5"], cwd=tmp_path, env=env,
                          check=True, capture_output=True, text=True).stdout
    assert yaml.safe_load(spec)["task"] == "HalfCheetah-v5"  # the packaged spec file

    log = tmp_path / "up.log"
    with open(log, "w") as out:
        up = subprocess.Popen([str(cli), "up", "--bridge-only", "--task", "InvertedPendulum-v5",
                               "--namespace", "wheel"], cwd=tmp_path, env=env, stdout=out,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "configured InvertedPendulum-v5" not in log.read_text():
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0, log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
    first = log.read_text().splitlines()[0]
    params = first.split(" with ")[1].split(",")[0]
    assert first.startswith("up: InvertedPendulum-v5 (lockstep; sim_bridge under /wheel)")
    assert Path(params) == Path(where[0]).parent / "config" / "InvertedPendulum-v5.yaml"
    assert "Traceback" not in log.read_text()
