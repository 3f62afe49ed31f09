"""MLflow mirror of run directories, on a real SQLite store, with hand-written metrics rows."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from benchmark import campaign, tracking
from iris import rundir
from iris.config import resolve


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
def store(tmp_path_factory):
    """One embedded store for the module (creating one takes seconds); each test has its own experiment."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def target(store, request, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tracking.target_for(store, request.node.name)


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


def test_final_evaluation_artifacts_and_status(tmp_path, target, client):
    run_dir = make_run(tmp_path / "Breakout" / "s3", game="Breakout", seed=3)
    add_epoch(run_dir, 1, loss=1.0, test_return=2.0)
    (run_dir / "dream.gif").write_bytes(b"GIF89a")
    rundir.write_eval(run_dir, [3.0, 5.0], [100, 120], env_steps=100)
    rundir.write_status(run_dir, state="finished")

    tracking.sync_run(run_dir, target)
    tracking.sync_run(run_dir, target)

    run = only_run(client, target)
    assert run.info.status == "FINISHED"
    assert history(client, run.info.run_id, "final/return_mean") == [(100, 4.0)]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["dream.gif", "eval.json", "spec.json"]


def test_live_tracker_survives_an_unreachable_store_and_sync_catches_up(tmp_path, target, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    run_dir = make_run(tmp_path / "Pong" / "s0")
    down = tracking.Target("http://127.0.0.1:9", "camp", None, "test")  # nothing listens on port 9

    live = tracking.LiveTracker(run_dir, down)
    for epoch in (1, 2, 3):
        add_epoch(run_dir, epoch, loss=float(epoch))
        live.on_epoch(rundir.read_metrics(run_dir)[-1])
    live.close("FINISHED")

    # Tried at the start, after epoch 1, after epoch 3 (the gap doubles while it fails) and at close.
    assert capsys.readouterr().err.count("tracking: MLflow store http://127.0.0.1:9 failed") == 4
    assert not (run_dir / tracking.STATE_FILE).exists()
    assert tracking.sync_run(run_dir, target) == 3
    run_id = json.loads((run_dir / tracking.STATE_FILE).read_text())["run_id"]
    assert history(MlflowClient(target.uri), run_id, "world_model/loss") == [(100, 1.0), (200, 2.0), (300, 3.0)]


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
