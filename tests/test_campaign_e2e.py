"""End to end through `iris-bench run`: a tiny campaign of 2 games x 2 seeds trained by the real trainer
through submitit, on this machine (local executor) and on the one-node test cluster (one SLURM job array).

A run interrupted mid-run resumes from its checkpoint: on SLURM, submitit's preemption signal makes the job
checkpoint and requeue itself; locally, the training process is killed with SIGKILL and the rerun resumes
it. Nothing runs twice, no collected episode is lost, each run has one MLflow run, reruns submit nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from benchmark import campaign, jobs, status, tracking
from iris import rundir

GAMES = ("Pong", "Breakout")


@pytest.fixture(params=["local", "slurm"])
def executor_args(request) -> list:
    if request.param == "slurm":
        return ["--executor", "slurm", "--profile", request.getfixturevalue("slurm_cluster")]
    return ["--executor", "local", "--max-parallel", "2"]


def views(root: Path, name: str) -> list[status.RunView]:
    return status.views(campaign.load(root / name))


def settled(root: Path, name: str) -> list[status.RunView] | None:
    """The runs, once none is running or queued."""
    runs = views(root, name)
    return None if any(r.state in ("running", "queued") for r in runs) else runs


def mid_run(root: Path, name: str) -> status.RunView | None:
    """The first run in plan order that is training, once it has epochs done and epochs to go. Local
    workers walk the plan in order, so no live worker comes back to it."""
    first = next((r for r in views(root, name) if r.state == "running"), None)
    return first if first is not None and 2 <= first.epoch <= first.epochs - 3 else None


def episodes(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "episodes").glob("*.npz"))}


def local_task(victim: status.RunView) -> int:
    """The training process of a local job: the submitit task under the controller whose pid is the job id."""
    controller = int(victim.job)
    (task,) = Path(f"/proc/{controller}/task/{controller}/children").read_text().split()
    return int(task)


def interrupt_local(victim: status.RunView, wait_for) -> None:
    """SIGKILL: the run gets no chance to write anything."""
    os.kill(local_task(victim), signal.SIGKILL)


def interrupt_slurm(victim: status.RunView, wait_for) -> None:
    """Preempt the array task (what SLURM sends before a time limit): submitit checkpoints and requeues it;
    SLURM then holds a requeued job ~2 min (BeginTime), which a test need not wait out."""
    # On a busy node scancel may retry its request after the job already requeued itself, and keep retrying
    # ("Job can not be altered now") for a minute or two: what counts is the requeue, not its exit code.
    signaller = subprocess.Popen(["scancel", "--signal=USR2", victim.job], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)

    def requeued() -> str | None:
        out = subprocess.run(["squeue", "--noheader", "--jobs", victim.job, "--format=%A %T %r"],
                             capture_output=True, text=True).stdout.split()
        return out[0] if out[1:] == ["PENDING", "BeginTime"] else None

    raw_id = wait_for(requeued, 60, f"job {victim.job} requeued", every=0.5)
    signaller.kill()
    signaller.wait()
    subprocess.run(["scontrol", "update", f"jobid={raw_id}", "StartTime=now"], check=True)


def test_campaign_trains_resumes_and_is_idempotent(executor_args, runs_root, iris_bench, tiny_set, wait_for):
    name = "e2e"
    run = ["run", "--games", ",".join(GAMES), "--seeds", "2", *tiny_set, "--campaign", name, *executor_args,
           "--runs-root", runs_root]
    on_slurm = "slurm" in executor_args
    # Locally, the visible GPUs are dealt out one per worker job (here fake ones on a CPU: torch ignores them).
    assert "start     4" in iris_bench(*run, env={"CUDA_VISIBLE_DEVICES": "0,1"}).stdout
    assert "nothing to submit" in iris_bench(*run).stdout  # every run is queued or running: none twice

    victim = wait_for(lambda: mid_run(runs_root, name), 300, "a run in the middle of its training")
    run_dir = runs_root / name / victim.key
    kept = episodes(run_dir)
    mlflow_run = json.loads((run_dir / tracking.STATE_FILE).read_text())["run_id"]
    if not on_slurm:
        environ = Path(f"/proc/{local_task(victim)}/environ").read_text().split("\0")
        assert {"CUDA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=1"} & set(environ)
    (interrupt_slurm if on_slurm else interrupt_local)(victim, wait_for)

    runs = wait_for(lambda: settled(runs_root, name), 400, "the campaign's jobs to end", every=0.5)
    interrupted = {r.key: r for r in runs}[victim.key]
    if on_slurm:  # the job requeued itself and finished the run
        log = next((runs_root / name / "submitit").glob(f"{victim.job}/*_log.out")).read_text()
        assert f"Requeued job {victim.job}" in log
    else:  # the killed run waits, resumable, for the rerun; the others finished
        assert interrupted.state == "stopped" and victim.epoch <= interrupted.epoch < interrupted.epochs
        done = iris_bench(*run, "--wait")
        assert "start     0" in done.stdout and "resume    1" in done.stdout
        # Off a terminal, progress is one line per change: the campaign's epochs and each run's epoch.
        progress = [line for line in done.stderr.splitlines() if f" {name}: epochs " in line]
        assert progress and all(f"{interrupted.key} " in line for line in progress)
        assert progress[-1].split(f"{name}: epochs ")[1].startswith(f"{4 * interrupted.epochs}/{4 * interrupted.epochs} (100%)")
    assert "nothing to submit" in iris_bench(*run).stdout
    assert len(jobs.load(runs_root / name)) == (1 if on_slurm else 2)

    runs = views(runs_root, name)
    assert [(r.key, r.state) for r in runs] == [(f"{g}/s{s}", "finished") for g in GAMES for s in (0, 1)]
    # The interrupted run continued from its checkpoint: every epoch once, its episodes kept, one MLflow run.
    epochs = runs[0].epochs
    assert [row["epoch"] for row in rundir.read_metrics(run_dir)] == list(range(1, epochs + 1))
    after = episodes(run_dir)
    assert {k: after.get(k) for k in kept} == kept
    assert len(after) == rundir.read_metrics(run_dir)[-1]["episodes"]
    assert json.loads((run_dir / tracking.STATE_FILE).read_text())["run_id"] == mlflow_run

    target = tracking.target_for(runs_root / name, name)
    client = MlflowClient(target.uri)
    mlflow_runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    assert sorted((r.data.tags["game"], r.data.tags["seed"], r.info.status) for r in mlflow_runs) == sorted(
        (g, str(s), "FINISHED") for g in GAMES for s in (0, 1))
    for r in mlflow_runs:
        mirrored = runs_root / name / f"{r.data.tags['game']}/s{r.data.tags['seed']}"
        assert r.data.metrics["final/return_mean"] == rundir.read_eval(mirrored)["mean"]
        steps = {m.step for m in client.get_metric_history(r.info.run_id, "epoch")}
        assert sorted(steps) == [row["env_steps"] for row in rundir.read_metrics(mirrored)]
        artifacts = sorted(p.name for pattern in tracking.ARTIFACTS for p in mirrored.glob(pattern))
        assert "spec.json" in artifacts and "eval.json" in artifacts
        assert sorted(a.path for a in client.list_artifacts(r.info.run_id)) == artifacts


def test_cancel_stops_jobs_and_runs_stay_resumable(executor_args, runs_root, iris_bench, tiny_set, wait_for):
    name = "cancelled"
    run = ["run", "--games", "Pong", "--seeds", "1", *tiny_set, "--campaign", name, *executor_args,
           "--runs-root", runs_root]
    iris_bench(*run)
    wait_for(lambda: any(r.state == "running" and r.epoch >= 1 for r in views(runs_root, name)), 300,
             "the run to finish an epoch")

    out = iris_bench("cancel", "--campaign", name, "--runs-root", runs_root).stdout

    assert "cancelled 1 job(s)" in out
    (stopped,) = views(runs_root, name)
    assert stopped.state == "stopped" and 1 <= stopped.epoch < stopped.epochs
    assert "resume    1: Pong s0" in iris_bench(*run, "--dry-run").stdout
