"""What every node shares: parameters from config dataclasses, diagnostics, the main() shape."""

from __future__ import annotations

import dataclasses
import inspect
import re
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import (
    ConditionReachedException,
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
    TimeoutObject,
)
from rclpy.experimental import EventsExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from .. import topics
from ..errors import ConfigError
from ..runtime.diagnostics import ERROR, Status, plain_text
from ..runtime.supervisor import NO_RESPAWN_CODE
from ..utils import configure_torch
from . import qos

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ManagedNode",
    "PoolExecutor",
    "declare_config",
    "read_config",
    "diagnostic_status",
    "publish_diagnostics",
    "run_node",
    "array_msg",
]

C = TypeVar("C", bound="DataclassInstance")


class PoolExecutor(MultiThreadedExecutor):
    """rclpy's MultiThreadedExecutor, except that a callback handed to the thread pool is not
    handed over again before a worker has started it.

    rclpy's own (7.1, the pinned one) yields a task that waits in the pool's queue as ready
    work, again and again: the dispatching thread spins at 100% CPU, holds the GIL and starves
    the workers (a 25 Hz controller was measured at 4 Hz; rclpy issue 1452, fixed upstream by
    rclpy pull request 1547).
    """

    def _spin_once_impl(
        self,
        timeout_sec: float | TimeoutObject | None = None,
        wait_condition: Callable[[], bool] = lambda: False,
    ) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (
            ExternalShutdownException,
            ShutdownException,
            TimeoutException,
            ConditionReachedException,
        ):
            return
        started = threading.Event()

        def run() -> None:
            started.set()
            handler()

        self._executor.submit(run)
        self._futures.append(handler)
        # a free worker takes it at once; with none free nothing else could run anyway (bounded,
        # so that a stop request is still seen)
        started.wait(1.0)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # raise any exceptions


DIAGNOSTICS_PERIOD_S = 1.0
"""Seconds between two ``/diagnostics`` messages of a node."""


def _attribute_docs(cls: type) -> dict[str, str]:
    """``name -> description`` from the ``Attributes:`` section of a Google-style docstring."""
    doc = inspect.getdoc(cls) or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    docs: dict[str, str] = {}
    for match in re.finditer(r"^\s{4}(\w+): (.*(?:\n\s{8}.*)*)", section, re.M):
        docs[match.group(1)] = " ".join(match.group(2).split())
    return docs


def declare_config(node: Node, cls: type[C], read_only: tuple[str, ...] = ()) -> None:
    """Declare one parameter per field of the dataclass ``cls``, default and description included,
    with the field's ``metadata["range"]`` as the descriptor's range; a set that the config's own
    validation refuses is rejected with its message. A start-up override of the wrong type or
    out of range raises ConfigError naming the parameter.

    Each default therefore exists once, in the core config dataclass.
    """
    docs = _attribute_docs(cls)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{f.name} has no default: a parameter needs one")
        # rclpy types an empty list as a byte array; let the config's own check type it instead
        descriptor = ParameterDescriptor(
            description=docs.get(f.name, ""),
            read_only=f.name in read_only,
            dynamic_typing=default == [],
        )
        if "range" in f.metadata:
            low, high = f.metadata["range"]
            if isinstance(default, float):
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high))
                ]
            else:
                descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
        try:
            node.declare_parameter(f.name, default, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as err:
            raise ConfigError(f"parameter {f.name}: {err}") from None  # a start-up override
    names = {f.name for f in dataclasses.fields(cls)}

    def validate(params) -> SetParametersResult:
        changed = {p.name: p.value for p in params if p.name in names}
        if changed:
            try:
                cls(**{**{n: node.get_parameter(n).value for n in names}, **changed})
            except ConfigError as err:
                return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(validate)


def read_config(node: Node, cls: type[C]) -> C:
    """Build ``cls`` from the node's current parameters (ConfigError names a bad value)."""
    values = {f.name: node.get_parameter(f.name).value for f in dataclasses.fields(cls)}
    return cls(**values)


def array_msg(values, label: str = "") -> Float64MultiArray:
    """A 1-D Float64MultiArray; ``label`` goes into ``layout.dim[0].label``."""
    msg = Float64MultiArray()
    msg.data = [float(v) for v in values]
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(msg.data), stride=len(msg.data))]
    return msg


def diagnostic_status(node: Node, name: str, status: Status) -> DiagnosticStatus:
    """``status`` as a DiagnosticStatus named ``<node>: <name>`` (``<namespace>/<node>: <name>``
    in a namespace, so that two robots' statuses stay apart), message and values as plain text
    (:func:`~learned_control.runtime.diagnostics.plain_text`)."""
    return DiagnosticStatus(
        level=bytes([status.level]),
        name=f"{node.get_fully_qualified_name().lstrip('/')}: {name}",
        message=plain_text(status.message),
        hardware_id=node.get_fully_qualified_name(),
        values=[KeyValue(key=k, value=plain_text(v)) for k, v in status.values.items()],
    )


def publish_diagnostics(node: Node, publisher: Publisher, statuses: dict[str, Status]) -> None:
    """Publish one DiagnosticArray of ``{name: status}``, stamped with the node's clock."""
    msg = DiagnosticArray(
        status=[diagnostic_status(node, name, status) for name, status in statuses.items()]
    )
    msg.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(msg)


class ManagedNode(LifecycleNode, Generic[C]):
    """A lifecycle node configured by the dataclass ``config``: one parameter per field (see
    :func:`declare_config`) plus ``autostart`` (configure and activate at start, see
    :func:`run_node`) and ``torch_threads``. Its cleanup and shutdown both release everything
    through ``close()`` (idempotent; ``run_node`` calls it too on Ctrl-C). A ``change_state``
    request for a transition the current state lacks is refused (rclpy's own handler raises,
    which would end the node: ``ros2 lifecycle set`` with the wrong transition must not stop a
    robot's node).

    From construction on, in every lifecycle state, it publishes :meth:`diagnostics` on
    ``/diagnostics`` every :data:`DIAGNOSTICS_PERIOD_S` (by default one status,
    ``status_name``, with the lifecycle state under ``state_key``; ERROR with the reason while
    unconfigured after a failed configure, see :meth:`configure_failed`)."""

    status_name = "state"
    """Name of the status the default :meth:`diagnostics` publishes."""
    state_key = "state"
    """Diagnostics key of the lifecycle state."""

    def __init__(self, node_name: str, config: type[C], **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        serve = self._service_change_state.callback

        def change_state(request, response):
            available = {t[0] for t in self._state_machine.available_transitions}
            if not request.transition.label and request.transition.id not in available:
                self.get_logger().warn(
                    f"change_state: no transition {request.transition.id} from state "
                    f"{self._state_machine.current_state[1]!r}; refused"
                )
                response.success = False
                return response
            return serve(request, response)

        self._service_change_state.callback = change_state
        self._config_class = config
        declare_config(self, config)
        self.declare_parameter("autostart", True)
        self.declare_parameter("torch_threads", 1)
        self.configure_error = ""  # why the last configure failed; shown while unconfigured
        self._diagnostics_pub = self.create_publisher(
            DiagnosticArray, topics.DIAGNOSTICS, qos.RELIABLE
        )
        # on the steady clock: a node on the robot's clock (use_sim_time) reports while it stops
        self._diagnostics_timer = self.create_timer(
            DIAGNOSTICS_PERIOD_S,
            self.send_diagnostics,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )

    def load_config(self) -> C:
        """The config of the current parameters (ConfigError names a bad value), after setting
        torch's threads from ``torch_threads``."""
        config = read_config(self, self._config_class)
        configure_torch(self.get_parameter("torch_threads").value)
        return config

    @property
    def lifecycle_state(self) -> str:
        """The lifecycle state's label (``unconfigured``, ``inactive``, ``active``, ...)."""
        return self._state_machine.current_state[1]

    def configure_failed(self, error: str) -> TransitionCallbackReturn:
        """Log ``error`` as the reason configure failed, show it on ``/diagnostics`` while
        unconfigured, and return the failure for ``on_configure`` to return."""
        self.get_logger().error(f"configure failed: {error}")
        self.configure_error = error
        return TransitionCallbackReturn.FAILURE

    def state_status(self) -> Status:
        """A status whose message is the lifecycle state, the state under :attr:`state_key`;
        ERROR naming the reason while unconfigured after a failed configure."""
        state = self.lifecycle_state
        status = Status(message=state)
        status.add(self.state_key, state)
        if state == "unconfigured" and self.configure_error:
            status.summary(ERROR, f"configure failed: {self.configure_error}")
        return status

    def diagnostics(self) -> dict[str, Status]:
        """``{name: status}`` to publish now; this default: :meth:`state_status` alone."""
        return {self.status_name: self.state_status()}

    def send_diagnostics(self) -> None:
        """Publish :meth:`diagnostics` now."""
        publish_diagnostics(self, self._diagnostics_pub, self.diagnostics())

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.close()
        self.configure_error = ""
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        raise NotImplementedError


def run_node(
    factory: Callable[[], Node],
    args: list[str] | None = None,
    executor_class: Callable[[], Executor] = EventsExecutor,
) -> int:
    """The entry-point shape of every node: init, spin, clean shutdown on Ctrl-C or SIGTERM.

    Lifecycle nodes with parameter ``autostart`` true are configured and activated here, so they
    run without a lifecycle manager (launch files drive the transitions instead); a failed
    configure then ends the node with its reason and exit code 2
    (:data:`~learned_control.runtime.supervisor.NO_RESPAWN_CODE`, as a bad parameter does), so
    ``up`` stops the graph instead of waiting for a node that never runs. A stop signal
    only sets a flag, so no callback is cut short; spinning then ends, a node with a
    ``drain(executor)`` method (the recorder) takes what had already arrived, and ``close()``
    releases everything. ``executor_class``: rclpy's EventsExecutor by default, whose C++ event
    queue makes a lockstep step about 0.3 ms cheaper than the SingleThreadedExecutor's wait set
    (``bench/bridge.py``); a node with a ``make_executor()`` method (the controller) chooses its
    own.
    """
    rclpy.init(
        args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = None
    try:
        node = factory()
        if isinstance(node, LifecycleNode) and node.get_parameter("autostart").value:
            node.trigger_configure()
            if node._state_machine.current_state[1] != "inactive":
                error = getattr(node, "configure_error", "") or "see the log above"
                print(f"[{factory.__name__}] configure failed: {error}", file=sys.stderr)
                return NO_RESPAWN_CODE  # no lifecycle manager would ever configure it again
            node.trigger_activate()
        make_executor = getattr(node, "make_executor", executor_class)
        executor = make_executor()
        executor.add_node(node)
        while not stop.is_set():  # the timeout lets the signal flag be seen
            executor.spin_once(timeout_sec=0.1)
        drain = getattr(node, "drain", None)
        if drain is not None:
            drain(executor)
    except ExternalShutdownException:
        pass
    except ConfigError as err:
        print(f"[{factory.__name__}] configuration error: {err}", file=sys.stderr)
        return NO_RESPAWN_CODE
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
