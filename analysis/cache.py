"""Bootstrap results kept on disk. A method's intervals (and a pair's probability of improvement) are a pure function
of its scores, its name (which seeds its random stream), the games, the repetitions, the seed and the resampling code,
so a report computes each only once.

The published baselines' results at the report's defaults (all 26 games, 50,000 repetitions, seed 0) ship in
analysis/data/bootstrap/: they are ~9 of the ~16 s of CPU a report of the 17 shipped methods takes on 2 cores, the
same for every user. Everything else goes to the user's cache: $IRIS_BENCH_CACHE, else $XDG_CACHE_HOME/iris-bench,
else ~/.cache/iris-bench. tests/test_analysis_cache.py recomputes the shipped entries; to refresh them after a change
to the resampling, bump RESAMPLING_VERSION and run
    rm analysis/data/bootstrap/*.json
    IRIS_BENCH_CACHE=analysis/data iris-bench report --baselines all --out /tmp/report
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from iris.errors import DiskFull
from iris.rundir import atomic_write_bytes

SHIPPED = Path(__file__).parent / "data" / "bootstrap"
# Part of every key: bump it when the draws or a statistic change, so no entry computed before is ever read.
RESAMPLING_VERSION = 1


def user_cache() -> Path:
    root = os.environ.get("IRIS_BENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache",
                                                      "iris-bench")
    return Path(root) / "bootstrap"


def key(kind: str, *parts: object) -> str:
    digest = hashlib.sha256(f"{kind} v{RESAMPLING_VERSION}".encode())
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype} {part.shape}".encode())
            digest.update(part.tobytes())  # C order, whatever the array's layout
        else:
            digest.update(repr(part).encode())
    return f"{kind}-{digest.hexdigest()[:32]}"


def cached(kind: str, parts: tuple, compute: Callable[[], dict]) -> dict:
    """compute(), or what it returned before for the same kind and parts (shipped, else in the user's cache). An
    unreadable entry is computed again and replaced; a cache that cannot be written costs only the time."""
    name, mine = key(kind, *parts) + ".json", user_cache()
    for directory in (SHIPPED, mine):
        try:
            return json.loads((directory / name).read_text())["result"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    result = compute()
    try:
        # Keys in the order computed (not sorted): a report from an entry writes its files as one computing it does.
        entry = json.dumps({"kind": kind, "result": result}, indent=1) + "\n"
        atomic_write_bytes(mine / name, entry.encode())  # a report running beside this one reads all of it or none
    except (OSError, DiskFull):
        pass
    return result
