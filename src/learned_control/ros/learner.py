"""learner: trains a BC policy or a dynamics ensemble on request, in the background.

Parameters: the fields of :class:`learned_control.training.learner.LearnerConfig` (what, sources,
task, labels, expert, spec_file, lockstep, gap, output_dir, device, seed, epochs, batch_size, lr,
val_fraction, hid_size, num_layers, activation, policy, chunk_size, execute_steps, members,
probabilistic, weight_decay, patience, rollout_steps, reward_heads) plus ``autostart`` and
``torch_threads``, read again at each ``train``
request, so a change applies to the next job. Services (std_srvs/Trigger): ``~/train`` starts a job
in a background thread and answers at once (refused while one runs or while the node is not
active), ``~/cancel`` stops it after the current epoch (its run folder is removed, earlier
checkpoints stay). The executor never waits on a job. Publishes progress on ``/diagnostics`` (state
idle/training/failed, epoch, losses, last outcome and error) and, for each new checkpoint, its
absolute path on ``model_updated`` (std_msgs/String, reliable, transient-local), which the
controller swaps in between ticks.

Lifecycle: configure creates the interfaces; activate accepts jobs; deactivate cancels a running
job; cleanup/shutdown cancel it and wait for its thread.
"""

from __future__ import annotations

from rclpy.executors import SingleThreadedExecutor
from rclpy.guard_condition import GuardCondition
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.publisher import Publisher
from std_msgs.msg import String
from std_srvs.srv import Trigger

from .. import topics
from ..errors import ConfigError
from ..runtime.diagnostics import ERROR, Status
from ..training.learner import BackgroundLearner, LearnerConfig
from . import qos
from .node_utils import ManagedNode, read_config, run_node

__all__ = ["Learner", "main"]

JOIN_TIMEOUT_S = 30.0
"""How long cleanup/shutdown wait for a cancelled job's thread to end (one epoch at most)."""


class Learner(ManagedNode[LearnerConfig]):
    """A thin shell around :class:`~learned_control.training.learner.BackgroundLearner`."""

    status_name, state_key = "training", "lifecycle"  # "state" is the training state

    def __init__(self, node_name: str = "learner") -> None:
        super().__init__(node_name, LearnerConfig)
        self.learner = BackgroundLearner(on_finished=self._wake)
        self.active = False
        self.published = ""  # the last checkpoint announced on model_updated
        self.model_pub: Publisher | None = None
        self._guard: GuardCondition | None = None
        self._own_services: list = []

    # ---- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.load_config()
        except ConfigError as err:
            return self.configure_failed(str(err))
        self.model_pub = self.create_publisher(String, topics.MODEL_UPDATED, qos.LATCHED)
        self._guard = self.create_guard_condition(self._on_job_finished)
        self._own_services = [
            self.create_service(Trigger, topics.TRAIN, self._on_train),
            self.create_service(Trigger, topics.CANCEL, self._on_cancel),
        ]
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.active = True
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.learner.cancel()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Cancel a running job, wait for its thread, release the interfaces (idempotent)."""
        self.active = False
        self.learner.cancel()
        if not self.learner.join(JOIN_TIMEOUT_S):
            self.get_logger().error(f"training thread still running after {JOIN_TIMEOUT_S} s")
        for srv in self._own_services:
            self.destroy_service(srv)
        if self.model_pub is not None:
            self.destroy_publisher(self.model_pub)
        if self._guard is not None:
            self.destroy_guard_condition(self._guard)
        self._own_services = []
        self.model_pub = self._guard = None

    # ---- services --------------------------------------------------------------------------
    def _on_train(self, request, response):
        if not self.active:
            response.success, response.message = False, "the learner is not active"
            return response
        try:
            config = read_config(self, LearnerConfig)
        except ConfigError as err:
            response.success, response.message = False, str(err)
            return response
        response.success, response.message = self.learner.start(config)
        self.get_logger().info(f"train: {response.message}")
        return response

    def _on_cancel(self, request, response):
        response.success, response.message = self.learner.cancel()
        return response

    # ---- job results (executor thread) -----------------------------------------------------
    def _wake(self) -> None:
        """Worker thread: a job ended; run :meth:`_on_job_finished` in the executor."""
        guard = self._guard
        if guard is not None:
            guard.trigger()

    def _on_job_finished(self) -> None:
        assert self.model_pub is not None  # the guard exists only while configured
        status = self.learner.status()
        if status.last_checkpoint and status.last_checkpoint != self.published:
            self.model_pub.publish(String(data=status.last_checkpoint))
            self.published = status.last_checkpoint
            self.get_logger().info(f"model_updated: {status.last_checkpoint}")
        elif status.last_outcome == "failed":
            self.get_logger().error(f"training failed: {status.last_error}")
        elif status.last_outcome == "cancelled":
            self.get_logger().info(f"training {status.last_error}")
        self.send_diagnostics()

    def diagnostics(self) -> dict[str, Status]:
        if self.model_pub is None:  # not configured
            return super().diagnostics()
        s = self.learner.status()
        status = Status(
            message=f"training: epoch {s.epoch}/{s.epochs}"
            if s.state == "training"
            else "idle" + (f"; last job {s.last_outcome}" if s.last_outcome else "")
        )
        if s.state == "failed":
            status.summary(ERROR, f"failed: {s.last_error}")
        status.update(
            {
                "state": s.state,
                "what": self.get_parameter("what").value,
                "epoch": s.epoch,
                "epochs": s.epochs,
                "train_loss": s.train_loss,
                "val_loss": s.val_loss,
                "jobs_done": s.jobs_done,
                "last_outcome": s.last_outcome,
                "last_checkpoint": s.last_checkpoint,
                "last_error": s.last_error,
                self.state_key: self.lifecycle_state,
            }
        )
        return {self.status_name: status}


def main(args: list[str] | None = None) -> int:
    # job results wake the node through a guard condition, which Jazzy's EventsExecutor lacks
    return run_node(Learner, args, executor_class=SingleThreadedExecutor)


if __name__ == "__main__":
    raise SystemExit(main())
