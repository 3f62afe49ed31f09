"""Hand run directories to submitit: local (the default), slurm (one job array) or debug (in-process).

local: submitit's LocalExecutor starts every job at once, so it gets `max_parallel` worker jobs that
share the whole list (benchmark/worker.py): at most that many runs train at a time, the rest wait for
a free worker. Visible GPUs are dealt round-robin, one per worker (CUDA_VISIBLE_DEVICES), and the CPU
cores evenly (torch threads: oversubscribed cores slow every job down many times over).
slurm: one array task per run, settings from a profile (benchmark/profiles.py); the array's
parallelism caps how many run at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import submitit

from benchmark import tracking
from benchmark.profiles import Profile
from benchmark.worker import Worker
from iris.errors import ConfigError

EXECUTORS = ("local", "slurm", "debug")
LOCAL_TIME_LIMIT_MIN = 30 * 24 * 60  # submitit's default is minutes; a local worker may train many runs
SUBMITIT_FOLDER = "submitit"  # in the campaign directory


def job_folder(campaign_root: Path) -> Path:
    """submitit's folder for the campaign's jobs (%j: one subfolder per job), as its processes see it."""
    return (campaign_root / SUBMITIT_FOLDER / "%j").absolute()


def check(name: str, profile: str | None) -> None:
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")
    if name == "slurm" and profile is None:
        raise ConfigError("--executor slurm needs --profile slurm/profiles/NAME.yaml (see slurm/profiles/example.yaml)")
    if name != "slurm" and profile is not None:
        raise ConfigError(f"--profile is for --executor slurm, not {name}")


def check_scheduler(name: str) -> None:
    """Before submitting (a dry run plans for SLURM anywhere)."""
    if name == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError("--executor slurm: sbatch not found; submit from a machine of the SLURM cluster")


def at_once(name: str, max_parallel: int | None, profile: Profile | None) -> int | None:
    """How many runs train at a time: --max-parallel, else local one per visible GPU (one without), slurm the profile's
    array_parallelism (None: as many as the cluster gives), debug one."""
    if max_parallel is not None:
        return max_parallel
    if name == "slurm":
        return profile.params.get("array_parallelism")
    return max(1, len(visible_gpus())) if name == "local" else 1


def submit(name: str, campaign_root: Path, run_dirs: list[Path], target: tracking.Target,
           max_parallel: int | None, profile: Profile | None) -> dict[str, list[Path]]:
    """Submit; returns {job id: run directories it will train}. debug trains them here and now."""
    folder = job_folder(campaign_root)
    if name == "slurm":
        return _submit_slurm(folder, run_dirs, target, max_parallel, profile, campaign_root.name)
    if name == "local":
        return _submit_local(folder, run_dirs, target, max_parallel)
    try:  # in this process, without submitit's DebugExecutor (which opens a pdb prompt when a run fails)
        Worker()([str(d) for d in run_dirs], target, None)
    except RuntimeError as e:  # failed runs: each one's status.json and the wait that follows say which
        print(f"iris-bench: {e}", file=sys.stderr)
    return {}


def _submit_local(folder: Path, run_dirs: list[Path], target: tracking.Target,
                  max_parallel: int | None) -> dict[str, list[Path]]:
    parallel = at_once("local", max_parallel, None)
    workers = min(parallel, len(run_dirs))
    # The CPU share follows the declared parallelism, so the last run of a campaign keeps its share too.
    args = ([str(d) for d in run_dirs], target)
    job_ids = start_local_workers(folder, Worker(), args, workers, cpu_share(parallel))
    return dict.fromkeys(job_ids, run_dirs)


def cpu_share(jobs: int) -> int:
    """Torch threads per job when `jobs` share this machine. Oversubscribed cores are ruinous for torch:
    measured here, 2 threads on 2 cores with one busy elsewhere made epochs 6-10x slower than 1 thread."""
    return max(1, (os.cpu_count() or 1) // jobs)


def start_local_workers(folder: Path, worker: Callable, args: tuple, count: int,
                        threads: int | None = None) -> list[str]:
    """Start `count` local jobs of worker(*args, threads) at once; returns their ids. Each job gets one
    visible GPU (round-robin) and `threads` (default: an even share of the CPU cores)."""
    executor = submitit.LocalExecutor(folder)
    gpus = visible_gpus()
    threads = threads or cpu_share(count)
    job_ids = []
    with _stdio_to(folder.parent / "local-controllers.log"):
        for i in range(count):
            params = {"timeout_min": LOCAL_TIME_LIMIT_MIN}
            if gpus:
                params.update(gpus_per_node=1, visible_gpus=[gpus[i % len(gpus)]])
            executor.update_parameters(**params)
            job_ids.append(executor.submit(worker, *args, threads).job_id)
    return job_ids


@contextlib.contextmanager
def _stdio_to(log: Path):
    """Point stdin/stdout/stderr elsewhere while starting local jobs, which inherit them: a pipe reading
    this command (`| tee`, a test capturing it) would otherwise stay open until every job ends."""
    sys.stdout.flush()
    sys.stderr.flush()
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    null, out = os.open(os.devnull, os.O_RDONLY), os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for fd, target in ((0, null), (1, out), (2, out)):
            os.dup2(target, fd)
        yield
    finally:
        for fd, original in zip((0, 1, 2), saved):
            os.dup2(original, fd)
            os.close(original)
        os.close(null)
        os.close(out)


def _submit_slurm(folder: Path, run_dirs: list[Path], target: tracking.Target, max_parallel: int | None,
                  profile: Profile, campaign: str) -> dict[str, list[Path]]:
    executor = slurm_executor(folder, profile, f"iris-{campaign}", max_parallel)
    n = len(run_dirs)
    try:
        jobs = executor.map_array(Worker(), [[str(d)] for d in run_dirs], [target] * n,
                                  [profile.params.get("cpus_per_task")] * n)
    except submitit.core.utils.FailedJobError as e:  # sbatch said no: a partition, account, qos or limit
        reason = next((line for line in str(e).splitlines() if "error" in line.lower()), str(e).splitlines()[0])
        raise ConfigError(f"sbatch refused the job array ({reason.strip()}); check the profile {profile.path}") from None
    return {job.job_id: [d] for job, d in zip(jobs, run_dirs)}


def slurm_executor(folder: Path, profile: Profile, job_name: str, max_parallel: int | None) -> submitit.SlurmExecutor:
    """A SLURM executor with the profile's settings; `max_parallel` caps a job array's running tasks."""
    executor = submitit.SlurmExecutor(folder, max_num_timeout=profile.max_requeues)
    params = {"job_name": job_name, **profile.params}
    if max_parallel is not None:
        params["array_parallelism"] = max_parallel
    executor.update_parameters(**params)
    return executor


def visible_gpus() -> list[int]:
    """GPU indices this process may use: $CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [int(x) for x in env.split(",") if x.strip().isdigit()]
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                         text=True, timeout=30)
    return [int(x) for x in out.stdout.split() if x.isdigit()] if out.returncode == 0 else []
