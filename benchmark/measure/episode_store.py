"""The episode store's figures for 100k frames: memory held, RSS, disk, write and sampling times
(`iris-bench perf --store`)."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.measure.rows import Row
from iris.episodes import Episode, EpisodeStore

GIB = 2**30


def rss_bytes() -> int:
    """Resident memory now (VmRSS); getrusage only knows the peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _atari_like_episode(rng: np.random.Generator, length: int, size: int = 64) -> Episode:
    """Frames of 8x8-pixel blocks: about as compressible as Atari frames, so writing costs what it would."""
    blocks = rng.integers(0, 256, (length, size // 8, size // 8, 3), dtype=np.uint8)
    return Episode(
        observations=blocks.repeat(8, axis=1).repeat(8, axis=2),
        actions=rng.integers(0, 18, length),
        rewards=rng.normal(size=length),
        ends=np.arange(length) == length - 1,
    )


def _time_ms(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def store_memory_benchmark(frames: int = 100_000, episode_length: int = 200) -> list[Row]:
    """Fill an EpisodeStore with `frames` 64x64 RGB frames: resident memory, write, reopen and sampling times."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as directory:
        rss_before = rss_bytes()
        start = time.perf_counter()
        store = EpisodeStore(directory)
        for _ in range(frames // episode_length):
            store.add(_atari_like_episode(rng, episode_length))
        fill_s = time.perf_counter() - start
        rss_after = rss_bytes()
        pixels = sum(e.observations.nbytes for e in store.episodes)
        disk = sum(p.stat().st_size for p in Path(directory).iterdir())
        segments_ms = _time_ms(lambda: store.sample_segments(64, 20, rng, from_start=True), 20)
        frames_ms = _time_ms(lambda: store.sample_frames(256, rng), 20)
        num_steps, num_episodes = store.num_steps, store.num_episodes
        del store
        start = time.perf_counter()
        EpisodeStore(directory)
        reopen_s = time.perf_counter() - start
    return [
        ("frames stored", num_steps, "frames"),
        ("episodes stored", num_episodes, "episodes"),
        ("pixels held", pixels / GIB, "GiB"),
        ("RSS growth while filling", (rss_after - rss_before) / GIB, "GiB"),
        ("RSS after filling", rss_after / GIB, "GiB"),
        ("peak RSS (reopen included)", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, "GiB"),
        ("on disk (compressed)", disk / GIB, "GiB"),
        ("add, per episode", fill_s / num_episodes * 1000, "ms"),
        ("reopen", reopen_s, "s"),
        ("sample_segments(64, 20)", segments_ms, "ms"),
        ("sample_frames(256)", frames_ms, "ms"),
    ]
