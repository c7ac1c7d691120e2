"""Run several processes as one: prefixed log lines, clean shutdown on Ctrl-C or on any death.

Plain ``subprocess`` + ``selectors`` (standard library): honcho, the closest well-kept library,
is not installed here, stops its children with SIGTERM only and has no escalation or exit-code
policy of its own, so it would add a dependency without removing the code that matters.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TextIO, cast

from ..errors import ConfigError

__all__ = [
    "ProcessSpec",
    "supervise",
    "stop_processes",
    "die_with_parent",
    "exit_code",
    "NO_RESPAWN_CODE",
]


def die_with_parent() -> None:
    """``preexec_fn`` for node processes: Linux sends the child SIGTERM when its parent dies
    (even by SIGKILL), so no node outlives the command that started it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ProcessSpec:
    """One child process.

    Attributes:
        name: log prefix (unique).
        argv: the command and its arguments.
        env: extra environment variables.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.argv:
            raise ConfigError(
                f"process spec needs a name and a command, got {self.name!r} {self.argv!r}"
            )


def stop_processes(
    procs: dict[str, subprocess.Popen],
    grace_s: float,
    wait: Callable[[float], None] = time.sleep,
    out: TextIO | None = None,
) -> None:
    """SIGINT every live child, wait ``grace_s``, then SIGTERM, then SIGKILL.

    Args:
        wait: called with a timeout (s) while children are given time to stop; the supervisor
            streams their output there, so no child blocks on a full pipe while shutting down.
        out: where an escalation is reported (``[name] still running after ...``).
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        live = {name: p for name, p in procs.items() if p.poll() is None}
        if not live:
            return
        if sig != signal.SIGINT and out is not None:
            for name in live:
                out.write(
                    f"[{name}] still running {grace_s:g} s after the last signal: {sig.name}\n"
                )
            out.flush()
        for p in live.values():
            p.send_signal(sig)
        deadline = time.monotonic() + grace_s
        while any(p.poll() is None for p in live.values()) and time.monotonic() < deadline:
            wait(0.05)


class _Output:
    """The children's merged stdout/stderr written as ``[name] line``.

    Reads with ``os.read`` on each pipe's descriptor (never a buffered ``readline``, which can
    hold complete lines back until the child writes again) and keeps each child's unfinished line
    until its newline or its end.
    """

    def __init__(self, out: TextIO, width: int) -> None:
        self.out, self.width = out, width
        self.sel = selectors.DefaultSelector()
        self.partial: dict[str, bytes] = {}

    def add(self, name: str, pipe: IO[bytes]) -> None:
        self.sel.register(pipe, selectors.EVENT_READ, name)
        self.partial[name] = b""

    def _lines(self, name: str, data: bytes, final: bool) -> None:
        *lines, rest = (self.partial[name] + data).split(b"\n")
        if final and rest:
            lines.append(rest)
        self.partial[name] = b"" if final else rest
        for line in lines:
            self.out.write(f"[{name:<{self.width}}] {line.decode(errors='replace')}\n")

    def pump(self, timeout: float) -> None:
        """Write the lines that arrive within ``timeout`` seconds."""
        for key, _ in self.sel.select(timeout):
            chunk = os.read(key.fd, 65536)
            if chunk:
                self._lines(key.data, chunk, final=False)
            else:  # the child closed its end: it exited
                self.sel.unregister(key.fileobj)
                self._lines(key.data, b"", final=True)
                cast(IO[bytes], key.fileobj).close()
        self.out.flush()

    def finish(self, name: str | None = None, timeout_s: float = 2.0) -> None:
        """Read the pipe of ``name`` (every pipe if None) to its end, at most ``timeout_s``
        seconds (a grandchild may hold it open), then close it."""
        deadline = time.monotonic() + timeout_s
        while self._open(name) and time.monotonic() < deadline:
            self.pump(0.05)
        for key in [k for k in self.sel.get_map().values() if k.data in self._open(name)]:
            self.sel.unregister(key.fileobj)
            self._lines(key.data, b"", final=True)
            cast(IO[bytes], key.fileobj).close()
        self.out.flush()

    def _open(self, name: str | None) -> list[str]:
        return [k.data for k in self.sel.get_map().values() if name is None or k.data == name]


NO_RESPAWN_CODE = 2
"""Exit code of a node whose configuration is wrong (a bad parameter, a failed configure):
``respawn`` does not restart it, as it would fail again."""


def exit_code(returncode: int) -> int:
    """A child's ``returncode`` as a shell reports it: ``128 + N`` for death by signal ``N``, 1
    for a clean exit (a node is not meant to stop on its own), else the code itself."""
    if returncode < 0:
        return 128 - returncode
    return returncode or 1


def supervise(
    specs: list[ProcessSpec],
    out: TextIO = sys.stdout,
    grace_s: float = 10.0,
    respawn: bool = False,
    respawn_delay_s: float = 1.0,
) -> int:
    """Start ``specs`` and stream their output as ``[name] line`` until one exits or Ctrl-C.

    Args:
        respawn: restart a child that ended (after ``respawn_delay_s`` seconds) instead of
            stopping the others, as ``ros2 launch``'s ``respawn`` does; a child that ended with
            :data:`NO_RESPAWN_CODE` (its configuration is wrong) still stops the graph.

    Returns:
        0 after Ctrl-C/SIGTERM with every child stopped; otherwise the :func:`exit_code` of the
        first child that ended and was not respawned.

    Raises:
        ConfigError: duplicate names or a command that cannot be started (nothing left running).
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"process names must be unique, got {names}")
    procs: dict[str, subprocess.Popen] = {}
    # Ctrl-C and SIGTERM both stop the graph, even where SIGINT was inherited ignored (a
    # background job of a non-interactive shell)
    previous = {
        sig: signal.signal(sig, signal.default_int_handler)
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    width = max(map(len, names), default=0)

    output = _Output(out, width)

    def start(spec: ProcessSpec) -> None:
        try:
            proc = subprocess.Popen(
                spec.argv,
                env={**os.environ, **spec.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as err:
            stop_processes(procs, grace_s, output.pump, out)
            raise ConfigError(f"cannot start {spec.name} ({spec.argv[0]}): {err}") from err
        procs[spec.name] = proc
        assert proc.stdout is not None  # stdout=PIPE above
        output.add(spec.name, proc.stdout)

    by_name = {spec.name: spec for spec in specs}
    try:
        for spec in specs:
            start(spec)
        code = None
        while code is None:
            output.pump(0.5)
            for name, proc in procs.items():
                if proc.poll() is None:
                    continue
                output.finish(name)  # its last words before the verdict
                again = respawn and proc.returncode != NO_RESPAWN_CODE
                rc = proc.returncode
                how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with {rc}"
                out.write(
                    f"[{name:<{width}}] {how}; "
                    + (
                        f"respawning in {respawn_delay_s:g} s\n"
                        if again
                        else "stopping the others\n"
                    )
                )
                out.flush()
                if not again:
                    code = exit_code(proc.returncode)
                    break
                time.sleep(respawn_delay_s)
                start(by_name[name])
                break  # procs changed
    except KeyboardInterrupt:
        code = 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_processes(procs, grace_s, output.pump, out)
        output.finish()
        output.sel.close()
    return code
