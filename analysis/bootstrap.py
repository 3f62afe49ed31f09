"""Stratified percentile bootstrap, vectorised: each game's runs are resampled with replacement (the games
stay fixed, as in rliable's StratifiedBootstrap), for many repetitions at once, as draw counts per run.

rliable draws one repetition at a time in Python (~6 s per method and metric at 50,000 repetitions here);
drawing index arrays for a chunk of repetitions and computing the statistic on all of them at once gives the
same intervals (tests/test_analysis_bootstrap.py compares them) in a fraction of the time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import zlib
from collections.abc import Iterator

import numpy as np

# Values resampled at once. Small enough that NumPy's temporaries (8 MB of float64 at most) are reused from the
# heap instead of being mapped afresh each time: 4x larger chunks made the bootstrap ~1.5-2x slower here, in
# page faults (system time).
CHUNK_ELEMENTS = 1 << 20

# Fewer runs per game than this give point estimates only. The percentile bootstrap's spread is that of the runs
# drawn, whose variance is (n - 1) / n of the population's: with 2 runs the interval is sqrt(1/2) = 0.71 of the
# width it should have and a nominal 95% interval covers about 83% (a normal statistic: 2 Phi(1.96 * 0.71) - 1);
# with 3 runs 0.82 (89%), with 5 runs 0.89 (92%). With 2 runs and one game there are only 3 distinct resamples.
MIN_RUNS = 3


def enough_runs(*runs: int) -> bool:
    return min(runs) >= MIN_RUNS


def too_few_runs(runs: int) -> str:
    """Why a method with `runs` runs per game has no interval."""
    if runs == 1:
        return "1 run per game (a single published value): point estimates only"
    return f"{runs} runs: too few for a bootstrap interval (at least {MIN_RUNS}; see analysis/bootstrap.py)"


def keep_freed_memory() -> None:
    """Let glibc keep the memory of freed NumPy temporaries for the next chunk instead of returning it to the system
    and faulting it in again: that cost a report of 18 methods at 50,000 repetitions 12 s of system time in 41 s
    here (27 s without). No-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: allocations below 1 GiB come from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of freed heap
    except (OSError, AttributeError, TypeError):
        pass


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator per seed and method (or pair): a method's intervals do not depend on the other methods."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


def run_indices(rng: np.random.Generator, reps: int, runs: int, games: int, per_rep: int) -> Iterator[np.ndarray]:
    """Chunks of (chunk, runs, games) indices: which run each resampled run of each game is."""
    chunk = max(1, CHUNK_ELEMENTS // per_rep)
    dtype = np.int16 if runs < 2**15 else np.int64  # 16-bit draws are ~10x faster than 64-bit ones
    for start in range(0, reps, chunk):
        yield rng.integers(runs, size=(min(chunk, reps - start), runs, games), dtype=dtype)


def run_counts(indices: np.ndarray) -> np.ndarray:
    """How often each run is drawn, (chunk, games, runs), from indices (chunk, runs, games)."""
    chunk, runs, games = indices.shape
    slots = np.arange(chunk * games).reshape(chunk, 1, games) * runs + indices  # one block of `runs` bins per game
    return np.bincount(slots.ravel(), minlength=chunk * games * runs).reshape(chunk, games, runs)


def percentile_interval(replicates: np.ndarray, size: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval over the repetitions (axis 0), like arch's `conf_int(method="percentile")`."""
    tail = 100 * (1 - size) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return low, high
