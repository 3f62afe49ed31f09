"""The shared tracking server (`iris-bench tracking-server`, MLflow's basic-auth app) on 127.0.0.1: a tiny
campaign logs with the right credentials and keeps none of them; without them, or with wrong ones, it is
refused in one line and training goes on; a second user without permission cannot read the experiment."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client

from benchmark import store, tracking
from benchmark.tracking_server import free_port
from conftest import MlflowServers
from iris import rundir

USER, PASSWORD = "iris-team-member", secrets.token_urlsafe(18)
OTHER, OTHER_PASSWORD = "iris-outsider", secrets.token_urlsafe(18)
ADMIN_PASSWORD = secrets.token_urlsafe(18)
REFUSED = "refused the credentials (HTTP 401): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One secured server for the module (a start takes seconds), with USER and OTHER as users."""
    folder = tmp_path_factory.mktemp("server")
    servers = MlflowServers(folder)
    port = free_port()
    uri = servers.start(["benchmark.cli", "tracking-server", "--root", folder / "store", "--port", port,
                         "--workers", "1"], port, env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    with as_user("admin", ADMIN_PASSWORD):
        users = get_app_client("basic-auth", tracking_uri=uri)
        users.create_user(USER, PASSWORD)
        users.create_user(OTHER, OTHER_PASSWORD)
    yield uri, servers.log(port), folder
    servers.close()


@contextlib.contextmanager
def as_user(name: str, password: str):
    """MLflow's credential variables for calls made in this process."""
    old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME=name, MLFLOW_TRACKING_PASSWORD=password)
    try:
        yield
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.update({k: v})


def job_env(uri: str, password: str | None = PASSWORD) -> dict:
    credentials = {} if password is None else {"MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": password}
    return {"MLFLOW_TRACKING_URI": uri, **credentials}


def files_holding(root: Path, secrets_: list[str]) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets_)]


def run_campaign(iris_bench, runs_root, tiny_set, env, executor: list, check=True):
    return iris_bench("run", "--games", "Pong", "--seeds", "1", "--preset", "tiny", *tiny_set,
                      "--set", "training.epochs=3", "--campaign", "camp", "--runs-root", runs_root, *executor,
                      env=env, check=check)


def the_run(uri: str, experiment: str):
    client = store.client(uri)
    experiment = client.get_experiment_by_name(experiment)
    (run,) = client.search_runs([experiment.experiment_id])
    return experiment, run, client


def test_server_is_secured_and_says_what_a_job_needs(server):
    uri, log, _ = server
    assert f"tracking URI: {uri}" in log and "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in log
    assert f"ssh -N -f -L {uri.rsplit(':', 1)[1]}:127.0.0.1:" in log
    assert ADMIN_PASSWORD not in log
    with pytest.raises(MlflowException) as refused:
        store.client(uri).search_experiments()
    assert refused.value.error_code == "UNAUTHENTICATED"


def test_a_campaign_logs_with_the_right_credentials_and_keeps_none(server, runs_root, iris_bench, tiny_set, wait_for):
    uri, *_ = server
    run_campaign(iris_bench, runs_root, tiny_set, job_env(uri), ["--executor", "local", "--max-parallel", "1",
                                                                  "--wait"])

    with as_user(USER, PASSWORD):  # --wait ends with status.json; the job's last sync may still be under way
        run = wait_for(lambda: (r := the_run(uri, "camp")[1]).info.status == "FINISHED" and r, 60, "a FINISHED run")
        client = store.client(uri)
        assert [m.value for m in client.get_metric_history(run.info.run_id, "epoch")] == [1.0, 2.0, 3.0]
        assert "eval.json" in [a.path for a in client.list_artifacts(run.info.run_id)]  # uploaded through the server
    assert files_holding(runs_root, [USER, PASSWORD, ADMIN_PASSWORD]) == []
    assert files_holding(server[2], [PASSWORD, ADMIN_PASSWORD]) == []  # its store, users (hashed) and log


def test_refused_credentials_are_one_line_and_training_goes_on(server, runs_root, iris_bench, tiny_set):
    uri, *_ = server
    wrong = secrets.token_urlsafe(18)
    trained = run_campaign(iris_bench, runs_root, tiny_set, job_env(uri, wrong), ["--executor", "debug"])

    assert rundir.read_status(runs_root / "camp" / "Pong" / "s0")["state"] == "finished"
    refusals = [line for line in trained.stderr.splitlines() if REFUSED in line]
    assert refusals and "Traceback" not in trained.stderr
    for env in (job_env(uri, None), job_env(uri, wrong)):
        sync = iris_bench("sync", "--campaign", "camp", "--runs-root", runs_root, env=env, check=False)
        assert (sync.returncode, sync.stderr) == (2, f"iris-bench: error: MLflow server {uri} {REFUSED} "
                                                     f"(or both in ~/.mlflow/credentials, section [mlflow])\n")
    synced = iris_bench("sync", "--campaign", "camp", "--runs-root", runs_root, env=job_env(uri))
    assert synced.stdout.splitlines() == ["camp Pong/s0: 3 epoch(s) logged"]
    assert files_holding(runs_root, [USER, PASSWORD, wrong]) == []


def test_a_user_without_permission_cannot_read_the_experiment(server):
    uri, *_ = server
    target = tracking.Target(uri, "private", None, "test")
    with as_user(USER, PASSWORD):
        experiment_id = tracking.prepare(target)  # its creator may manage it
    with as_user(OTHER, OTHER_PASSWORD):
        with pytest.raises(MlflowException) as denied:
            store.client(uri).get_experiment(experiment_id)
        assert denied.value.error_code == "PERMISSION_DENIED"
        with pytest.raises(store.TrackingError) as refused:
            tracking.prepare(target)
    assert str(refused.value).startswith(f"MLflow server {uri} refused this user access to experiment 'private' "
                                         f"(HTTP 403)")
    assert OTHER not in str(refused.value) and "\n" not in str(refused.value)
    with as_user("admin", ADMIN_PASSWORD):
        users = get_app_client("basic-auth", tracking_uri=uri)
        users.grant_user_permission(OTHER, "experiment", experiment_id, "READ")
    with as_user(OTHER, OTHER_PASSWORD):
        assert store.client(uri).get_experiment(experiment_id).name == "private"
