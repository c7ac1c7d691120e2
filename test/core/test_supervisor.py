"""Supervisor with real child processes (small python scripts)."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from learned_control.errors import ConfigError
from learned_control.runtime.supervisor import ProcessSpec, supervise

PY = sys.executable


def _script(tmp_path, name, body):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return [PY, "-u", str(path)]


def test_a_dying_child_stops_the_others_and_the_code_is_nonzero(tmp_path):
    marker = tmp_path / "stopped"
    sleeper = _script(tmp_path, "sleeper", f"""
        import signal, sys, time
        def bye(*_):
            open({str(marker)!r}, "w").write("sigint")
            sys.exit(0)
        signal.signal(signal.SIGINT, bye)
        print("ready")
        while True:
            time.sleep(1)
        """)
    dier = _script(tmp_path, "dier", """
        print("about to die")
        raise SystemExit(3)
        """)
    out = io.StringIO()
    assert supervise([ProcessSpec("sleeper", sleeper), ProcessSpec("dier", dier)], out) == 3
    text = out.getvalue()
    assert "[dier   ] about to die" in text and "[dier   ] exited with 3" in text
    assert marker.read_text() == "sigint"  # the survivor got SIGINT and ran its handler


def test_a_child_ignoring_sigint_is_escalated(tmp_path):
    stubborn = _script(tmp_path, "stubborn", """
        import signal, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
        """)
    dier = _script(tmp_path, "dier", "raise SystemExit(0)\n")
    out = io.StringIO()
    assert supervise([ProcessSpec("stubborn", stubborn), ProcessSpec("dier", dier)],
                     out, grace_s=0.5) == 1  # a clean exit of a node is still a death
    text = out.getvalue()
    assert text.index("[stubborn] still running 0.5 s after the last signal: SIGTERM") < text.index(
        "[stubborn] still running 0.5 s after the last signal: SIGKILL")


def test_every_line_is_written_as_it_comes_and_the_last_one_even_unterminated(tmp_path):
    """Two lines in one write are both shown while the child still runs (a buffered readline
    would hold the second back until the child wrote again); a last line with no newline is
    written when the child ends."""
    quiet = _script(tmp_path, "quiet", """
        import sys, time
        sys.stdout.write("first\\nsecond\\n")
        sys.stdout.flush()
        time.sleep(1.5)
        sys.stdout.write("last words")
        """)
    out = io.StringIO()
    start = time.monotonic()
    lines: list[tuple[float, str]] = []

    class Timed(io.StringIO):
        def write(self, text):
            lines.append((time.monotonic() - start, text))
            return out.write(text)

    assert supervise([ProcessSpec("quiet", quiet)], Timed()) == 1
    when = {text.strip(): t for t, text in lines}
    assert when["[quiet] second"] < 1.5  # shown before the child wrote again
    assert "[quiet] last words" in when


def _supervisor_with_two_children(tmp_path) -> tuple[subprocess.Popen, Path]:
    """A supervisor process running two children that write their pids to the returned file;
    returns once both children are up."""
    children = tmp_path / "pids"
    child = _script(tmp_path, "child", f"""
        import os, time
        open({str(children)!r}, "a").write(f"{{os.getpid()}}\\n")
        print("up", flush=True)
        while True:
            time.sleep(1)
        """)
    runner = _script(tmp_path, "runner", f"""
        import sys
        from learned_control.runtime.supervisor import ProcessSpec, supervise
        sys.exit(supervise([ProcessSpec("a", {child!r}), ProcessSpec("b", {child!r})]))
        """)
    proc = subprocess.Popen(runner, stdout=subprocess.PIPE, text=True)
    ups = 0
    while ups < 2:
        line = proc.stdout.readline()
        assert line, "supervisor ended before both children were up"
        ups += line.rstrip().endswith("up")
    return proc, children


def test_sigint_to_the_supervisor_stops_everything_cleanly(tmp_path):
    proc, children = _supervisor_with_two_children(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    for pid in map(int, children.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_bad_specs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        supervise([ProcessSpec("a", ["true"]), ProcessSpec("a", ["true"])])
    with pytest.raises(ConfigError, match="cannot start b"):
        supervise([ProcessSpec("b", [str(tmp_path / "missing")])])


def _gone(pid: int) -> bool:
    """No such process, or only its zombie left for init to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_killed_supervisor(tmp_path):
    """SIGKILL leaves the supervisor no chance to stop its children: they end by themselves."""
    proc, children = _supervisor_with_two_children(tmp_path)
    proc.kill()
    proc.wait(30)
    pids = list(map(int, children.read_text().split()))
    deadline = time.monotonic() + 30
    while not all(map(_gone, pids)):
        assert time.monotonic() < deadline, f"children {pids} outlived their supervisor"
        time.sleep(0.05)


def test_respawn_restarts_a_dead_child_but_not_one_whose_configuration_is_wrong(tmp_path):
    """First run: killed by SIGKILL (respawned); second run: exit code 2, a configuration error,
    which stops the graph with that code."""
    marker = tmp_path / "ran"
    flaky = _script(tmp_path, "flaky", f"""
        import os, pathlib, signal
        marker = pathlib.Path({str(marker)!r})
        if not marker.exists():
            marker.write_text("once")
            print("first run")
            os.kill(os.getpid(), signal.SIGKILL)
        print("second run")
        raise SystemExit(2)
        """)
    out = io.StringIO()
    assert supervise([ProcessSpec("flaky", flaky)], out, respawn=True, respawn_delay_s=0.1) == 2
    text = out.getvalue()
    assert text.index("[flaky] first run") < text.index(
        "[flaky] killed by SIGKILL; respawning in 0.1 s") < text.index("[flaky] second run")
    assert "[flaky] exited with 2; stopping the others" in text


def test_a_child_killed_by_a_signal_exits_with_128_plus_its_number(tmp_path):
    killed = _script(tmp_path, "killed", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n")
    out = io.StringIO()
    assert supervise([ProcessSpec("killed", killed)], out) == 128 + signal.SIGKILL
    assert "[killed] killed by SIGKILL; stopping the others" in out.getvalue()
