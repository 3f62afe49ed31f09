"""`iris-bench tune` on real parts: Optuna journal files, submitit worker processes, the trainer on shrunk
Catch runs, the embedded MLflow store. Two workers share a study; the median pruner prunes; a killed worker's
trial is recovered by a rerun; the best trial exported as a preset resolves to its values; bad spaces fail early.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import REPO, SHRUNK
from mlflow import MlflowClient
from optuna.trial import TrialState

from benchmark import jobs, search_space, tune
from iris import rundir
from iris.errors import ConfigError
from iris.config import resolve

COLLECT_STEPS = 14  # two 7-step Catch episodes per epoch: every epoch finishes episodes
CATCH_RUN = {**SHRUNK, "training.epochs": 2, "training.collect_steps": COLLECT_STEPS, "training.collect_envs": 2,
             "training.eval_every": 1, "training.eval_episodes": 4, "training.final_eval_episodes": 2}
SPACE = """\
actor_critic.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
world_model.num_layers: {choices: [1, 2]}
tokenizer.batch_size: {low: 2, high: 4}
"""
ENV = {"OMP_NUM_THREADS": "1"}  # workers share 2 cores with other work: one torch thread each


def tune_args(root: Path, name: str, *extra, **settings) -> list:
    space = root.parent / "space.yaml"
    space.write_text(SPACE)
    sets = [a for k, v in {**CATCH_RUN, **settings}.items() for a in ("--set", f"{k}={v}")]
    return ["tune", "--study", name, "--games", "Catch", "--preset", "catch", *sets, "--space", space,
            "--runs-root", root, *extra]


@pytest.fixture
def runs_root(tmp_path):
    """A runs root; every study worker still alive in it at the end is cancelled."""
    root = tmp_path / "runs"
    yield root
    for study_file in root.glob(f"*/{tune.STUDY_FILE}"):
        jobs.cancel(study_file.parent)


def journal(root: Path, name: str) -> optuna.Study:
    return tune.load_study_settings(root, name).load()


def mlflow_runs(root: Path, name: str) -> dict[str, object]:
    """{'study': the parent run, 'trial<N>': each child run}."""
    client = MlflowClient(f"sqlite:///{root / name / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(f"tune-{name}")
    return {r.info.run_name if r.data.tags["kind"] == "trial" else "study": r
            for r in client.search_runs([experiment.experiment_id])}


def test_two_workers_share_a_study_and_the_best_exports_as_a_preset(runs_root, iris_bench, tmp_path):
    done = iris_bench(*tune_args(runs_root, "shared", "--trials", "4", "--workers", "2", "--pruner", "none",
                                 **{"training.epochs": 3}), env=ENV)
    assert "4 of 4 trial(s) finished (4 complete)" in done.stdout
    trials = journal(runs_root, "shared").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len(jobs.load(runs_root / "shared")[0]["jobs"]) == 2
    assert len({t.user_attrs["worker"] for t in trials}) == 2, "both workers took trials from the one journal"

    runs = mlflow_runs(runs_root, "shared")
    parent = runs["study"].info.run_id
    for t in trials:
        run_dir = runs_root / "shared" / f"trial{t.number}" / "Catch" / "s0"
        config = rundir.spec_config(rundir.read_spec(run_dir)).flat()
        assert {k: config[k] for k in t.params} == t.params and config["training.epochs"] == 3
        evaluations = {r["env_steps"]: r["test/return_mean"] for r in rundir.read_metrics(run_dir)}
        assert sorted(evaluations) == [COLLECT_STEPS * e for e in (1, 2, 3)] and t.intermediate_values == evaluations
        assert t.value == rundir.read_eval(run_dir)["mean"]  # one Catch run: the IQM is its raw final return
        child = runs[f"trial{t.number}"]
        assert child.data.tags["mlflow.parentRunId"] == parent and child.data.tags["state"] == "complete"
        assert child.data.params == {k: str(v) for k, v in t.params.items()}
        assert child.data.metrics["objective"] == t.value and child.info.status == "FINISHED"
        history = MlflowClient(f"sqlite:///{runs_root / 'shared' / 'mlflow.db'}").get_metric_history(
            child.info.run_id, "intermediate_value")
        assert {m.step: m.value for m in history} == t.intermediate_values

    preset = tmp_path / "best.yaml"
    shown = iris_bench("tune", "--study", "shared", "--runs-root", runs_root, "--best", "--export", preset).stdout
    best = journal(runs_root, "shared").best_trial
    assert f"best trial {best.number}: objective {best.value:.4f}" in shown
    config = resolve(str(preset)).flat()
    assert {k: config[k] for k in best.params} == best.params
    assert config["env.game"] == "Catch" and config["training.epochs"] == 3 and config["training.eval_episodes"] == 4

    changed = iris_bench(*tune_args(runs_root, "shared", "--trials", "4", "--seeds", "2", **{"training.epochs": 3}),
                         check=False)
    assert changed.returncode == 2 and "was created with other seeds ([0]; now [0, 1]" in changed.stderr


def test_the_median_pruner_prunes_trials_worse_than_the_complete_ones(runs_root, iris_bench):
    """Five complete trials (the median pruner's n_startup_trials) that scored Catch's maximum, 1.0, at every
    evaluation: a 1-epoch agent reports less at its first evaluation, so every new trial is pruned there."""
    (runs_root / "pruned").mkdir(parents=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(runs_root / "pruned" / tune.JOURNAL)))
    study = optuna.create_study(study_name="pruned", direction="maximize", storage=storage)
    perfect = {COLLECT_STEPS * e: 1.0 for e in (1, 2)}
    for _ in range(5):
        study.add_trial(optuna.create_trial(value=1.0, intermediate_values=perfect))

    iris_bench(*tune_args(runs_root, "pruned", "--trials", "7", "--executor", "debug", "--pruner", "median"), env=ENV)
    new = journal(runs_root, "pruned").get_trials()[5:]
    assert [t.state for t in new] == [TrialState.PRUNED] * 2
    runs = mlflow_runs(runs_root, "pruned")
    for t in new:
        assert list(t.intermediate_values) == [COLLECT_STEPS] and t.intermediate_values[COLLECT_STEPS] < 1.0
        run_dir = runs_root / "pruned" / f"trial{t.number}" / "Catch" / "s0"
        assert [r["epoch"] for r in rundir.read_metrics(run_dir)] == [1] and rundir.read_eval(run_dir) is None
        assert rundir.read_status(run_dir)["error"].startswith("TrialPruned")
        child = runs[f"trial{t.number}"]
        assert child.data.tags["state"] == "pruned" and child.info.status == "KILLED"
        assert "objective" not in child.data.metrics


def test_a_killed_workers_trial_fails_and_is_retried_on_rerun(runs_root, iris_bench, wait_for):
    args = tune_args(runs_root, "killed", "--trials", "2", "--workers", "1", "--pruner", "none",
                     **{"training.epochs": 8})
    environ = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | ENV
    first = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *map(str, args)], cwd=REPO, env=environ,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = runs_root / "killed" / "trial0" / "Catch" / "s0"
    wait_for(lambda: (rundir.read_status(run_dir) or {}).get("epoch", 0) >= 2, 180, "trial 0 at epoch 2")
    (victim,) = journal(runs_root, "killed").get_trials(states=(TrialState.RUNNING,))
    os.kill(int(victim.user_attrs["worker"].rpartition("-")[2]), signal.SIGKILL)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 1 and "rerun the same command" in stderr
    assert journal(runs_root, "killed").get_trials()[0].state == TrialState.RUNNING

    rerun = iris_bench(*args, env=ENV)
    assert "trial 0 lost its worker" in rerun.stdout and "2 of 2 trial(s) finished" in rerun.stdout
    trials = journal(runs_root, "killed").get_trials()
    assert trials[0].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert retry.state == TrialState.COMPLETE and retry.params == trials[0].params
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2 and len(trials) == 3
    assert rundir.read_metrics(run_dir)[-1]["epoch"] >= 2  # the lost trial's run directory stays
    assert mlflow_runs(runs_root, "killed")["trial0"].data.tags["state"] == "fail"


@pytest.mark.parametrize("entry, message", [
    ("actor_critic.lrr: {low: 1.0e-4, high: 1.0e-2}",
     "unknown config key 'actor_critic.lrr'; did you mean: actor_critic.lr"),
    ("nonsense.lr: {choices: [1]}", "unknown config key 'nonsense.lr'"),
    ("actor_critic.lr: {low: 1.0e-2, high: 1.0e-4}", "actor_critic.lr: low (0.01) must be below high (0.0001)"),
    ("world_model.num_layers: {choices: []}", "world_model.num_layers: choices must be a non-empty list"),
    ("actor_critic.lr: {low: 0, high: 1.0e-2, log: true}", "actor_critic.lr: a log range needs low > 0"),
    ("actor_critic.lr: {lo: 1.0e-4, high: 1.0e-2}",
     "actor_critic.lr: unknown field(s) lo; valid: low, high, log, step, choices"),
    ("world_model.num_layers: {low: 1.5, high: 4}", "bad value '1.5' for world_model.num_layers: expected int"),
    ("tokenizer.normalize_codes: {low: 0, high: 1}",
     "tokenizer.normalize_codes is a bool key: a range needs an int or float"),
    ("world_model.num_layers: {choices: [1, two]}", "bad value 'two' for world_model.num_layers: expected int"),
    ("world_model.num_layers: {choices: [1, 2], low: 1}", "give either choices or a range"),
    ("actor_critic.lr: 0.001",
     "actor_critic.lr: expected {low: .., high: ..[, log: true][, step: ..]} or {choices: [..]}"),
    ("env.game: {choices: [Pong, Breakout]}", "env.game cannot be searched: choose games with --games"),
])
def test_a_bad_search_space_is_refused(tmp_path, entry, message):
    space = tmp_path / "space.yaml"
    space.write_text(entry + "\n")
    with pytest.raises(ConfigError) as error:
        search_space.parse(search_space.read(space), str(space))
    assert str(error.value).startswith(f"search space {space}: ") and message in str(error.value)


def test_the_example_space_is_valid_and_a_bad_one_fails_before_anything_starts(runs_root, iris_bench, tmp_path):
    assert {p.key for p in search_space.parse(search_space.read(search_space.EXAMPLE), "example")} >= {
        "actor_critic.lr", "world_model.num_layers"}
    (tmp_path / "bad.yaml").write_text("world_model.num_layers: {low: 4, high: 4}\n")
    done = iris_bench("tune", "--study", "bad", "--games", "Catch", "--trials", "1", "--space", tmp_path / "bad.yaml",
                      "--runs-root", runs_root, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"iris-bench: error: search space {tmp_path / 'bad.yaml'}: world_model.num_layers: "
                           f"low (4) must be below high (4)\n")
    assert not runs_root.exists()
