"""Planning, run states, status and cancel on hand-made run directories, a real lock and a real submitit job
(no training: campaigns that train are in test_campaign_e2e.py, locally and on the one-node SLURM)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import submitit

from benchmark import campaign, executors, jobs, locks
from benchmark.cli import main
from iris import rundir
from iris.config import resolve
from iris.rundir import size_text
from iris.trainer import disk_needed

RUN = ["--set", "training.epochs=60"]


def cli(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_dry_run_plans_and_estimates_without_writing(capsys, tmp_path):
    root = tmp_path / "runs"
    out = cli(capsys, "run", "--games", "Pong,Breakout", "--seeds", "2", "--seed-offset", "3", *RUN,
              "--runs-root", root, "--max-parallel", "2", "--dry-run")
    assert "campaign tiny in" in out
    assert "start     4: Pong s3 s4; Breakout s3 s4" in out
    assert "resume    0: -" in out and "skip      0: -" in out
    assert "estimate: 6.64 GPU-hours (240 epochs to go x 16.6 h per 600-epoch paper run" in out  # 4 x 60 x 16.6 / 600
    run = disk_needed(resolve("tiny", RUN[1:], "Pong"))
    assert f"disk:     up to {size_text(4 * run.total + 2 * run.checkpoint)}, " in out  # 2 at once: a checkpoint more
    assert not root.exists()


def test_a_campaign_its_disk_cannot_hold_is_refused_before_anything_is_written(capsys, small_disks):
    run = disk_needed(resolve("catch", [], "Catch"))
    one_at_a_time = 2 * run.total + run.checkpoint  # the training one writes its next checkpoint beside its last
    root = small_disks.mount(one_at_a_time + run.checkpoint // 2) / "runs"  # room for two runs in turn, not at once
    free = size_text(rundir.free_bytes(root))
    args = ["run", "--games", "Catch", "--seeds", "2", "--preset", "catch", "--runs-root", root]
    out = cli(capsys, *args, "--max-parallel", "1", "--dry-run")
    assert (f"disk:     up to {size_text(one_at_a_time)}, {free} free there (a run ends with episodes "
            f"{size_text(run.episodes)}, checkpoint {size_text(run.checkpoint)}, other {size_text(run.other)}; ") in out
    for dry_run in (["--dry-run"], []):  # the plan, and the real submit
        assert main([str(a) for a in [*args, "--max-parallel", "2", *dry_run]]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"iris-bench: error: not enough space for the 2 run(s) to do in {root / 'catch'}: up to "
            f"{size_text(2 * (run.total + run.checkpoint))} needed, {free} free; free space there, or run fewer games "
            "or seeds, or choose another --runs-root"]
    assert not root.exists()


def test_planning_again_adds_runs_and_keeps_the_config(tmp_path):
    root = tmp_path / "runs"
    campaign.materialize(campaign.plan(root, "c", "tiny", ["training.epochs=60"], ["Pong"], [0, 1]))
    more = campaign.plan(root, "c", "tiny", ["training.epochs=60"], ["Breakout", "Pong"], [1, 2])
    campaign.materialize(more)
    assert campaign.load(root / "c").runs == ["Pong/s0", "Pong/s1", "Breakout/s1", "Breakout/s2", "Pong/s2"]
    assert rundir.read_spec(root / "c" / "Breakout" / "s2")["seed"] == 2


@pytest.fixture
def six_runs(tmp_path):
    """A campaign with one run in each state; Breakout/s0 is held by this process, Breakout/s1 is assigned
    to a live local submitit job."""
    root = tmp_path / "runs"
    planned = campaign.plan(root, "tiny", "tiny", ["training.epochs=60"], ["Pong", "Breakout"], [0, 1, 2])
    campaign.materialize(planned)
    run = planned.run_dir
    rundir.write_status(run("Pong/s0"), state="finished", epoch=60, epochs=60, env_steps=12000, last_test_return=7.5)
    rundir.write_status(run("Pong/s1"), state="running", epoch=20, epochs=60, env_steps=4000)  # killed: stopped
    rundir.write_status(run("Pong/s2"), state="failed", epoch=30, epochs=60, env_steps=6000, error="NonFiniteLoss: nan")
    rundir.write_status(run("Breakout/s0"), state="running", epoch=10, epochs=60, env_steps=2000)
    executor = submitit.LocalExecutor(executors.job_folder(planned.root))
    executor.update_parameters(timeout_min=10)
    with executors.interruptible_children():  # SIGINT stops it even when the tests run under nohup
        job = executor.submit(time.sleep, 600)
    jobs.record(planned.root, "local", executors.job_folder(planned.root), {job.job_id: ["Breakout/s1"]})
    with locks.hold(run("Breakout/s0") / locks.RUN_LOCK, owner="job 77") as got:
        assert got
        yield root, job
    assert jobs.cancel(planned.root)[1] == []  # signalled again if it lost the signal (see below)


def test_runs_are_sorted_by_state(capsys, six_runs):
    root, _ = six_runs
    out = cli(capsys, "run", "--games", "Pong,Breakout", "--seeds", "3", *RUN, "--runs-root", root, "--dry-run")
    assert "start     1: Breakout s2" in out
    assert "resume    2: Pong s1 s2" in out
    assert "skip      3 (1 finished, 1 running, 1 queued): Pong s0; Breakout s0 s1" in out
    assert "estimate: 3.60 GPU-hours (130 epochs to go" in out  # (60 + 40 + 30) x 16.6 / 600


def test_status_reports_every_run(capsys, six_runs):
    root, job = six_runs
    (report,) = json.loads(cli(capsys, "status", "--runs-root", root, "--json"))
    states = {r["key"]: (r["state"], r["epoch"], r["job"]) for r in report["runs"]}
    assert states == {
        "Pong/s0": ("finished", 60, ""), "Pong/s1": ("stopped", 20, ""), "Pong/s2": ("failed", 30, ""),
        "Breakout/s0": ("running", 10, "job 77"), "Breakout/s1": ("queued", 0, job.job_id),
        "Breakout/s2": ("pending", 0, ""),
    }
    assert report["totals"] == {"runs": 6, "finished": 1, "running": 1, "queued": 1, "pending": 1, "stopped": 1,
                                "failed": 1, "epochs_done": 120, "epochs": 360, "env_steps": 24000}
    table = cli(capsys, "status", "--campaign", "tiny", "--runs-root", root)
    assert "6 runs: 1 finished, 1 running, 1 queued, 1 pending, 1 stopped, 1 failed; epochs 120/360 (33%)" in table


def test_cancel_stops_the_local_job_and_the_run_stays_resumable(capsys, six_runs):
    root, job = six_runs
    out = cli(capsys, "cancel", "--campaign", "tiny", "--runs-root", root)
    assert f"cancelled 1 job(s): {job.job_id}" in out
    assert job.state in ("INTERRUPTED", "FINISHED")  # cancel returns once the controller is gone
    (report,) = json.loads(cli(capsys, "status", "--runs-root", root, "--json"))
    assert {r["key"]: r["state"] for r in report["runs"]}["Breakout/s1"] == "pending"


# Exits on its second SIGINT only; says when its handler is in place.
DEAF_ONCE = """import signal, sys, time
lost = []
signal.signal(signal.SIGINT, lambda *_: lost.append(1) if not lost else sys.exit(130))
print("ready", flush=True)
time.sleep(600)
"""


def test_cancel_signals_again_a_job_that_lost_its_signal(capsys, tmp_path):
    """A submitit controller signalled while it still imports swallows the SIGINT (CI saw the job run on).
    The stand-in is a real process, started for the campaign's job folder as a controller is, that loses its
    first SIGINT: cancel signals it again and returns once it is gone."""
    root = tmp_path / "runs"
    planned = campaign.plan(root, "c", "tiny", RUN[1:], ["Pong"], [0])
    campaign.materialize(planned)
    folder = executors.job_folder(planned.root)
    deaf = subprocess.Popen([sys.executable, "-c", DEAF_ONCE, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert deaf.stdout.readline() == "ready\n"
        jobs.record(planned.root, "local", folder, {str(deaf.pid): ["Pong/s0"]})
        out = cli(capsys, "cancel", "--campaign", "c", "--runs-root", root)
        assert f"cancelled 1 job(s): {deaf.pid}" in out
        assert deaf.poll() == 130
    finally:
        deaf.kill()
        deaf.wait()


def test_a_damaged_campaign_file_hides_no_other_campaign_from_status(capsys, tmp_path):
    root = tmp_path / "runs"
    for name in ("a", "b", "c"):
        campaign.materialize(campaign.plan(root, name, "tiny", RUN[1:], ["Pong"], [0]))
    (root / "a" / "campaign.json").write_text('{"name": "a", "pre')
    (root / "c" / jobs.JOBS_FILE).write_text("[1, 2]")
    assert main(["status", "--runs-root", str(root), "--json"]) == 2
    out, err = capsys.readouterr()
    assert [c["campaign"] for c in json.loads(out)] == ["b"]
    lines = err.splitlines()
    assert len(lines) == 2 and f"{root / 'a' / 'campaign.json'} is damaged" in lines[0]
    assert f"{root / 'c' / jobs.JOBS_FILE} is damaged" in lines[1]
    assert main(["status", "--runs-root", str(root), "--campaign", "a"]) == 2  # named: the one line
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert main(["cancel", "--runs-root", str(root), "--campaign", "c"]) == 2  # it cannot know the jobs: says why
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and f"{root / 'c' / jobs.JOBS_FILE} is damaged" in err[0]


def test_a_damaged_spec_or_eval_file_is_one_line_naming_it(capsys, tmp_path):
    root = tmp_path / "runs"
    planned = campaign.plan(root, "c", "tiny", RUN[1:], ["Pong"], [0, 1])
    campaign.materialize(planned)
    for key in planned.runs:
        rundir.write_eval(planned.run_dir(key), [1.0, 2.0], [10, 10], env_steps=12000)
        rundir.write_status(planned.run_dir(key), state="finished", epoch=60, epochs=60)
    spec, evaluation = planned.run_dir("Pong/s0") / "spec.json", planned.run_dir("Pong/s1") / "eval.json"
    for damaged, argv in ((spec, ["run", "--games", "Pong", "--seeds", "2", *RUN, "--campaign", "c", "--dry-run"]),
                          (evaluation, ["report", "--campaign", "c", "--baselines", "none", "--out", tmp_path / "r"])):
        good = damaged.read_bytes()
        damaged.write_bytes(good[: len(good) // 2])
        assert main([str(a) for a in [*argv, "--runs-root", root]]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"{damaged} is damaged" in err[0], err
        assert damaged.read_bytes() == good[: len(good) // 2]  # left as it was
        damaged.write_bytes(good)


def test_a_damaged_status_file_stops_the_plan_and_a_failure_is_told_with_its_reason(capsys, tmp_path):
    from benchmark import launch

    root = tmp_path / "runs"
    planned = campaign.plan(root, "c", "tiny", RUN[1:], ["Pong"], [0, 1])
    campaign.materialize(planned)
    status = planned.run_dir("Pong/s0") / "status.json"
    status.write_text('{"state": "fini')
    args = ["run", "--games", "Pong", "--seeds", "2", *RUN, "--campaign", "c", "--runs-root", root, "--dry-run"]
    assert main([str(a) for a in args]) == 2  # it would train a run that may be finished
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and f"{status} is damaged" in err[0]
    rundir.write_status(planned.run_dir("Pong/s1"), state="failed", error="RunStateError: x/checkpoint.pt is damaged")
    assert launch.wait(planned, ["Pong/s0", "Pong/s1"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == (f"iris-bench: 2 run(s) did not finish: Pong/s0 failed: {status} is damaged (Unterminated string "
                    "starting at: line 1 column 11 (char 10)): restore it from a copy, or move it away, "
                    "Pong/s1 failed: RunStateError: x/checkpoint.pt is damaged")
