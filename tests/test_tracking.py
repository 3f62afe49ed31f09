"""MLflow mirror of run directories, on a real SQLite store and real `mlflow server`s on 127.0.0.1 (one
killed mid-run), with hand-written metrics rows."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from mlflow import MlflowClient

from benchmark import campaign, store, tracking
from benchmark.tracking_server import free_port
from iris import rundir
from iris.config import resolve

RUNTIME = {"device": "cpu", "device_name": "a test CPU", "precision": "fp32", "torch_threads": 1}


def make_run(run_dir, game="Pong", seed=0):
    rundir.write_spec(run_dir, resolve("tiny", ["training.epochs=3"], game), seed, "tiny", ["training.epochs=3"])
    return run_dir


def add_epoch(run_dir, epoch, loss, test_return=None):
    row = {"epoch": epoch, "env_steps": 100 * epoch, "time": 2.5 * epoch, "world_model/loss": loss,
           "throughput/collect_steps_per_s": 40.0}
    if test_return is not None:
        row["test/return_mean"] = test_return
    rundir.append_metrics(run_dir, row)
    rundir.write_status(run_dir, state="running", epoch=epoch, epochs=3, env_steps=100 * epoch)


def history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp)]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    """One embedded store for the module (creating one takes seconds); each test has its own experiment."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def target(store_dir, request, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tracking.target_for(store_dir, request.node.name)


@pytest.fixture
def client(target):
    tracking.prepare(target)
    return MlflowClient(target.uri)


def only_run(client, target):
    (run,) = client.search_runs([client.get_experiment_by_name(target.experiment).experiment_id])
    return run


def test_embedded_store_unless_a_server_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    embedded = tracking.target_for(tmp_path, "camp")
    assert embedded.uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert embedded.artifact_location == (tmp_path.resolve() / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    server = tracking.target_for(tmp_path, "camp")
    assert (server.uri, server.artifact_location, server.experiment) == ("http://tracking.example:5000", None, "camp")
    assert (embedded.store_id, server.store_id) == ("campaign", "http://tracking.example:5000")


def test_credentials_in_the_tracking_uri_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:s3cret-pw@tracking.example:5000")
    with pytest.raises(store.TrackingError) as refused:
        tracking.target_for(tmp_path, "camp")
    assert "MLFLOW_TRACKING_USERNAME" in str(refused.value) and "s3cret-pw" not in str(refused.value)


def test_bounded_http_calls_keep_what_the_user_set(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    store.client("http://127.0.0.1:9")
    assert (os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"], os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) == (
        "7", store.CLIENT_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])


def test_sync_mirrors_rows_tags_params_and_is_idempotent(tmp_path, target, client):
    run_dir = make_run(tmp_path / "Pong" / "s0")
    for epoch in (1, 2):
        add_epoch(run_dir, epoch, loss=5.0 - epoch)

    assert tracking.sync_run(run_dir, target) == 2
    assert tracking.sync_run(run_dir, target) == 0  # nothing new: nothing logged twice

    run = only_run(client, target)
    spec = rundir.read_spec(run_dir)
    assert {k: run.data.tags[k] for k in ("game", "seed", "preset", "campaign", "config_hash")} == {
        "game": "Pong", "seed": "0", "preset": "tiny", "campaign": target.experiment,
        "config_hash": spec["config_hash"]}
    assert run.data.tags["code_version"] == target.code_version != ""
    assert run.data.params == {k: str(v) for k, v in rundir.spec_config(spec).flat().items()}
    assert history(client, run.info.run_id, "world_model/loss") == [(100, 4.0), (200, 3.0)]
    assert history(client, run.info.run_id, "epoch") == [(100, 1.0), (200, 2.0)]


def test_resumed_run_continues_its_mlflow_run_and_relogs_dropped_epochs(tmp_path, target, client):
    run_dir = make_run(tmp_path / "Pong" / "s0")
    for epoch in (1, 2, 3):
        add_epoch(run_dir, epoch, loss=10.0 + epoch)
    tracking.sync_run(run_dir, target)
    run_id = json.loads((run_dir / tracking.STATE_FILE).read_text())["run_id"]

    rundir.truncate_metrics(run_dir, 1)  # what a resume from the epoch-1 checkpoint does
    add_epoch(run_dir, 2, loss=2.0)
    assert tracking.sync_run(run_dir, target) == 1
    (run_dir / tracking.STATE_FILE).unlink()  # even a lost state file finds the same run by its tags
    add_epoch(run_dir, 3, loss=3.0)
    tracking.sync_run(run_dir, target)

    run = only_run(client, target)
    assert run.info.run_id == run_id
    assert run.data.metrics["world_model/loss"] == 3.0  # the latest value is the resumed run's


def test_final_evaluation_artifacts_status_and_what_researchers_see(tmp_path, target, client):
    run_dir = make_run(tmp_path / "Breakout" / "s3", game="Breakout", seed=3)
    add_epoch(run_dir, 1, loss=1.0, test_return=2.0)
    (run_dir / "dream.gif").write_bytes(b"GIF89a")
    rundir.write_eval(run_dir, [3.0, 5.0], [100, 120], env_steps=100, runtime=RUNTIME)
    finished = rundir.write_status(run_dir, state="finished")

    tracking.sync_run(run_dir, target)
    tracking.sync_run(run_dir, target)

    run = only_run(client, target)
    assert run.info.status == "FINISHED"
    assert run.info.end_time == int(finished["heartbeat"] * 1000)  # when it finished, not when it was synced
    assert history(client, run.info.run_id, "final/return_mean") == [(100, 4.0)]
    assert history(client, run.info.run_id, "final/wall_time_s") == [(100, 2.5)]  # the last row's time
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["dream.gif", "eval.json", "spec.json"]
    assert {k: v for k, v in run.data.tags.items() if k.startswith(("runtime.", "mlflow.source."))} == {
        "runtime.device": "cpu", "runtime.device_name": "a test CPU", "runtime.precision": "fp32",
        "runtime.torch_threads": "1", "mlflow.source.type": "JOB", "mlflow.source.name": "iris-bench"}
    experiment = client.get_experiment_by_name(target.experiment)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_running_run_gets_its_runtime_from_status_and_no_end_time(tmp_path, target, client):
    run_dir = make_run(tmp_path / "Pong" / "s0")
    add_epoch(run_dir, 1, loss=1.0)
    rundir.write_status(run_dir, runtime=RUNTIME | {"device": "cuda"})

    tracking.sync_run(run_dir, target, "RUNNING")

    run = only_run(client, target)
    assert (run.info.status, run.info.end_time, run.data.tags["runtime.device"]) == ("RUNNING", None, "cuda")


def test_a_server_killed_mid_run_costs_one_line_per_try_and_sync_catches_up(tmp_path, mlflow_servers, iris_bench,
                                                                          monkeypatch, capsys):
    for name in store.CLIENT_DEFAULTS:  # the bounds under test are this suite's, not the caller's
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    server = ["mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
              tmp_path / "artifacts", "--host", "127.0.0.1", "--port", port, "--workers", "1"]
    uri = mlflow_servers.start(server, port)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    planned = campaign.plan(tmp_path / "runs", "camp", "tiny", ["training.epochs=3"], ["Pong"], [0])
    campaign.materialize(planned)
    run_dir = planned.run_dir(planned.runs[0])
    target = tracking.target_for(planned.root, "camp")

    live = tracking.LiveTracker(run_dir, target)
    for epoch in (1, 2, 3, 4):
        if epoch == 2:
            mlflow_servers.kill(uri)
        add_epoch(run_dir, epoch, loss=float(epoch))
        live.on_epoch(rundir.read_metrics(run_dir)[-1])
    live.close("KILLED")

    # Tried after epochs 2 and 3 (the gap doubles while it fails: the next try would be after epoch 5) and at close.
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"tracking: MLflow server {uri} is unreachable; training continues, next try after epoch {e}; "
                     f"`iris-bench sync` replays what is missing" for e in (2, 4, 7)]
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == store.CLIENT_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    runs_root = ["--campaign", "camp", "--runs-root", tmp_path / "runs"]
    down = iris_bench("sync", *runs_root, env={"MLFLOW_TRACKING_URI": uri}, check=False, timeout=120)
    assert (down.returncode, down.stdout, down.stderr) == (2, "", f"iris-bench: error: MLflow server {uri} is unreachable\n")

    mlflow_servers.start(server, port)  # back, on the same store
    back = iris_bench("sync", *runs_root, env={"MLFLOW_TRACKING_URI": uri})
    assert back.stdout.splitlines() == ["camp Pong/s0: 3 epoch(s) logged"]
    run_id = json.loads((run_dir / tracking.STATE_FILE).read_text())["run_id"]
    assert history(store.client(uri), run_id, "world_model/loss") == [(100, 1.0), (200, 2.0), (300, 3.0), (400, 4.0)]


def synced_campaign(runs_root, seeds=(0,)):
    """A campaign of Pong runs with 2 epochs each, synced into its embedded store by `iris-bench sync`."""
    planned = campaign.plan(runs_root, "camp", "tiny", ["training.epochs=3"], ["Pong"], list(seeds))
    campaign.materialize(planned)
    for key in planned.runs:
        for epoch in (1, 2):
            add_epoch(planned.run_dir(key), epoch, loss=float(epoch))
    return planned


def epochs_in(campaign_root) -> list[float]:
    client = MlflowClient(f"sqlite:///{campaign_root / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("camp").experiment_id])
    return [v for _, v in history(client, run.info.run_id, "epoch")]


def test_a_copied_campaign_never_logs_into_the_original_store(tmp_path, iris_bench):
    original = synced_campaign(tmp_path / "runs")
    rundir.write_eval(original.run_dir(original.runs[0]), [1.0], [10], env_steps=200)
    iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "runs")
    original_artifacts = sorted((original.root / "mlartifacts").rglob("*"))
    copy = tmp_path / "copy" / "camp"
    shutil.copytree(original.root, copy)
    state = (copy / "Pong" / "s0" / tracking.STATE_FILE).read_text()
    assert json.loads(state)["store"] == "campaign" and str(tmp_path) not in state  # relative to the campaign

    refused = iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "copy", check=False)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert f"campaign store {copy.resolve() / 'mlflow.db'} was made for the campaign folder that keeps its " \
           f"artifacts in {(original.root.resolve() / 'mlartifacts').as_uri()}" in refused.stderr
    for name in ("mlflow.db", "mlartifacts"):  # what the message says to do
        (copy / name).rename(copy / f"{name}.original")
    rebuilt = iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "copy")

    assert rebuilt.stdout.splitlines() == ["camp Pong/s0: 2 epoch(s) logged"]
    assert epochs_in(copy) == epochs_in(original.root) == [1.0, 2.0]  # each once, in each store
    assert sorted(p.name for p in (copy / "mlartifacts").rglob("*.json")) == ["eval.json", "spec.json"]
    assert sorted((original.root / "mlartifacts").rglob("*")) == original_artifacts


@pytest.mark.parametrize("damage", ["{\"run_id\": ", "{\"run_id\": \"x\"}"], ids=["torn", "partial"])
def test_a_damaged_state_file_is_one_line_and_the_other_runs_sync(tmp_path, iris_bench, damage):
    planned = synced_campaign(tmp_path / "runs", seeds=(0, 1))
    iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "runs")
    damaged = planned.root / "Pong" / "s0" / tracking.STATE_FILE
    damaged.write_text(damage)
    for seed in (0, 1):
        add_epoch(planned.root / "Pong" / f"s{seed}", 3, loss=3.0)

    done = iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "runs", check=False)

    first, second = done.stdout.splitlines()
    assert first.startswith(f"camp Pong/s0: error: {damaged} is damaged (") and "move it aside" in first
    assert (done.returncode, second, damaged.read_text()) == (1, "camp Pong/s1: 1 epoch(s) logged", damage)


def test_a_damaged_store_is_one_line_naming_it_and_training_goes_on(tmp_path, iris_bench, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    planned = synced_campaign(tmp_path / "runs")
    db = planned.root / "mlflow.db"
    db.write_bytes(b"not an SQLite file " * 100)
    target = tracking.target_for(planned.root, "camp")

    live = tracking.LiveTracker(planned.run_dir(planned.runs[0]), target)
    live.close("KILLED")
    done = iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "runs", check=False)

    message = f"campaign store {db.resolve()} is damaged ((sqlite3.DatabaseError) file is not a database): move it aside"
    assert [line.startswith(f"tracking: {message}") for line in capsys.readouterr().err.splitlines()] == [True, True]
    assert done.returncode == 2 and done.stderr.startswith(f"iris-bench: error: {message}")
    assert len(done.stderr.splitlines()) == 1 and db.read_bytes() == b"not an SQLite file " * 100
    report = iris_bench("report", "--campaign", "camp", "--tracking-uri", f"sqlite:///{db.resolve()}", "--baselines",
                        "none", "--out", tmp_path / "report", check=False)
    assert report.returncode == 2 and report.stderr.startswith(f"iris-bench: error: {message}")
    assert len(report.stderr.splitlines()) == 1 and not (tmp_path / "report").exists()


def test_sync_command_replays_a_campaign_once(tmp_path, iris_bench):
    planned = campaign.plan(tmp_path / "runs", "camp", "tiny", ["training.epochs=3"], ["Pong"], [0, 1, 2])
    campaign.materialize(planned)
    finished, stopped, _pending = (planned.run_dir(k) for k in planned.runs)
    for epoch in (1, 2, 3):
        add_epoch(finished, epoch, loss=float(epoch))
    rundir.write_eval(finished, [1.0], [10], env_steps=300)
    rundir.write_status(finished, state="finished")
    add_epoch(stopped, 1, loss=1.0)  # killed after epoch 1: status.json still says running

    first = iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "runs").stdout
    second = iris_bench("sync", "--campaign", "camp", "--runs-root", tmp_path / "runs").stdout

    assert first.splitlines() == ["camp Pong/s0: 3 epoch(s) logged", "camp Pong/s1: 1 epoch(s) logged",
                                  "camp Pong/s2: not started"]
    assert second.splitlines() == ["camp Pong/s0: 0 epoch(s) logged", "camp Pong/s1: 0 epoch(s) logged",
                                   "camp Pong/s2: not started"]
    client = MlflowClient(tracking.target_for(planned.root, "camp").uri)
    runs = client.search_runs([client.get_experiment_by_name("camp").experiment_id])
    assert sorted((r.data.tags["seed"], r.info.status) for r in runs) == [("0", "FINISHED"), ("1", "KILLED")]
