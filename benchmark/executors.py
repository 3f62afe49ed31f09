"""Where jobs run: one `Backend` interface (check the profile, submit, which jobs are alive, cancel) and three
plug-in backends, chosen by name (`--executor`); jobs.json records each submission's backend (benchmark/jobs.py).

local: submitit's LocalExecutor starts every job at once, so a campaign gets `max_parallel` worker jobs that
share the whole list (benchmark/worker.py): at most that many runs train at a time, the rest wait for a free
worker. Visible GPUs are dealt round-robin, one per worker (CUDA_VISIBLE_DEVICES), and the CPU cores evenly
(torch threads: oversubscribed cores slow every job down many times over).
slurm: one array task per run (a study: per worker), settings from a profile (benchmark/slurm_profiles.py);
the array's parallelism caps how many run at once.
debug: everything in this process, now, without submitit's DebugExecutor (which opens a pdb prompt when a run
fails); nothing stays alive to record.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from benchmark import slurm_profiles
from benchmark.slurm_profiles import Profile
from iris.errors import ConfigError

LOCAL_TIME_LIMIT_MIN = 30 * 24 * 60  # submitit's default is minutes; a local worker may train many runs
SUBMITIT_FOLDER = "submitit"  # in the campaign directory


def job_folder(root: Path) -> Path:
    """submitit's folder for a campaign's (or study's) jobs (%j: one subfolder per job), as its processes see it."""
    return (root / SUBMITIT_FOLDER / "%j").absolute()


class Backend:
    """Submits callables as jobs and knows which of them are still alive."""

    name: ClassVar[str]
    runs_here: ClassVar[bool]  # the jobs run on this machine (its device is theirs)
    in_process: ClassVar[bool] = False  # submit returns once the jobs have ended

    def __init__(self, profile: Profile | None = None):
        self.profile = profile

    def check_scheduler(self) -> None:
        """Before submitting (a dry run plans anywhere)."""

    def at_once(self, max_parallel: int | None) -> int | None:
        """How many runs train at a time (None: as many as the cluster gives): --max-parallel, else the backend's."""
        return max_parallel

    def submit_runs(self, folder: Path, worker: Callable, run_dirs: list[Path], args: tuple, max_parallel: int | None,
                    job_name: str) -> dict[str, list[Path]]:
        """Jobs that train `run_dirs` by worker([run dirs], *args, threads); returns {job id: run dirs it trains}."""
        raise NotImplementedError

    def start_workers(self, folder: Path, worker: Callable, args: tuple, count: int, job_name: str) -> list[str]:
        """`count` jobs of worker(*args, threads), all alike (a study's workers); returns their ids."""
        raise NotImplementedError

    def alive(self, job_ids: list[str], folder: str) -> set[str]:
        """Which of this backend's jobs, submitted to `folder`, are queued or running."""
        return set()

    def cancel(self, job_ids: list[str]) -> None:
        """Stop these live jobs; what they train stays resumable."""


class Local(Backend):
    name, runs_here = "local", True

    def at_once(self, max_parallel):
        return max_parallel or max(1, len(visible_gpus()))  # one per visible GPU, one without

    def submit_runs(self, folder, worker, run_dirs, args, max_parallel, job_name):
        parallel = self.at_once(max_parallel)
        # The CPU share follows the declared parallelism, so the last run of a campaign keeps its share too.
        job_ids = self._start(folder, worker, ([str(d) for d in run_dirs], *args), min(parallel, len(run_dirs)),
                              cpu_share(parallel))
        return dict.fromkeys(job_ids, run_dirs)

    def start_workers(self, folder, worker, args, count, job_name):
        return self._start(folder, worker, args, count, cpu_share(count))

    @staticmethod
    def _start(folder: Path, worker: Callable, args: tuple, count: int, threads: int) -> list[str]:
        """Each job gets one visible GPU (round-robin) and `threads` torch threads. A job's id is the pid of its
        submitit controller process."""
        import submitit  # here, not at import: it reconfigures logging, closing handlers on a captured stderr

        executor = submitit.LocalExecutor(folder)
        gpus = visible_gpus()
        job_ids = []
        with _stdio_to(folder.parent / "local-controllers.log"), interruptible_children():
            for i in range(count):
                params = {"timeout_min": LOCAL_TIME_LIMIT_MIN}
                if gpus:
                    params.update(gpus_per_node=1, visible_gpus=[gpus[i % len(gpus)]])
                executor.update_parameters(**params)
                job_ids.append(executor.submit(worker, *args, threads).job_id)
        return job_ids

    def alive(self, job_ids, folder):
        return {job_id for job_id in job_ids if controller_alive(int(job_id), folder)}

    def cancel(self, job_ids):
        """SIGINT to the controller, which interrupts its task, then kills it (submitit's own LocalJob.cancel)."""
        for job_id in job_ids:
            try:
                os.kill(int(job_id), signal.SIGINT)
            except ProcessLookupError:
                pass


class Slurm(Backend):
    name, runs_here = "slurm", False

    def at_once(self, max_parallel):
        return max_parallel if max_parallel is not None else self.profile.params.get("array_parallelism")

    def check_scheduler(self):
        if shutil.which("sbatch") is None:
            raise ConfigError("--executor slurm: sbatch not found; submit from a machine of the SLURM cluster")

    def submit_runs(self, folder, worker, run_dirs, args, max_parallel, job_name):
        jobs = self._array(folder, worker, [([str(d)], *args) for d in run_dirs], job_name, max_parallel)
        return {job_id: [d] for job_id, d in zip(jobs, run_dirs)}

    def start_workers(self, folder, worker, args, count, job_name):
        return self._array(folder, worker, [args] * count, job_name, None)

    def _array(self, folder: Path, worker: Callable, calls: list[tuple], job_name: str,
               max_parallel: int | None) -> list[str]:
        """One job array, a task per call (its args, then the profile's CPUs as the torch threads)."""
        import submitit

        executor = submitit.SlurmExecutor(folder, max_num_timeout=self.profile.max_requeues)
        params = {"job_name": job_name, **self.profile.params}
        if max_parallel is not None:  # caps the array's running tasks
            params["array_parallelism"] = max_parallel
        executor.update_parameters(**params)
        threads = self.profile.params.get("cpus_per_task")
        try:
            jobs = executor.map_array(worker, *zip(*[(*call, threads) for call in calls]))
        except submitit.core.utils.FailedJobError as e:  # sbatch said no: a partition, account, qos or limit
            reason = next((line for line in str(e).splitlines() if "error" in line.lower()), str(e).splitlines()[0])
            raise ConfigError(f"sbatch refused the job array ({reason.strip()}); check the profile "
                              f"{self.profile.path}") from None
        return [job.job_id for job in jobs]

    def alive(self, job_ids, folder):
        queue = slurm_queue()
        # Unknown queue: every job is taken as alive, so none of its runs is submitted a second time.
        return set(job_ids) if queue is None else set(job_ids) & queue

    def cancel(self, job_ids):
        if job_ids:
            subprocess.run(["scancel", *job_ids], check=True, timeout=60)


class Debug(Backend):
    name, runs_here, in_process = "debug", True, True

    def at_once(self, max_parallel):
        return 1

    def submit_runs(self, folder, worker, run_dirs, args, max_parallel, job_name):
        self._call(worker, ([str(d) for d in run_dirs], *args, None))
        return {}

    def start_workers(self, folder, worker, args, count, job_name):
        self._call(worker, (*args, None))
        return []

    @staticmethod
    def _call(worker: Callable, args: tuple) -> None:
        try:
            worker(*args)
        except RuntimeError as e:  # failed runs: each one's status.json and the wait that follows say which
            print(f"iris-bench: {e}", file=sys.stderr)


BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (Local, Slurm, Debug)}


def backend(name: str, profile: str | None = None) -> Backend:
    """The backend `name` with its profile (a SLURM profile file, for slurm only), checked."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown executor {name!r}; valid: {', '.join(BACKENDS)}")
    if name == Slurm.name and profile is None:
        raise ConfigError("--executor slurm needs --profile slurm/profiles/NAME.yaml (see slurm/profiles/example.yaml)")
    if name != Slurm.name and profile is not None:
        raise ConfigError(f"--profile is for --executor slurm, not {name}")
    return BACKENDS[name](slurm_profiles.load(profile) if profile else None)


def cpu_share(jobs: int) -> int:
    """Torch threads per job when `jobs` share this machine. Oversubscribed cores are ruinous for torch:
    measured here, 2 threads on 2 cores with one busy elsewhere made epochs 6-10x slower than 1 thread."""
    return max(1, (os.cpu_count() or 1) // jobs)


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


@contextlib.contextmanager
def interruptible_children():
    """Start processes that SIGINT stops (Local.cancel sends it), even from a command whose SIGINT is ignored, as it
    is under `nohup` or `cmd &` in a script: an ignored signal stays ignored in children, a handled one does not."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def controller_alive(pid: int, folder: str) -> bool:
    """Whether `pid` is still a live process started for a job in `folder`: submitit's local controller is
    started with the job folder on its command line (a reused pid would not name it; a zombie has no command line)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return folder.encode() in args


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
