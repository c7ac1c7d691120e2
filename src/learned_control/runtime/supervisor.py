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
from dataclasses import dataclass, field
from typing import IO, TextIO, cast

from ..errors import ConfigError

__all__ = ["ProcessSpec", "supervise", "stop_processes", "die_with_parent"]


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


def stop_processes(procs: dict[str, subprocess.Popen], grace_s: float) -> None:
    """SIGINT every live child, wait ``grace_s``, then SIGTERM, then SIGKILL."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        live = [p for p in procs.values() if p.poll() is None]
        for p in live:
            p.send_signal(sig)
        deadline = time.monotonic() + grace_s
        for p in live:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        if all(p.poll() is not None for p in procs.values()):
            return


def _pipe(key: selectors.SelectorKey) -> IO[bytes]:
    """The child stdout pipe a selector key was registered with."""
    return cast(IO[bytes], key.fileobj)


def supervise(specs: list[ProcessSpec], out: TextIO = sys.stdout, grace_s: float = 10.0) -> int:
    """Start ``specs`` and stream their output as ``[name] line`` until one exits or Ctrl-C.

    Returns:
        0 after Ctrl-C/SIGTERM with every child stopped; otherwise the exit code of the first
        child that ended (1 if it ended with 0: a node is not meant to stop on its own).

    Raises:
        ConfigError: duplicate names or a command that cannot be started (nothing left running).
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"process names must be unique, got {names}")
    procs: dict[str, subprocess.Popen] = {}
    sel = selectors.DefaultSelector()
    # Ctrl-C and SIGTERM both stop the graph, even where SIGINT was inherited ignored (a
    # background job of a non-interactive shell)
    previous = {
        sig: signal.signal(sig, signal.default_int_handler)
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    width = max(map(len, names), default=0)
    try:
        for spec in specs:
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
                stop_processes(procs, grace_s)
                raise ConfigError(f"cannot start {spec.name} ({spec.argv[0]}): {err}") from err
            procs[spec.name] = proc
            assert proc.stdout is not None  # stdout=PIPE above
            sel.register(proc.stdout, selectors.EVENT_READ, spec.name)
        code = None
        while code is None:
            for key, _ in sel.select(timeout=0.5):
                line = _pipe(key).readline()
                if line:
                    out.write(f"[{key.data:<{width}}] {line.decode(errors='replace')}")
                    out.flush()
                else:
                    sel.unregister(key.fileobj)
            for name, proc in procs.items():
                if proc.poll() is not None:
                    out.write(
                        f"[{name:<{width}}] exited with {proc.returncode}; stopping the others\n"
                    )
                    code = proc.returncode or 1
                    break
    except KeyboardInterrupt:
        code = 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_processes(procs, grace_s)
        for key in list(sel.get_map().values()):
            rest = _pipe(key).read()
            if rest:
                out.write(
                    "".join(
                        f"[{key.data:<{width}}] {ln}\n"
                        for ln in rest.decode(errors="replace").splitlines()
                    )
                )
            _pipe(key).close()
        sel.close()
    return code
