"""Service calls that survive a dropped answer.

Fast DDS drops a service's answer when the server has not matched the client's reply reader
within its writer's ``max_blocking_time`` (100 ms); rmw then warns "failed to send response
(timeout): client will not receive response". ``service_is_ready`` sees only the client's side
of that match, so a new client on a loaded machine can wait forever for an answer that was never
sent. :func:`call` sends a request that is safe to repeat again until it is answered;
:func:`change_state` settles a lifecycle transition whose answer is missing by the node's state.

Both take the caller's ``spin_until(condition, timeout_s, what)``, which spins the caller's
executor until ``condition()`` and raises naming ``what`` on timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node

__all__ = ["call", "change_state"]

SpinUntil = Callable[[Callable[[], bool], float, str], None]

GOAL_STATE = {
    Transition.TRANSITION_CONFIGURE: State.PRIMARY_STATE_INACTIVE,
    Transition.TRANSITION_CLEANUP: State.PRIMARY_STATE_UNCONFIGURED,
    Transition.TRANSITION_ACTIVATE: State.PRIMARY_STATE_ACTIVE,
    Transition.TRANSITION_DEACTIVATE: State.PRIMARY_STATE_INACTIVE,
    Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: State.PRIMARY_STATE_FINALIZED,
    Transition.TRANSITION_INACTIVE_SHUTDOWN: State.PRIMARY_STATE_FINALIZED,
    Transition.TRANSITION_ACTIVE_SHUTDOWN: State.PRIMARY_STATE_FINALIZED,
}
"""The primary state each lifecycle transition ends in when it succeeds."""


def call(
    spin_until: SpinUntil, client, request, timeout: float, what: str, resend: float | None = None
):
    """``client``'s answer to ``request``, waiting at most ``timeout`` s for the server and as
    long again for the answer. ``resend``: for a request that is safe to repeat, send it again
    every ``resend`` s until one copy is answered."""
    spin_until(client.service_is_ready, timeout, f"the service {client.srv_name}")
    futures, sent = [client.call_async(request)], time.monotonic()

    def answered() -> bool:
        nonlocal sent
        if resend and time.monotonic() - sent > resend:
            futures.append(client.call_async(request))
            sent = time.monotonic()
        return any(f.done() for f in futures)

    spin_until(answered, timeout, what)
    return next(f for f in futures if f.done()).result()


def change_state(
    spin_until: SpinUntil,
    node: Node,
    target: str,
    transition_id: int,
    timeout: float,
    answer_wait: float = 5.0,
) -> bool:
    """Have lifecycle node ``target`` (its fully qualified name) take transition
    ``transition_id`` (``lifecycle_msgs/Transition``); whether it succeeded.

    An answer still missing after ``answer_wait`` s is settled by the node's state
    (``get_state``, safe to repeat): the transition succeeded when the node is in its goal state.
    The node's executor answers that only once no transition callback runs; the state is asked
    twice, 0.5 s apart, since requests to two services may be taken in either order.
    """
    change = node.create_client(ChangeState, f"{target}/change_state")
    get = node.create_client(GetState, f"{target}/get_state")

    def spin_for(seconds: float, done: Callable[[], bool] = lambda: False) -> None:
        end = time.monotonic() + seconds
        spin_until(lambda: done() or time.monotonic() > end, seconds + timeout, "a pause")

    try:
        spin_until(change.service_is_ready, timeout, f"the service {change.srv_name}")
        future = change.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        spin_for(answer_wait, future.done)
        if future.done():
            return future.result().success
        for attempt in range(2):
            if attempt:
                spin_for(0.5)
            state = call(
                spin_until,
                get,
                GetState.Request(),
                timeout,
                f"the state of {target}",
                resend=max(answer_wait, 1.0),
            )
            if state.current_state.id == GOAL_STATE[transition_id]:
                return True
        return False
    finally:
        node.destroy_client(change)
        node.destroy_client(get)
