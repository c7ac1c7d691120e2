"""Learner node over real DDS: train on request while the loop runs, hot swap, cancel."""

import hashlib
import time

import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from conftest import diagnostic_values
from learned_control import topics
from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.data.bags import write_bag
from learned_control.ros import qos
from learned_control.tasks import get_task
from learned_control.training.bc import mlp_policy_for
from learned_control.training.experts import collect_dataset
from scripted_experts import PendulumLQR

pytestmark = [pytest.mark.ros, pytest.mark.slow]

TASK = get_task("InvertedPendulum-v5")


def _collect(graph, topic, msg_type, qos_profile):
    box = []
    graph.node.create_subscription(msg_type, topic, lambda m: box.append((time.monotonic(), m)),
                                   qos_profile)
    return box


def _learner_status(diags):
    """The learner's latest ``training`` diagnostic values, or None."""
    for _, msg in reversed(diags):
        values = diagnostic_values(msg, "learner: training")
        if values is not None:
            return values
    return None


@pytest.fixture
def demo_bags(tmp_path):
    """A folder of two closed bags holding 5 noisy LQR episodes (what the recorder writes)."""
    env = TASK.make_env()
    env.reset(seed=0)
    episodes = collect_dataset(PendulumLQR(env), TASK, "test/lqr-v0", episodes=5, seed=100,
                               noise_std=0.1, progress=False)
    write_bag(tmp_path / "bags" / "run-1", episodes[:2])
    write_bag(tmp_path / "bags" / "run-2", episodes[2:])
    return tmp_path / "bags"


def test_train_while_the_loop_runs_then_the_controller_swaps_and_balances(graph, demo_bags,
                                                                          tmp_path):
    torch.manual_seed(0)
    untrained = save_checkpoint(tmp_path / "untrained.pt", mlp_policy_for(TASK), TASK.name)
    summaries = _collect(graph, topics.EPISODE, Float64MultiArray, qos.RELIABLE)
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    updates = _collect(graph, topics.MODEL_UPDATED, String, qos.LATCHED)
    graph.start("sim_bridge", task=TASK.name, mode="lockstep")
    graph.start("controller", task=TASK.name, checkpoint=untrained)
    graph.start("learner", task=TASK.name, sources=f"['{demo_bags}']", epochs=20,
                output_dir=tmp_path / "learner")
    # made early: a server drops the answer to a client it has not matched yet (.ros.services)
    train = graph.node.create_client(Trigger, "/learner/train")
    graph.spin_until(lambda: len(summaries) >= 5, 120, "episodes of the untrained policy")
    untrained_returns = [m.data[1] for _, m in summaries]
    assert max(untrained_returns) < 50, untrained_returns  # it falls within a few steps

    answer = graph.call(train, Trigger.Request())
    answered = time.monotonic()
    assert answer.success and "training bc on InvertedPendulum-v5" in answer.message, answer
    graph.spin_until(lambda: updates, 120, "model_updated")
    updated_at, update = updates[0]
    path = tmp_path / "learner" / "bc-0001" / "bc-0001.pt"
    assert update.data == str(path) and load_checkpoint(path).metadata["epochs"] == 20
    # the bridge kept stepping while the learner trained: episodes ended in between
    assert any(answered < t < updated_at for t, _ in summaries)

    graph.spin_until(lambda: (_learner_status(diags) or {}).get("jobs_done") == "1", 30,
                     "diagnostics reporting the finished job")
    status = _learner_status(diags)
    assert (status["state"], status["epoch"], status["epochs"]) == ("idle", "20", "20")
    assert status["last_checkpoint"] == str(path) and float(status["val_loss"]) > 0

    def swapped():
        for _, msg in reversed(diags):
            values = diagnostic_values(msg, "controller: control")
            if values is not None:
                return values["model"] == "MLPPolicy@bc-0001.pt" and values["swaps"] == "2"
        return False

    graph.spin_until(swapped, 30, "controller diagnostics naming the new model")
    done = len(summaries)
    graph.spin_until(lambda: len(summaries) >= done + 2, 120, "two episodes after the swap")
    assert summaries[-1][1].data[1] == 1000.0  # an episode wholly under the new policy balances


def test_cancel_mid_training_keeps_the_old_checkpoint_and_reports_cancelled(graph, demo_bags,
                                                                            tmp_path):
    diags = _collect(graph, topics.DIAGNOSTICS, DiagnosticArray, qos.RELIABLE)
    updates = _collect(graph, topics.MODEL_UPDATED, String, qos.LATCHED)
    out = tmp_path / "learner"
    graph.start("learner", task=TASK.name, sources=f"['{demo_bags}']", epochs=2, output_dir=out)
    train = graph.node.create_client(Trigger, "/learner/train")
    cancel = graph.node.create_client(Trigger, "/learner/cancel")
    # the first call of a fresh client may lose its answer under load; this one is safe to repeat
    assert graph.call(cancel, Trigger.Request(), resend=5.0).message == "no training job is running"
    assert graph.call(train, Trigger.Request()).success
    graph.spin_until(lambda: updates, 120, "the first model_updated")
    first = updates[0][1].data
    digest = hashlib.sha256(open(first, "rb").read()).hexdigest()

    set_params = graph.node.create_client(SetParameters, "/learner/set_parameters")
    epochs = Parameter(name="epochs", value=ParameterValue(type=ParameterType.PARAMETER_INTEGER,
                                                           integer_value=100000))
    assert graph.call(set_params, SetParameters.Request(parameters=[epochs]),
                      resend=5.0).results[0].successful
    assert graph.call(train, Trigger.Request()).success

    def training(min_epoch):
        status = _learner_status(diags) or {}
        return status.get("state") == "training" and int(status["epoch"]) >= min_epoch

    graph.spin_until(lambda: training(1), 60, "diagnostics showing training progress")
    assert _learner_status(diags)["epochs"] == "100000"
    again = graph.call(train, Trigger.Request())  # the executor answers while a job runs
    assert not again.success and "already training" in again.message
    assert graph.call(cancel, Trigger.Request()).success

    graph.spin_until(lambda: (_learner_status(diags) or {}).get("last_outcome") == "cancelled",
                     60, "diagnostics reporting the cancelled job")
    status = _learner_status(diags)
    assert status["state"] == "idle" and "cancelled after epoch" in status["last_error"]
    assert status["last_checkpoint"] == first and status["jobs_done"] == "1"
    assert hashlib.sha256(open(first, "rb").read()).hexdigest() == digest
    assert load_checkpoint(first).metadata["epochs"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["bc-0001"]  # the cancelled run left nothing
    assert len(updates) == 1  # no model_updated for the cancelled job
