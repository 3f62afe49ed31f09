"""Figures for the campaign machinery at full scale (26 games x 5 seeds), as a user sees them: each
command runs as its own process in a scratch runs root, and the submitted jobs are cancelled at once.
Targets: planning + submitting under 10 s, `status` under 2 s. Wall time depends on what else the
machine runs; CPU time (the command's own) does not."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark.measure.rows import Row


def campaign_timings(executor: str = "local", profile: str | None = None) -> list[Row]:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        where = ["--campaign", "timing", "--runs-root", str(Path(tmp) / "runs")]
        run = ["run", "--games", "all", "--seeds", "5", "--executor", executor, "--max-parallel", "1", *where]
        run += ["--profile", profile] if profile else []
        steps = [("dry run", run + ["--dry-run"]),
                 ("plan + submit, new campaign", run),  # creates the campaign's MLflow store
                 ("rerun, nothing to submit", run),
                 ("status", ["status", *where])]
        rows = []
        try:
            for label, args in steps:
                wall, cpu = measure(args)
                rows += [(f"26x5 campaign: {label}", wall, "s"), (f"26x5 campaign: {label}, CPU", cpu, "s")]
        finally:
            measure(["cancel", *where], check=False)
    return rows


def measure(args: list[str], check: bool = True, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of `iris-bench ARGS` (CPU: the command and the children it waited for), with `env`
    added to this environment."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tic = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True,
                          env=os.environ | (env or {}))
    wall = time.perf_counter() - tic
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and done.returncode != 0:
        raise RuntimeError(f"iris-bench {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
