"""The on-disk episode store: persistence, sampling, and surviving a killed writer."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from iris.episodes import Episode, EpisodeStore


def numbered_episode(k: int, length: int | None = None, size: int = 64) -> Episode:
    """Episode k, reproducible from k alone: actions are 1000 k + step, frames are noise seeded by k."""
    length = length or 30 + (37 * k) % 70
    truncated = k % 3 == 0
    return Episode(
        observations=np.random.default_rng(k).integers(0, 256, (length, size, size, 3), dtype=np.uint8),
        actions=1000 * k + np.arange(length),
        rewards=np.full(length, k, np.float32),
        ends=np.arange(length) == (length if truncated else length - 1),
        truncated=truncated,
    )


def assert_same_episode(a: Episode, b: Episode):
    for key in ("observations", "actions", "rewards", "ends"):
        x, y = getattr(a, key), getattr(b, key)
        assert x.dtype == y.dtype and np.array_equal(x, y), key
    assert a.truncated == b.truncated


def test_add_and_reopen(tmp_path):
    store = EpisodeStore(tmp_path)
    episodes = [numbered_episode(k) for k in range(4)]
    assert [store.add(e) for e in episodes] == [0, 1, 2, 3]
    assert store.num_episodes == 4 and store.num_steps == sum(len(e) for e in episodes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.npz", "000001.npz", "000002.npz", "000003.npz"]
    reopened = EpisodeStore(tmp_path)
    assert reopened.num_episodes == 4 and reopened.num_steps == store.num_steps
    for a, b in zip(episodes, reopened.episodes):
        assert_same_episode(a, b)
    assert reopened.episodes[2].ret == 2.0 * len(episodes[2]) and reopened.episodes[3].truncated
    assert reopened.add(numbered_episode(4)) == 4


def test_truncate_drops_later_episodes(tmp_path):
    store = EpisodeStore(tmp_path)
    for k in range(5):
        store.add(numbered_episode(k))
    store.truncate(3)
    assert store.num_episodes == 3 and store.num_steps == sum(len(numbered_episode(k)) for k in range(3))
    assert EpisodeStore(tmp_path).num_episodes == 3
    assert store.add(numbered_episode(3)) == 3


@pytest.mark.parametrize("sampling, share", [("episode", 0.5), ("step", 0.75)])
def test_pending_episodes_are_sampled_but_not_written(tmp_path, sampling, share):
    store = EpisodeStore(tmp_path, sampling)
    store.add(numbered_episode(0, 10))
    store.set_pending([numbered_episode(1, 30)])
    assert store.num_episodes == 1 and store.num_steps == 40
    sampled = store.sample_segments(2000, 1, np.random.default_rng(0), from_start=False)["actions"][:, 0] // 1000
    assert abs(sampled.mean() - share) < 0.04  # one of two episodes; 3/4 of the steps
    assert [p.name for p in tmp_path.iterdir()] == ["000000.npz"] and EpisodeStore(tmp_path).num_steps == 10


@pytest.mark.parametrize("sampling", ["episode", "step"])
def test_a_short_episode_beside_a_long_one_gets_its_rule_s_share(tmp_path, sampling):
    """The official rule draws an episode uniformly, then a step in it: a 10-step life beside a 990-step one gets
    half the draws (frames, and segments from their start or to their end); the step rule gives it 1%."""
    store = EpisodeStore(tmp_path, sampling)
    store.add(numbered_episode(0, 10, size=4))
    store.add(numbered_episode(1, 990, size=4))
    rng = np.random.default_rng(0)
    n = 4000
    expected = 0.5 if sampling == "episode" else 10 / 1000
    tolerance = 4 * np.sqrt(expected * (1 - expected) / n)
    for from_start in (True, False):
        seg = store.sample_segments(n, 20, rng, from_start)
        last = seg["actions"][:, 0 if from_start else -1]  # the drawn step: first or last of its segment
        assert abs(np.mean(last // 1000 == 0) - expected) < tolerance
        steps = last % 1000  # uniform inside the episode it drew
        assert abs(steps[last // 1000 == 1].mean() - 989 / 2) < 30
    short = {frame.tobytes() for frame in numbered_episode(0, 10, size=4).observations}
    frames = store.sample_frames(n, rng)
    assert abs(np.mean([frame.tobytes() in short for frame in frames]) - expected) < tolerance


def test_an_unknown_sampling_rule_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown sampling 'uniform'; valid: episode, step"):
        EpisodeStore(tmp_path, "uniform")


def test_episode_and_store_check_their_input(tmp_path):
    e = numbered_episode(1)
    with pytest.raises(ValueError, match="equal lengths"):
        Episode(e.observations, e.actions[:-1], e.rewards, e.ends)
    with pytest.raises(ValueError, match="uint8"):
        Episode(e.observations.astype(np.float32), e.actions, e.rewards, e.ends)
    with pytest.raises(ValueError, match="empty episode store"):
        EpisodeStore(tmp_path).sample_frames(1, np.random.default_rng())


def test_sample_shapes_and_frames(tmp_path):
    store = EpisodeStore(tmp_path)
    for k in range(3):
        store.add(numbered_episode(k))
    rng = np.random.default_rng(0)
    stored = {frame.tobytes() for e in store.episodes for frame in e.observations}
    frames = store.sample_frames(256, rng)
    assert frames.shape == (256, 64, 64, 3) and frames.dtype == np.uint8
    assert all(f.tobytes() in stored for f in frames)
    segments = store.sample_segments(64, 20, rng, from_start=True)
    assert {k: (v.shape, v.dtype) for k, v in segments.items()} == {
        "observations": ((64, 20, 64, 64, 3), np.uint8),
        "actions": ((64, 20), np.int64),
        "rewards": ((64, 20), np.float32),
        "ends": ((64, 20), bool),
        "mask": ((64, 20), bool),
        "index": ((64, 20), np.int64),
    }


@pytest.mark.parametrize("from_start", [False, True])
def test_sample_segments_pad_outside_their_episode(tmp_path, from_start):
    store = EpisodeStore(tmp_path)
    lengths = (1, 3, 10)
    episodes = [numbered_episode(k, n, size=8) for k, n in enumerate(lengths)]  # small frames: many segments
    for e in episodes:
        store.add(e)
    length, batch = 5, 14_000
    seg = store.sample_segments(batch, length, np.random.default_rng(0), from_start=from_start)
    drawn = []
    for b in range(batch):
        edge = 0 if from_start else -1  # where the drawn step sits
        k, step = divmod(int(seg["actions"][b, edge]), 1000)
        if from_start:  # the drawn step first, then the episode's next steps, then padding after its end
            valid = min(length, lengths[k] - step)
            real, pad, window = slice(0, valid), slice(valid, length), slice(step, step + valid)
        else:  # padding before the episode's start, then its steps up to the drawn one
            valid = min(length, step + 1)
            real, pad, window = slice(length - valid, length), slice(0, length - valid), slice(step + 1 - valid, step + 1)
        assert seg["mask"][b, real].all() and not seg["mask"][b, pad].any()
        assert (seg["index"][b, pad] == -1).all()
        assert np.array_equal(seg["index"][b, real], sum(lengths[:k]) + np.arange(window.start, window.stop))
        for key in ("observations", "actions", "rewards", "ends"):
            assert not seg[key][b, pad].any()  # padding is zeros
            assert np.array_equal(seg[key][b, real], getattr(episodes[k], key)[window])
        drawn.append(sum(lengths[:k]) + step)
    counts = np.bincount(drawn, minlength=sum(lengths))
    # An episode uniformly, then a step uniformly in it: step s of episode k is drawn batch / 3 / lengths[k] times.
    expected = np.concatenate([np.full(n, batch / len(lengths) / n) for n in lengths])
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


WRITER = """
import sys
sys.path.insert(0, {tests!r})
from test_episodes import numbered_episode
from iris.episodes import EpisodeStore
store = EpisodeStore({directory!r})
k = store.num_episodes  # a restarted writer goes on where the killed one stopped
while True:
    store.add(numbered_episode(k))
    k += 1
"""


def kill_writer_while_adding(directory: Path, delay: float) -> None:
    """Start a writer, let it add three more episodes, then SIGKILL it `delay` seconds later."""
    script = WRITER.format(tests=str(Path(__file__).parent), directory=str(directory))
    target = len(list(directory.glob("*.npz"))) + 3
    writer = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while len(list(directory.glob("*.npz"))) < target:
            assert writer.poll() is None and time.monotonic() < deadline, "the writer did not get going"
            time.sleep(0.005)
        time.sleep(delay)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()


def test_killed_writer_leaves_only_whole_episodes(tmp_path):
    for delay in (0.004, 0.011, 0.019):  # different moments of a write (one takes ~25 ms)
        kill_writer_while_adding(tmp_path, delay)
    (tmp_path / ".000999.npz.leftover.tmp").write_bytes(b"half an episode")  # as a kill mid-write leaves it

    store = EpisodeStore(tmp_path)
    assert store.num_episodes >= 9 and store.ids == list(range(store.num_episodes))
    for k, episode in enumerate(store.episodes):
        assert_same_episode(episode, numbered_episode(k))
    assert not list(tmp_path.glob(".*.tmp")) and len(list(tmp_path.iterdir())) == store.num_episodes
