"""The MLflow reader on a real local SQLite store, laid out as benchmark/tracking.py logs a campaign."""

import json

import pytest

from analysis.mlflow_source import FINAL_RETURN, read_mlflow_campaign
from benchmark.cli import main
from iris.errors import ConfigError

TEST_RETURN = "test/return_mean"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Experiment `camp`: Pong and Breakout x seeds 0, 1 finished (with histories), Pong seed 2 still running."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(uri)  # creates the store once, before anything else opens it
    experiment = client.create_experiment("camp")
    for game, seed, final in [("Pong", 0, 3.0), ("Pong", 1, 5.0), ("Breakout", 0, 20.0), ("Breakout", 1, 30.0),
                              ("Pong", 2, None)]:
        run = client.create_run(experiment, tags={"game": game, "seed": str(seed), "campaign": "camp"}).info.run_id
        for env_steps in (1000, 2000):
            client.log_metric(run, TEST_RETURN, (final or 0.0) * env_steps / 2000, step=env_steps)
        if final is not None:
            client.log_metric(run, FINAL_RETURN, final)
            client.set_terminated(run)
    client.create_experiment("empty")
    return uri


def test_finished_runs_give_scores_and_histories(store):
    method = read_mlflow_campaign(store, "camp")
    assert method.name == "camp"
    assert {game: sorted(scores) for game, scores in method.scores.items()} == {"Pong": [3.0, 5.0],
                                                                                 "Breakout": [20.0, 30.0]}
    assert sorted(h[1000] for h in method.histories["Breakout"]) == [10.0, 15.0]
    assert all(set(h) == {1000, 2000} for h in method.histories["Pong"])


def test_missing_experiment_and_no_finished_runs(store):
    with pytest.raises(ConfigError, match="no MLflow experiment 'nope' at sqlite.*; found: .*camp"):
        read_mlflow_campaign(store, "nope")
    with pytest.raises(ConfigError, match="campaign 'empty' has no finished runs in MLflow"):
        read_mlflow_campaign(store, "empty")


def test_report_reads_the_campaign_from_mlflow(store, tmp_path):
    out = tmp_path / "report"
    argv = ["report", "--campaign", "camp", "--tracking-uri", store, "--baselines", "IRIS", "--games", "Pong,Breakout",
            "--reps", "20", "--out", str(out)]
    assert main(argv) == 0
    aggregates = json.loads((out / "aggregates.json").read_text())
    assert list(aggregates) == ["camp", "IRIS"] and aggregates["camp"]["runs"] == 2
    assert (out / "sample_efficiency.png").exists()  # from the test-return histories


def test_two_campaigns_from_one_store_with_a_label(store, tmp_path):
    from analysis.sources import load_methods

    first, again = load_methods(["camp", "camp=camp-again"], tracking_uri=store, baselines="none")
    assert (first.name, again.name) == ("camp", "camp-again")
    assert sorted(first.run_seeds("Pong")) == ["0", "1"]  # the seed tags, for runs.csv
    assert {g: sorted(s) for g, s in again.scores.items()} == {g: sorted(s) for g, s in first.scores.items()}
