"""Any bag to episodes and back: spec topics, standard topics, foreign writers (rosbags' Writer
directly, sqlite3 and mcap), episode boundaries, stale sources, rewards, bad bags, per-episode
pairing, and Bag -> Minari -> bag -> Minari without loss."""

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer

from learned_control.cli import main as cli_main
from learned_control.data.bags import (RACE_S, bag_to_episodes, float_array, summary_slices,
                                       typestore, write_bag)
from learned_control.data.episodes import Episode
from learned_control.data.minari_io import load_episodes, rollout_episodes, save_episodes
from learned_control.data.robot_bags import convert_any_bag, convert_bag, episodes_to_bag
from learned_control.errors import DatasetError
from learned_control.specs import default_specs, dump_specs, load_specs
from learned_control.tasks import get_task

PENDULUM = "InvertedPendulum-v5"
MS = 1_000_000
STORE = typestore()
T = STORE.types
ARRAY = "std_msgs/msg/Float64MultiArray"


class Policy:
    """A fixed linear policy with a little seeded noise: episodes of a few dozen steps."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        return np.clip([0.5 * obs[1] + 0.3 * self.rng.normal()], -3, 3)


@pytest.fixture(scope="module")
def pendulum_episodes():
    task = get_task(PENDULUM)
    return rollout_episodes(Policy(0), task.make_env(), 3, seed=11, progress=False)


@pytest.fixture
def minari_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


def _spec_file(tmp_path, **command):
    data = yaml.safe_load(dump_specs(default_specs(PENDULUM)))
    data["command"].update(command)
    path = tmp_path / f"pendulum-{command.get('type', 'Float64MultiArray')}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _assert_same(got, want):
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_array_equal(a.observations, b.observations, err_msg=f"episode {k}")
        np.testing.assert_array_equal(a.actions, b.actions, err_msg=f"episode {k}")
        np.testing.assert_array_equal(a.rewards, b.rewards, err_msg=f"episode {k}")
        np.testing.assert_array_equal(a.terminations, b.terminations)
        np.testing.assert_array_equal(a.truncations, b.truncations)


# ---------------------------------------------------------------- foreign writers


def _header(stamp_ns):
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
        frame_id="")


def _joint_state(stamp_ns, names, values):
    """JointState with the hinge/slider values among others, in the given name order."""
    pos = np.array([values.get(n, (7.0, 0.0))[0] for n in names])
    vel = np.array([values.get(n, (0.0, 7.0))[1] for n in names])
    return T["sensor_msgs/msg/JointState"](header=_header(stamp_ns), name=names, position=pos,
                                            velocity=vel, effort=np.zeros(len(names)))


def _trajectory(names, effort):
    point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.zeros(0), velocities=np.zeros(0), accelerations=np.zeros(0),
        effort=np.asarray(effort, float),
        time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=40 * MS))
    return T["trajectory_msgs/msg/JointTrajectory"](header=_header(0), joint_names=names,
                                                     points=[point])


def _foreign_bag(path, storage, episodes, spec=False, markers=False, rewards=True,
                 stale_at=None, lifecycle=False):
    """A bag as another tool writes it: rosbags' Writer, topics added in an odd order, each
    topic written in its own pass (receive times interleave only in the file's order), extra
    topics, 1 s reset pauses, no summaries. Per episode: obs/joint states every 20 ms (the last
    one after the last command), commands 3 ms after each, rewards 5 ms after each command.
    ``stale_at``: the joint states pause 200 ms after that step, and a command (no reward) comes
    150 ms into the pause."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.open()
    conns = {}

    def conn(topic, msgtype):
        if topic not in conns:
            conns[topic] = writer.add_connection(topic, msgtype, typestore=STORE)
        return conns[topic]

    out = {"obs": [], "cmd": [], "rew": [], "marker": [], "extra": [], "transition": []}
    start = 2_000_000_000
    for ep in episodes:
        out["marker"].append(start - 100 * MS)
        out["transition"].append(start - 50 * MS)
        for t in range(len(ep) + 1):
            stamp = start + t * 20 * MS
            if stale_at is not None and t > stale_at:
                stamp += 200 * MS  # the joint states paused 200 ms (> max_age 0.1 s)
            out["obs"].append((stamp, ep.observations[t]))
            if t < len(ep):
                out["cmd"].append((stamp + 3 * MS, ep.actions[t]))
                out["rew"].append((stamp + 5 * MS, ep.rewards[t]))
            if t == stale_at:  # a command 150 ms after the last joint state: stale
                out["cmd"].append((stamp + 150 * MS, np.array([0.123])))
            out["extra"].append(stamp + 7 * MS)
        start = stamp + 1_000 * MS
    c_extra = conn("/diagnostics_text", "std_msgs/msg/String")
    for stamp in out["extra"]:  # an extra topic first
        writer.write(c_extra, stamp, STORE.serialize_cdr(T["std_msgs/msg/String"](data="x"),
                                                          "std_msgs/msg/String"))
    if rewards:
        c = conn("/reward", "std_msgs/msg/Float64")
        for stamp, r in out["rew"]:
            writer.write(c, stamp, STORE.serialize_cdr(T["std_msgs/msg/Float64"](data=float(r)),
                                                        "std_msgs/msg/Float64"))
    if spec:
        c = conn("/effort_controller/commands", "trajectory_msgs/msg/JointTrajectory")
        for stamp, a in out["cmd"]:
            writer.write(c, stamp, STORE.serialize_cdr(_trajectory(["slider"], a),
                                                        "trajectory_msgs/msg/JointTrajectory"))
        c = conn("/joint_states", "sensor_msgs/msg/JointState")
        for i, (stamp, o) in enumerate(out["obs"]):
            names = ["gripper", "hinge", "slider"] if i % 2 else ["slider", "camera", "hinge"]
            msg = _joint_state(stamp, names, {"slider": (o[0], o[2]), "hinge": (o[1], o[3])})
            writer.write(c, stamp, STORE.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
    else:
        c = conn("/command", ARRAY)
        for stamp, a in out["cmd"]:
            writer.write(c, stamp, STORE.serialize_cdr(float_array(a, ""), ARRAY))
        c = conn("/observation", ARRAY)
        for stamp, o in out["obs"]:
            writer.write(c, stamp, STORE.serialize_cdr(float_array(o, ""), ARRAY))
    if markers:
        c = conn("/episode_start", "std_msgs/msg/Empty")
        for stamp in out["marker"]:
            writer.write(c, stamp, STORE.serialize_cdr(T["std_msgs/msg/Empty"](),
                                                        "std_msgs/msg/Empty"))
    if lifecycle:
        c = conn("/controller/transition_event", "lifecycle_msgs/msg/TransitionEvent")
        for stamp in out["transition"]:
            state = T["lifecycle_msgs/msg/State"](id=3, label="active")
            msg = T["lifecycle_msgs/msg/TransitionEvent"](
                timestamp=0, transition=T["lifecycle_msgs/msg/Transition"](id=3, label="activate"),
                start_state=state, goal_state=state)
            writer.write(c, stamp, STORE.serialize_cdr(msg, "lifecycle_msgs/msg/TransitionEvent"))
    writer.close()
    return path


def _truncated(episodes):
    """The episodes as a bag without summaries gives them: never terminated, cut at the end."""
    out = []
    for ep in episodes:
        terms = np.zeros(len(ep), bool)
        truncs = terms.copy()
        truncs[-1] = True
        out.append(Episode(ep.observations, ep.actions, ep.rewards, terms, truncs))
    return out


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_standard_topics_of_another_tool_convert_exactly(tmp_path, storage, pendulum_episodes):
    bag = _foreign_bag(tmp_path / "bag", storage, pendulum_episodes)
    got = convert_any_bag(bag, get_task(PENDULUM))
    assert got.boundaries == "gaps between commands" and "'reward'" in got.rewards
    assert got.notes == []
    _assert_same(got.episodes, _truncated(pendulum_episodes))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("bounds", ["gaps", "markers", "lifecycle"])
def test_spec_topics_of_another_tool_convert_exactly(tmp_path, storage, bounds,
                                                      pendulum_episodes):
    """Shuffled and extra joints, JointTrajectory commands, each boundary kind."""
    bag = _foreign_bag(tmp_path / "bag", storage, pendulum_episodes, spec=True,
                       markers=bounds == "markers", lifecycle=bounds == "lifecycle")
    specs = load_specs(_spec_file(tmp_path, type="JointTrajectory"))
    got = convert_bag(bag, get_task(PENDULUM), specs,
                      episode_topic="/episode_start" if bounds == "markers" else None,
                      gap=5.0 if bounds != "gaps" else 0.5)  # 5 s: only the marks can cut
    assert got.boundaries.startswith({"gaps": "gaps", "markers": "the marker topic",
                                      "lifecycle": "the controller's lifecycle"}[bounds])
    _assert_same(got.episodes, _truncated(pendulum_episodes))


def test_stale_source_splits_the_episode(tmp_path, pendulum_episodes):
    ep = pendulum_episodes[0]
    bag = _foreign_bag(tmp_path / "bag", "mcap", [ep], spec=True, stale_at=4)
    specs = load_specs(_spec_file(tmp_path, type="JointTrajectory"))
    got = convert_bag(bag, get_task(PENDULUM), specs)
    # step 5's command comes 203 ms after joint state 4: stale, dropped, the episode split there;
    # the first part ends at observation 4 (its command dropped, its next state unknown)
    assert [len(e) for e in got.episodes] == [4, len(ep) - 5]
    assert any("1 stale step(s) (source(s) ['joint_states'])" in n for n in got.notes)
    np.testing.assert_array_equal(got.episodes[0].observations, ep.observations[:5])
    np.testing.assert_array_equal(got.episodes[1].observations, ep.observations[5:])
    np.testing.assert_array_equal(got.episodes[1].actions, ep.actions[5:])


def test_rewards_from_the_task_or_zeros_and_the_metadata_says_which(tmp_path, pendulum_episodes,
                                                                    minari_dir):
    bag = _foreign_bag(tmp_path / "bag", "sqlite3", pendulum_episodes, rewards=False)
    zeros = convert_bag(bag, get_task(PENDULUM))
    assert "zero rewards" in zeros.rewards
    assert all(not ep.rewards.any() and not ep.terminations.any() for ep in zeros.episodes)
    task = convert_bag(bag, get_task(PENDULUM), task_rewards=True)
    assert task.rewards == "task InvertedPendulum-v5's reward and termination functions"
    for got, want in zip(task.episodes, pendulum_episodes, strict=True):
        np.testing.assert_array_equal(got.rewards, want.rewards)  # +1 per step alive
        np.testing.assert_array_equal(got.terminations, want.terminations)  # the pole fell
    rng = np.random.default_rng(0)
    hopper = [Episode(rng.normal(size=(6, 11)), rng.normal(size=(5, 3)), np.ones(5),
                      np.zeros(5, bool), np.zeros(5, bool))]
    bag_h = _foreign_bag(tmp_path / "hopper", "mcap", hopper, rewards=False)
    none = convert_bag(bag_h, get_task("Hopper-v5"), task_rewards=True)
    assert "task Hopper-v5 has no reward function" in none.rewards
    assert not none.episodes[0].rewards.any()
    assert cli_main(["bag2minari", str(bag), "test/zeros-v0"]) == 0
    import minari
    metadata = minari.load_dataset("test/zeros-v0").storage.metadata
    assert "zero rewards, never terminated" in metadata["description"]


def test_a_bag_that_cannot_convert_says_why_in_one_line(tmp_path, pendulum_episodes, capsys,
                                                        minari_dir):
    bag = _foreign_bag(tmp_path / "bag", "mcap", pendulum_episodes, spec=True)
    spec = _spec_file(tmp_path, type="JointTrajectory")
    with pytest.raises(DatasetError, match=r"no topic 'observation' \(the observations\)"):
        convert_bag(bag, get_task(PENDULUM))
    wrong_type = _spec_file(tmp_path)  # Float64MultiArray, but the bag has JointTrajectory
    with pytest.raises(DatasetError, match="is trajectory_msgs/msg/JointTrajectory, expected"):
        convert_bag(bag, get_task(PENDULUM), load_specs(wrong_type))
    data = yaml.safe_load(open(spec))
    data["observation"]["features"][0]["expr"]["joint"] = "hinge"
    data["observation"]["features"][1]["expr"]["joint"] = "elbow"  # never in /joint_states
    data["observation"]["features"][3]["expr"]["joint"] = "elbow"
    (tmp_path / "elbow.yaml").write_text(yaml.safe_dump(data))
    assert cli_main(["bag2minari", str(bag), "test/x-v0", "--spec",
                     str(tmp_path / "elbow.yaml")]) != 0
    err = capsys.readouterr().err
    assert "never carry joint(s) ['elbow']" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    data = yaml.safe_load(open(spec))
    data["command"].update(joints=["hinge"], action_joints=["hinge"])
    (tmp_path / "hinge.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(DatasetError, match=r"command for joints \['slider'\] .* rejected"):
        convert_bag(bag, get_task(PENDULUM), load_specs(tmp_path / "hinge.yaml"))


# ---------------------------------------------------------------- per-episode pairing


def test_summary_slices_accept_a_boundary_race_and_drop_a_shifted_episode():
    race = int(RACE_S * 1e9) // 2
    # 2 episodes of 3 steps, summaries at 10 and 20; the 3rd message of episode 0 logged just
    # after its summary (a race), the rest in place
    times = np.array([1, 2, 10 + race, 11, 12, 13])
    assert summary_slices(times, [10, 20], [3, 3]) == [(0, 3), (3, 6)]
    # the same, but the message came 1 ms later: not a race; neither episode pairs (dropped,
    # never shifted)
    late = np.array([1, 2, 10 + 1_000_000, 11 + 1_000_000, 12 + 1_000_000, 13 + 1_000_000])
    assert summary_slices(late, [10, 20_000_000], [3, 3]) == ["2 messages for 3 steps",
                                                              "4 messages for 3 steps"]
    # the first message of episode 0 missing, one more recorded after the last summary
    shifted = np.array([2, 3, 11, 12, 13, 21]) * MS
    assert summary_slices(shifted, [10 * MS, 20 * MS], [3, 3]) == ["2 messages for 3 steps",
                                                                   (2, 5)]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bridge_bag_missing_leading_messages_is_not_shifted(tmp_path, storage,
                                                           pendulum_episodes):
    """Episode 0's first two steps never recorded, steps of a cut episode after the last
    summary: the totals fit, yet episode 0 is dropped and the others pair exactly."""
    from rosbags.rosbag2 import Reader

    from learned_control.data.bags import BagWriter

    write_bag(tmp_path / "full", pendulum_episodes, storage=storage)
    with Reader(tmp_path / "full") as reader:
        raws = [(c.topic, ts, raw) for c, ts, raw in reader.messages()]
    seen = {}
    with BagWriter(tmp_path / "cut", storage) as bag:
        for topic, ts, raw in raws:
            seen[topic] = seen.get(topic, 0) + 1
            if topic in ("observation", "applied_command", "reward", "command") \
                    and seen[topic] <= 2:
                continue
            bag.write_raw(topic, ts, raw)
        last = raws[-1][1]
        for k in range(4):  # a cut episode after the last summary
            for topic in ("observation", "applied_command", "command"):
                size = 4 if topic == "observation" else 1
                bag.write(topic, last + (k + 1) * MS, float_array([0.0] * size, ""))
            bag.write("reward", last + (k + 1) * MS, T["std_msgs/msg/Float64"](data=1.0))
    notes = []
    got = bag_to_episodes(tmp_path / "cut", get_task(PENDULUM), notes=notes)
    assert notes == [f"bag {tmp_path / 'cut'}: episode 0: " + ", ".join(
        f"{len(pendulum_episodes[0]) - 2} '{n}' messages for {len(pendulum_episodes[0])} steps"
        for n in ("observation", "applied_command", "reward")) + ": dropped"]
    _assert_same(got, pendulum_episodes[1:])


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("command", ["Float64MultiArray", "JointTrajectory"])
def test_spec_bag_converts_exactly(tmp_path, storage, command, pendulum_episodes):
    specs = load_specs(_spec_file(tmp_path, type=command))
    bag = episodes_to_bag(tmp_path / "bag", pendulum_episodes, get_task(PENDULUM), specs,
                          storage)
    got = convert_bag(bag, get_task(PENDULUM), specs)
    assert got.notes == [] and got.boundaries == "the bridge's '/episode' summaries"
    _assert_same(got.episodes, pendulum_episodes)
    assert [ep.seed for ep in got.episodes] == [11, 12, 13]


@pytest.mark.parametrize("mode", ["spec", "standard"])
def test_bag_minari_bag_minari_is_lossless(tmp_path, mode, pendulum_episodes, minari_dir):
    spec = _spec_file(tmp_path, type="JointTrajectory")
    which = ["--spec", spec] if mode == "spec" else ["--standard"]
    with_spec = ["--spec", spec] if mode == "spec" else []
    bag0 = _foreign_bag(tmp_path / "bag0", "mcap", pendulum_episodes, spec=mode == "spec")
    assert cli_main(["bag2minari", str(bag0), "test/a-v0", *with_spec, "--task", PENDULUM]) == 0
    assert cli_main(["minari2bag", "test/a-v0", str(tmp_path / "bag1"), *which]) == 0
    assert cli_main(["bag2minari", str(tmp_path / "bag1"), "test/b-v0", *with_spec]) == 0
    a, _ = load_episodes("test/a-v0")
    b, _ = load_episodes("test/b-v0")
    _assert_same(b, a)
    # the first conversion: rewards from the bag, terminations from the task's function, the
    # terminal observation the one after the last command: the rollout (Minari keeps the env's
    # float32 actions)
    _assert_same(a, [Episode(ep.observations, ep.actions.astype(np.float32), ep.rewards,
                             ep.terminations, ep.truncations) for ep in pendulum_episodes])


def test_minari2bag_refuses_a_spec_it_cannot_invert(tmp_path, minari_dir, capsys):
    task = get_task("Reacher-v5")
    reacher = tmp_path / "reacher.yaml"
    reacher.write_text(dump_specs(default_specs("Reacher-v5")))
    rng = np.random.default_rng(0)
    ep = Episode(rng.normal(size=(4, 10)), rng.normal(size=(3, 2)), np.zeros(3),
                 np.zeros(3, bool), np.array([0, 0, 1], bool))
    save_episodes("test/reacher-v0", [ep], task.make_env())
    assert cli_main(["minari2bag", "test/reacher-v0", str(tmp_path / "out"), "--spec",
                     str(reacher)]) != 0
    err = capsys.readouterr().err
    assert "feature 'cos_joint0' (cos) is not a plain read" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def _lockstep_bag(path, episodes):
    """A bag as the recorder writes a lockstep driver run when its callbacks lag: command k
    (which answered joint state k) is logged after joint state k+1, which the bridge sent only
    once it had command k. Bridge summaries close the episodes."""
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    js = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=STORE)
    cmd = writer.add_connection("/effort_controller/commands", ARRAY, typestore=STORE)
    rew = writer.add_connection("/reward", "std_msgs/msg/Float64", typestore=STORE)
    summ = writer.add_connection("/episode", ARRAY, typestore=STORE)
    start, sim = 2_000_000_000, 0
    for index, ep in enumerate(episodes):
        for k in range(len(ep)):
            o = ep.observations[k]
            msg = _joint_state(sim, ["slider", "hinge"], {"slider": (o[0], o[2]),
                                                           "hinge": (o[1], o[3])})
            writer.write(js, start + k * 20 * MS, STORE.serialize_cdr(msg, msg.__msgtype__))
            last = k == len(ep) - 1
            at = start + (k + 1) * 20 * MS + MS if not last else start + k * 20 * MS + 5 * MS
            writer.write(cmd, at, STORE.serialize_cdr(float_array(ep.actions[k], ""), ARRAY))
            writer.write(rew, at + MS, STORE.serialize_cdr(
                T["std_msgs/msg/Float64"](data=float(ep.rewards[k])), "std_msgs/msg/Float64"))
            sim += 20 * MS
        summary = [index, ep.episode_return, len(ep), np.nan, ep.seed, *ep.observations[-1]]
        writer.write(summ, at + 2 * MS, STORE.serialize_cdr(float_array(summary, ""), ARRAY))
        start = at + 1000 * MS
    writer.close()
    return path


def test_lockstep_pairs_a_lagging_recording_exactly_and_the_newest_rule_drops_it(
        tmp_path, pendulum_episodes):
    bag = _lockstep_bag(tmp_path / "bag", pendulum_episodes)
    specs = load_specs(_spec_file(tmp_path))
    got = convert_bag(bag, get_task(PENDULUM), specs, lockstep=True)
    assert got.notes == []
    _assert_same(got.episodes, pendulum_episodes)
    # the newest-samples rule would pair command k with joint state k+1: never silently, the
    # last command of each episode answers the same stamp as the one before it
    with pytest.raises(DatasetError, match="episode 0 dropped: 1 command.s. answered the same"):
        convert_bag(bag, get_task(PENDULUM), specs)
