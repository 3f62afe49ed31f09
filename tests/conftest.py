"""Fixtures of the campaign, SLURM, tracking and fault tests: the iris-bench command run as a user runs it, a
scratch runs root whose jobs are cancelled at the end, tiny runs, the one-node test cluster and small disks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The one shrunk run of the tests, on any preset: 8 epochs of well under a second each on 2 cores (a test can
# still catch one mid-run); 50-step episodes (200 raw frames), so each epoch completes an episode. Tests that need
# more of some part (evaluations, a longer horizon) say which values they change: {**SHRUNK, ...}.
SHRUNK = {
    "training.epochs": 8, "training.collect_steps": 50, "training.eval_every": 0, "training.final_eval_episodes": 1,
    "env.train_max_frames": 200, "env.test_max_frames": 200,
    "tokenizer.steps_per_epoch": 2, "tokenizer.batch_size": 4, "tokenizer.start_after_epoch": 0,
    "world_model.steps_per_epoch": 2, "world_model.batch_size": 2, "world_model.start_after_epoch": 1,
    "actor_critic.steps_per_epoch": 2, "actor_critic.batch_size": 2, "actor_critic.start_after_epoch": 2,
}


@pytest.fixture(autouse=True)
def bootstrap_cache(tmp_path, monkeypatch) -> Path:
    """Each test's own cache of bootstrap results (analysis/cache.py): none writes to the user's, none reads another's."""
    monkeypatch.setenv("IRIS_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "bootstrap"


@pytest.fixture
def tiny_set() -> list[str]:
    """--set arguments for SHRUNK."""
    return set_args(SHRUNK)


def set_args(overrides: dict) -> list[str]:
    """--set arguments for config overrides {key: value}."""
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]


# A shrunk catch run for the trainer's tests: 4 envs, 4 epochs with an evaluation every 2 and a random baseline,
# enough steps per component to exercise each, a one-layer world model and a 4-step horizon.
QUICK = [f"{key}={value}" for key, value in {
    **SHRUNK, "training.epochs": 4, "training.collect_steps": 32, "training.collect_envs": 4, "training.eval_every": 2,
    "training.eval_episodes": 4, "training.final_eval_episodes": 4, "training.random_baseline_episodes": 24,
    "tokenizer.steps_per_epoch": 3, "tokenizer.batch_size": 8, "world_model.steps_per_epoch": 3,
    "world_model.batch_size": 4, "world_model.num_layers": 1, "actor_critic.batch_size": 4, "actor_critic.horizon": 4,
}.items()]


@pytest.fixture
def iris_bench():
    """Run `iris-bench ARGS...` in its own process; fails the test on a non-zero exit unless check=False.
    Tracking goes to the campaign's embedded store unless `env` names MLFLOW_TRACKING_URI."""

    def run(*args, env: dict | None = None, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | (env or {})
        done = subprocess.run([sys.executable, "-m", "benchmark.cli", *map(str, args)], cwd=REPO, text=True,
                              capture_output=True, env=environ, timeout=timeout)
        if check and done.returncode != 0:
            command = " ".join(map(str, args))
            pytest.fail(f"iris-bench {command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    return run


@pytest.fixture
def runs_root(tmp_path, iris_bench):
    """A runs root; every job still alive in it at the end is cancelled."""
    from benchmark import campaign

    root = tmp_path / "runs"
    yield root
    for name in campaign.names(root):
        iris_bench("cancel", "--campaign", name, "--runs-root", root, check=False)


@pytest.fixture
def wait_for():
    """Poll `predicate` until it returns something truthy (returned) or fail after `timeout` seconds."""

    def wait(predicate, timeout: float, what: str, every: float = 0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    return wait


@pytest.fixture(scope="session")
def slurm_cluster() -> Path:
    """The test cluster's profile, once `sinfo` shows a usable node: tests are skipped where SLURM is not
    running, and fail in CI (CI=true), where .ci/slurm.sh start runs before them."""
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=10)
        problem = out.stderr.strip() if out.returncode else ""
        if not problem and not any(s.startswith(("idle", "mixed", "alloc")) for s in out.stdout.split()):
            problem = f"no usable node (states: {out.stdout.split() or 'none'})"
    except (OSError, subprocess.TimeoutExpired) as e:
        problem = str(e)
    if problem:
        reason = f"SLURM is not running ({problem}); start it with `slurm/testcluster/cluster.sh start`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return REPO / "slurm" / "profiles" / "testcluster.yaml"


class MlflowServers:
    """Real MLflow servers on 127.0.0.1, each in its own process group (`iris-bench tracking-server ...` or
    `mlflow server ...`); `kill` stops one at once (SIGKILL: a crash), `close` every one still running."""

    def __init__(self, folder: Path):
        self.folder, self.processes = folder, {}

    def start(self, args: list, port: int, env: dict | None = None) -> str:
        from benchmark.tracking_server import uri, wait_healthy

        environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        environ |= {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"} | (env or {})
        log = open(self.folder / f"server-{port}.log", "a")
        process = subprocess.Popen([sys.executable, "-m", *map(str, args)], cwd=REPO, env=environ, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        server_uri = uri("127.0.0.1", port)
        self.processes[server_uri] = process
        wait_healthy(server_uri, process)
        return server_uri

    def log(self, port: int) -> str:
        return (self.folder / f"server-{port}.log").read_text()

    def kill(self, server_uri: str) -> None:
        process = self.processes.pop(server_uri)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def close(self) -> None:
        for server_uri in list(self.processes):
            self.kill(server_uri)


@pytest.fixture
def mlflow_servers(tmp_path):
    servers = MlflowServers(tmp_path)
    yield servers
    servers.close()


class SmallDisks:
    """Real file systems of a few megabytes (tmpfs), mounted in a test's folder and unmounted at its end. Where this
    process may not mount one (not root, a container without the capability) the test is skipped."""

    def __init__(self, folder: Path):
        self.folder, self.mounted = folder, []

    def mount(self, size: int) -> Path:
        where = self.folder / f"disk{len(self.mounted)}"
        where.mkdir()
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                  capture_output=True, text=True, timeout=30)
            problem = (done.stderr.splitlines() or [f"exit {done.returncode}"])[0] if done.returncode else ""
        except OSError as e:  # no mount command
            problem = str(e)
        if problem:
            pytest.skip(f"cannot mount a small tmpfs here ({problem.strip()}): the full-disk tests need root")
        self.mounted.append(where)
        return where

    @staticmethod
    def fill(disk: Path, leave: int = 0) -> Path:
        """A ballast file taking all but `leave` bytes of the disk's free space; delete it to free them."""
        ballast = disk / "ballast"
        with open(ballast, "ab") as f:
            f.write(bytes(max(shutil.disk_usage(disk).free - leave, 0)))
        return ballast

    def close(self) -> None:
        for where in self.mounted:
            subprocess.run(["umount", "--lazy", str(where)], check=True, timeout=30)


@pytest.fixture
def small_disks(tmp_path):
    disks = SmallDisks(tmp_path)
    yield disks
    disks.close()
