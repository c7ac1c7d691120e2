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
from rclpy.executors import Executor, ExternalShutdownException
from rclpy.experimental import EventsExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from ..errors import ConfigError
from ..runtime.diagnostics import Status, plain_text
from ..utils import configure_torch

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "ManagedNode",
    "declare_config",
    "read_config",
    "diagnostic_status",
    "publish_diagnostics",
    "run_node",
    "array_msg",
]

C = TypeVar("C", bound="DataclassInstance")


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
    validation refuses is rejected with its message.

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
        node.declare_parameter(f.name, default, descriptor)
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
    """``status`` as a DiagnosticStatus named ``<node>: <name>``, message and values as plain
    text (:func:`~learned_control.runtime.diagnostics.plain_text`)."""
    return DiagnosticStatus(
        level=bytes([status.level]),
        name=f"{node.get_name()}: {name}",
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
    robot's node)."""

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

    def load_config(self) -> C:
        """The config of the current parameters (ConfigError names a bad value), after setting
        torch's threads from ``torch_threads``."""
        config = read_config(self, self._config_class)
        configure_torch(self.get_parameter("torch_threads").value)
        return config

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.close()
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
    run without a lifecycle manager (launch files drive the transitions instead). A stop signal
    only sets a flag, so no callback is cut short; spinning then ends, a node with a
    ``drain(executor)`` method (the recorder) takes what had already arrived, and ``close()``
    releases everything. ``executor_class``: rclpy's EventsExecutor by default, whose C++ event
    queue makes a lockstep step about 0.3 ms cheaper than the SingleThreadedExecutor's wait set
    (``bench/bridge.py``).
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
            if node._state_machine.current_state[1] == "inactive":
                node.trigger_activate()
        executor = executor_class()
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
        return 2
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
