"""A campaign's submissions (jobs.json: executor, submitit folder, job id -> run keys) and which of
those jobs are still alive: in SLURM's queue (squeue), or a local submitit controller process.

A run assigned to a live job is "queued" until the job takes its lock: it is not submitted again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from iris import rundir

JOBS_FILE = "jobs.json"
LOCAL_CONTROLLER = "submitit.local._local"  # the module a submitit local job's controller process runs


def record(root: Path, executor: str, folder: Path, assignment: dict[str, list[str]]) -> None:
    """Append one submission: {job id: [run keys it will train]}."""
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
    alive = set()
    if any(s["executor"] == "slurm" for s in submissions):
        queue = slurm_queue()
        # Unknown queue: every SLURM job is taken as alive, so none of its runs is submitted a second time.
        alive |= queue if queue is not None else {j for s in submissions if s["executor"] == "slurm" for j in s["jobs"]}
    for s in submissions:
        if s["executor"] == "local":
            alive |= {job_id for job_id in s["jobs"] if local_alive(int(job_id), s["folder"])}
    return alive


def slurm_queue() -> set[str] | None:
    """Ids of this user's queued or running SLURM jobs, array tasks one by one ("123_4"); None if squeue failed."""
    try:
        out = subprocess.run(["squeue", "--me", "--noheader", "--array", "--format=%i"], capture_output=True,
                             text=True, timeout=60)
        problem = out.stderr.strip().splitlines()[0] if out.returncode and out.stderr.strip() else (
            f"exit {out.returncode}" if out.returncode else "")
    except (OSError, subprocess.TimeoutExpired) as e:
        problem = str(e)
    if problem:
        print(f"iris-bench: warning: squeue failed ({problem}); the campaign's SLURM jobs are taken as still queued, "
              "so none of their runs is submitted again: rerun once squeue answers", file=sys.stderr)
        return None
    return set(out.stdout.split())


def local_alive(pid: int, folder: str) -> bool:
    """Whether `pid` is still the submitit controller of a job in `folder` (not a reused pid, not a zombie)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return LOCAL_CONTROLLER.encode() in args and folder.encode() in args


def cancel(root: Path) -> list[str]:
    """Stop every live job of the campaign; returns their ids. SLURM: scancel. Local: SIGINT to the
    controller, which interrupts its task then kills it (submitit's own LocalJob.cancel)."""
    submissions = load(root)
    alive = alive_job_ids(submissions)
    slurm_ids = sorted(j for s in submissions if s["executor"] == "slurm" for j in s["jobs"] if j in alive)
    local_ids = sorted(j for s in submissions if s["executor"] == "local" for j in s["jobs"] if j in alive)
    if slurm_ids:
        subprocess.run(["scancel", *slurm_ids], check=True, timeout=60)
    for job_id in local_ids:
        try:
            os.kill(int(job_id), signal.SIGINT)
        except ProcessLookupError:
            pass
    return slurm_ids + local_ids
