"""A run under faults, on real processes and real files: killed before its first checkpoint, trained twice at once,
damaged or missing files, a full disk, a run that cannot start, bad presets. Nothing is duplicated, nothing lost
silently, and each failure is one line naming the file or value."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from benchmark.cli import main
from iris import checkpoint, rundir
from iris.config import resolve
from iris.episodes import Episode, EpisodeStore
from iris.errors import ConfigError, DiskFull, RunStateError
from iris.trainer import Trainer, disk_needed, mark_stopped, train

from conftest import QUICK
from test_trainer import new_run, weights

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW_FIRST_EPOCH = ["training.epochs=2", "tokenizer.steps_per_epoch=40"]  # a wide window before the first checkpoint


def cli(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def train_args(run_dir, extra=()):
    return ["train", "--preset", "catch", "--game", "Catch", "--seed", "3", "--run-dir", str(run_dir),
            *(a for o in [*QUICK, *extra] for a in ("--set", o))]


def test_a_run_killed_before_its_first_checkpoint_collects_nothing_twice(tmp_path):
    straight = new_run(tmp_path / "straight", SLOW_FIRST_EPOCH)
    Trainer(straight).train()
    killed = new_run(tmp_path / "killed", SLOW_FIRST_EPOCH)
    proc = subprocess.Popen([sys.executable, "-c", f"from iris.trainer import train; train({str(killed)!r})"])
    try:
        while not list((killed / "episodes").glob("*.npz")):
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (killed / "checkpoint.pt").exists()  # killed inside epoch 1, episodes on disk
    Trainer(killed).train()
    assert sorted(p.name for p in (killed / "episodes").iterdir()) == sorted(p.name for p in (straight / "episodes").iterdir())
    assert [r["epoch"] for r in rundir.read_metrics(killed)] == [1, 2]
    a, b = weights(straight), weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_train_command_on_a_run_in_training_is_refused(tmp_path):
    run = tmp_path / "run"
    first = cli(*train_args(run, ["training.epochs=30"]))
    try:
        deadline = time.monotonic() + 120
        while (rundir.read_status(run) or {}).get("state") != "running":
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = cli(*train_args(run, ["training.epochs=30"]))
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2
        assert err.strip().splitlines() == [f"iris-bench: error: {run} is being trained by iris-bench train (pid "
                                            f"{first.pid}); wait for it, or stop it (iris-bench cancel for a campaign "
                                            "job) and run this again to resume"]
    finally:
        first.kill()
        first.wait()
    epochs = [r["epoch"] for r in rundir.read_metrics(run)]
    assert epochs == sorted(set(epochs))  # every epoch once


def test_missing_and_damaged_files_are_one_line_errors_that_change_nothing(tmp_path, capsys):
    run = new_run(tmp_path / "run", ["training.epochs=2"])
    Trainer(run).train(max_epochs=1)
    status = run / "status.json"
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p != status}

    def refused(path, pattern):
        with pytest.raises(RunStateError, match=pattern):
            train(run, max_epochs=0)  # what a campaign job calls
        assert main(train_args(run, ["training.epochs=2"])) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0]
        if path != status:  # the run's status says why it stopped
            assert rundir.read_status(run)["state"] == "failed" and str(path) in rundir.read_status(run)["error"]

    episodes = sorted((run / "episodes").glob("*.npz"))
    for victim in (episodes[0], episodes[-1]):  # a gap in the numbering, and the last one the checkpoint counts
        data = victim.read_bytes()
        victim.unlink()
        refused(victim, f"{victim.name} is missing")
        victim.write_bytes(data)
    episodes[1].write_bytes(files[episodes[1]][:100])
    refused(episodes[1], f"{episodes[1]} is damaged")
    episodes[1].write_bytes(files[episodes[1]])
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(files[checkpoint][: len(files[checkpoint]) // 2])
    refused(checkpoint, "checkpoint.pt is damaged")
    checkpoint.write_bytes(files[checkpoint])
    status.write_text('{"state": "run')
    refused(status, "status.json is damaged")
    status.write_text("{}")
    (run / "run.lock").unlink()  # the train command's lock file (empty of meaning once released)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p != status} == files  # nothing lost

    # A damaged line before the last is never dropped on resume; a torn last line (a kill mid-write) is redone.
    rows = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "tor\n' + rows)
    with pytest.raises(RunStateError, match="metrics.jsonl line 1 is damaged"):
        Trainer(run)
    (run / "metrics.jsonl").write_text(rows + '{"epoch": 2, "tor')
    Trainer(run).train()
    assert [r["epoch"] for r in rundir.read_metrics(run)] == [1, 2]

    # A finished run that a damaged checkpoint marked failed is finished again once the file is restored.
    finished = checkpoint.read_bytes()
    checkpoint.write_bytes(finished[: len(finished) // 2])
    refused(checkpoint, "checkpoint.pt is damaged")
    checkpoint.write_bytes(finished)
    result = train(run)
    assert result == rundir.read_eval(run)
    status_now = rundir.read_status(run)
    assert (status_now["state"], status_now["error"], status_now["epoch"]) == ("finished", None, 2)


def test_a_partial_checkpoint_left_by_a_kill_is_removed(tmp_path):
    run = new_run(tmp_path / "run", ["training.epochs=1"])
    leftover = run / ".checkpoint.pt.abc123.tmp"
    leftover.write_bytes(b"partial")
    Trainer(run)
    assert not leftover.exists()


def files(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_writes_that_find_the_disk_full_are_one_line_errors_that_keep_what_was_written(small_disks):
    disk = small_disks.mount(1 << 20)
    run = disk / "run"
    rundir.write_status(run, state="running", epoch=1)
    rundir.append_metrics(run, {"epoch": 1})
    store = EpisodeStore(run / "episodes")
    episode = Episode(np.zeros((7, 32, 32, 3), np.uint8), np.zeros(7), np.zeros(7), np.zeros(7, bool))
    store.add(episode)
    checkpoint.write(run, {"epoch": 1})
    before = files(run)
    ballast = small_disks.fill(disk)
    writes = {
        run / "status.json": lambda: rundir.write_status(run, epoch=2),
        run / "metrics.jsonl": lambda: rundir.append_metrics(run, {"epoch": 2, "loss": [0.5] * 1000}),  # past its page
        run / "episodes" / "000001.npz": lambda: store.add(episode),
        run / "checkpoint.pt": lambda: checkpoint.write(run, {"epoch": 2}),
    }
    for path, write in writes.items():
        with pytest.raises(DiskFull) as refused:
            write()
        assert str(refused.value).startswith(f"no space left on device writing {path} (") and "\n" not in str(refused.value)
        assert str(refused.value).endswith("free space there and run the command again; what was written before is "
                                           "kept (a run resumes from its last checkpoint)")
    mark_stopped(run, DiskFull("..."))  # not even the failed state fits: the trainer raises its error all the same
    assert files(run) == before  # every file whole, no temporary or torn line left
    assert store.num_episodes == 1 and rundir.read_metrics(run) == [{"epoch": 1}]
    ballast.unlink()
    assert store.add(episode) == 1 and rundir.read_status(run)["epoch"] == 1  # space freed: it goes on from there


def test_a_full_disk_at_a_checkpoint_fails_the_run_in_one_line_and_its_rerun_loses_nothing(small_disks, tmp_path,
                                                                                          capsys):
    run = new_run(small_disks.mount(64 << 20) / "run", ["training.epochs=2"])
    Trainer(run).train(max_epochs=1)
    kept = (run / "checkpoint.pt").read_bytes()
    ballast = small_disks.fill(run.parent, leave=len(kept) // 2)  # epoch 2's episodes and rows fit, its checkpoint not
    assert main(train_args(run, ["training.epochs=2"])) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"iris-bench: error: no space left on device writing {run / 'checkpoint.pt'} (")
    status = rundir.read_status(run)
    assert status["state"] == "failed" and status["error"] == f"DiskFull: {line.removeprefix('iris-bench: error: ')}"
    assert (run / "checkpoint.pt").read_bytes() == kept and not list(run.rglob("*.tmp"))
    small_disks.fill(run.parent)  # not a byte left: the same command at once fails in one line too
    assert main(train_args(run, ["training.epochs=2"])) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"iris-bench: error: no space left on device writing {run}/")
    assert (run / "checkpoint.pt").read_bytes() == kept
    ballast.unlink()  # freed: the same command resumes from epoch 1, as if nothing had happened
    assert main(train_args(run, ["training.epochs=2"])) == 0
    straight = new_run(tmp_path / "straight", ["training.epochs=2"])
    Trainer(straight).train()
    assert [r["epoch"] for r in rundir.read_metrics(run)] == [1, 2]
    assert sorted(p.name for p in (run / "episodes").iterdir()) == sorted(p.name for p in (straight / "episodes").iterdir())
    a, b = weights(straight), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rundir.size_of(run) <= disk_needed(resolve("catch", [*QUICK, "training.epochs=2"])).total  # `run` plans it


def test_a_run_that_cannot_start_is_marked_failed_with_the_reason(tmp_path):
    run = tmp_path / "run"
    overrides = [*QUICK, "tokenizer.perceptual_weight=1", f"tokenizer.lpips_weights={tmp_path / 'none.pt'}"]
    rundir.write_spec(run, resolve("catch", overrides), seed=3, preset="catch", overrides=overrides)
    with pytest.raises(ConfigError):
        train(run)  # what a campaign job calls
    status = rundir.read_status(run)
    assert status["state"] == "failed" and status["error"].startswith("ConfigError: LPIPS weights not found at")
    # The train command checks it before writing anything: the corrected command is not refused afterwards.
    fresh = tmp_path / "fresh"
    assert main(train_args(fresh, overrides[len(QUICK):])) == 2
    assert not fresh.exists()


@pytest.mark.parametrize("text, message", [("- a\n- b\n", "must be a mapping"), ("base: [tiny\n", "is not valid YAML"),
                                           ("base: tiny\nsett: {}\n", "must be a mapping")])
def test_a_bad_preset_file_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^preset file {path} {message}"):
        resolve(str(path))


@pytest.mark.parametrize("key, value", [("training.epochs", 0), ("training.epochs", -3), ("training.collect_steps", -1)])
def test_epochs_and_collect_steps_below_one_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"^{key}={value} must be 1 or more$"):
        resolve("catch", [f"{key}={value}"])


def test_a_closed_pipe_ends_the_command_quietly():
    done = subprocess.run(f"{sys.executable} -m benchmark.cli describe --preset tiny | head -1", shell=True, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1 and done.stderr == ""


@pytest.mark.parametrize("how", ["not installed", "failing"])
def test_an_unknown_slurm_queue_keeps_its_jobs_runs_from_being_submitted_again(tmp_path, monkeypatch, capsys, how):
    from benchmark import jobs

    if how == "not installed":
        monkeypatch.setenv("PATH", str(tmp_path))  # no squeue on the PATH
    else:
        if shutil.which("squeue") is None:
            pytest.skip("squeue is not installed here (CI installs it)")
        (tmp_path / "empty.conf").write_text("")
        monkeypatch.setenv("SLURM_CONF", str(tmp_path / "empty.conf"))  # the real squeue, failing on a bad config
    jobs.record(tmp_path, "slurm", tmp_path / "submitit", {"123_0": ["Pong/s0"], "123_1": ["Pong/s1"]})
    assert jobs.live_assignment(tmp_path) == {"Pong/s0": "123_0", "Pong/s1": "123_1"}
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("iris-bench: warning: squeue failed (") and "none of their runs is submitted again" in warning


def test_a_failing_run_under_the_debug_executor_says_so_without_a_debugger(tmp_path):
    args = ["run", "--games", "Catch", "--seeds", "1", "--preset", "catch", "--executor", "debug", "--runs-root",
            tmp_path, *(a for o in [*QUICK, "training.epochs=2", "tokenizer.lr=1e30"] for a in ("--set", o))]
    done = subprocess.run([sys.executable, "-m", "benchmark.cli", *map(str, args)], cwd=REPO, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 1 and "(Pdb)" not in done.stdout
    assert "iris-bench: 1 run(s) failed" in done.stderr and "NonFiniteLoss" in done.stderr
    assert "Catch/s0 failed" in done.stderr.splitlines()[-1]
