"""A campaign's submissions (jobs.json: executor, submitit folder, job id -> run keys) and which of
those jobs are still alive, as each one's backend tells (benchmark/executors.py).

A run assigned to a live job is "queued" until the job takes its lock: it is not submitted again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from benchmark import executors
from iris import rundir

JOBS_FILE = "jobs.json"


def record(root: Path, executor: str, folder: Path, assignment: dict[str, list[str]]) -> None:
    """Append one submission by the backend named `executor`: {job id: [run keys it will train]}."""
    submissions = load(root)
    submissions.append({"executor": executor, "submitted": time.time(), "folder": str(folder), "jobs": assignment})
    rundir.atomic_write_json(root / JOBS_FILE, {"submissions": submissions})


def load(root: Path) -> list[dict]:
    return (rundir.read_json(Path(root) / JOBS_FILE) or {"submissions": []})["submissions"]


def live_assignment(root: Path) -> dict[str, str]:
    """Run key -> id of the live job that will (or does) train it; the latest submission wins."""
    submissions = load(root)
    alive = alive_job_ids(submissions)
    assignment = {}
    for submission in submissions:
        for job_id, keys in submission["jobs"].items():
            if job_id in alive:
                assignment.update(dict.fromkeys(keys, job_id))
    return assignment


def alive_job_ids(submissions: list[dict]) -> set[str]:
    """Ids of the jobs still queued or running, each asked of the backend that ran it."""
    by_backend: dict[tuple[str, str], list[str]] = {}
    for s in submissions:
        by_backend.setdefault((s["executor"], s["folder"]), []).extend(s["jobs"])
    return {job_id for (name, folder), ids in by_backend.items() for job_id in executors.BACKENDS[name]().alive(ids, folder)}


RESIGNAL_S = 5.0  # a job still alive this long after its signal is signalled again


def cancel(root: Path, timeout_s: float = 120.0,
           settled: Callable[[set[str]], bool] = lambda stopped: True) -> tuple[list[str], list[str]]:
    """Stop every live job of the campaign (or study) and wait until they are gone and `settled(their ids)`.
    A job still alive RESIGNAL_S after its signal gets it again: a signal can be lost (a local submitit controller
    still importing swallows its SIGINT; seen in CI, where the job then ran on). Returns (the ids stopped, those
    still alive at the deadline)."""
    submissions = load(root)  # the stopped jobs' entries: later submissions add no job to stop
    stopped = set(_signal(submissions, alive_job_ids(submissions)))
    alive = set(stopped)
    deadline, resignal = time.monotonic() + timeout_s, time.monotonic() + RESIGNAL_S
    while stopped and time.monotonic() < deadline:
        alive = alive_job_ids(submissions) & stopped
        if not alive and settled(stopped):
            break
        if alive and time.monotonic() >= resignal:
            _signal(submissions, alive)
            resignal = time.monotonic() + RESIGNAL_S
        time.sleep(0.5)
    return sorted(stopped), sorted(alive)


def _signal(submissions: list[dict], ids: set[str]) -> list[str]:
    """Ask each job's backend to stop it; returns the ids asked."""
    by_backend: dict[str, list[str]] = {}
    for s in submissions:
        by_backend.setdefault(s["executor"], []).extend(sorted(j for j in s["jobs"] if j in ids))
    for name, job_ids in by_backend.items():
        executors.BACKENDS[name]().cancel(job_ids)
    return [job_id for job_ids in by_backend.values() for job_id in job_ids]
