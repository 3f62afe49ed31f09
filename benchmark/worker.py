"""What a submitted job runs: one pass over its run directories, training each one that is unfinished and
not locked by another process, while holding that run's lock.

Workers of one local submission share the same list and walk it in the same order, so the lock alone
spreads the runs among them. The worker is Checkpointable: on preemption or time limit submitit
requeues the same call, and the interrupted run resumes from its last epoch checkpoint.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import submitit

from benchmark import locks, tracking
from benchmark.status import is_finished
from iris.vocabulary import MLFLOW_FAILED, MLFLOW_FINISHED, MLFLOW_KILLED


class Worker(submitit.helpers.Checkpointable):
    def __call__(self, run_dirs: list[str], target: tracking.Target, threads: int | None = None) -> dict[str, str]:
        """`threads`: torch CPU threads, the job's share of the cores (torch would take them all)."""
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        outcomes = {run_dir: train_run(Path(run_dir), target) for run_dir in run_dirs}
        failed = [f"{run_dir}: {outcome}" for run_dir, outcome in outcomes.items() if outcome.startswith("failed")]
        if failed:
            raise RuntimeError(f"{len(failed)} run(s) failed: " + "; ".join(failed))
        return outcomes


def train_run(run_dir: Path, target: tracking.Target) -> str:
    """Train (or resume) one run unless it is finished or held; returns what happened."""
    with locks.hold(run_dir / locks.RUN_LOCK, owner=job_label()) as got:
        if not got:
            return "skipped: running elsewhere"
        if is_finished(run_dir):
            return "skipped: finished"
        from iris.api import train_run

        tracker = tracking.LiveTracker(run_dir, target)
        try:
            train_run(run_dir, on_epoch=tracker.on_epoch)
        except Exception as e:  # this run failed (status.json says why); the others still get trained
            traceback.print_exc()
            tracker.close(MLFLOW_FAILED)
            return f"failed: {type(e).__name__}: {e}"
        except BaseException:  # interrupted: cancelled, preempted, timed out; resumable
            tracker.close(MLFLOW_KILLED)
            raise
        tracker.close(MLFLOW_FINISHED)
        return "finished"


def job_label() -> str:
    """This job's id as the scheduler knows it (SLURM "123_4", a local controller's pid), for status."""
    try:
        return submitit.JobEnvironment().job_id
    except RuntimeError:  # not inside a submitit job
        return f"pid {os.getpid()}"
