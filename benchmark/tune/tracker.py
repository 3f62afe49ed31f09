"""The study in MLflow: a parent run, each trial a child run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from benchmark import store, tracking
from benchmark.tune.settings import StudySettings
from iris.vocabulary import MLFLOW_FAILED, MLFLOW_FINISHED, MLFLOW_KILLED, MLFLOW_RUNNING, RUNNING

TRIAL_STATUS = {TrialState.COMPLETE: MLFLOW_FINISHED, TrialState.PRUNED: MLFLOW_KILLED, TrialState.FAIL: MLFLOW_FAILED}


@dataclass(frozen=True)
class Tracker:
    """The study as an MLflow parent run, each trial a child run. Pickled into every worker. Tracking never
    stops the study: a failing store is reported and skipped (Optuna's storage keeps every result)."""

    target: tracking.Target
    experiment_id: str | None = None  # None: the store was unreachable, nothing is tracked
    parent_run_id: str | None = None

    @property
    def client(self):
        return tracking.client(self.target)

    @classmethod
    def open(cls, settings: StudySettings) -> Tracker:
        """In the command, before any worker: create the store, the experiment and the parent run once."""
        target = tracking.target_for(settings.root, f"tune-{settings.name}")
        with _tolerant("store", target):
            from mlflow.entities import Param

            client = cls(target).client
            experiment_id = tracking.prepare(target)
            found = client.search_runs([experiment_id], "tags.kind = 'study'")
            if found:
                client.update_run(found[0].info.run_id, status=MLFLOW_RUNNING)
                return cls(target, experiment_id, found[0].info.run_id)
            tags = {"kind": "study", "study": settings.name, "preset": settings.preset, "code_version": target.code_version}
            run = client.create_run(experiment_id, tags=tags, run_name=settings.name)
            params = [Param(k, v if isinstance(v, str) else json.dumps(v))
                      for k, v in settings.fixed().items() if v is not None]
            client.log_batch(run.info.run_id, params=params)
            return cls(target, experiment_id, run.info.run_id)
        return cls(target)

    def start(self, trial: optuna.Trial, sampled: dict) -> None:
        if self.parent_run_id is None:
            return
        with _tolerant(f"trial {trial.number}", self.target):
            from mlflow.entities import Param

            client = self.client
            tags = {"mlflow.parentRunId": self.parent_run_id, "kind": "trial", "trial": str(trial.number),
                    "state": RUNNING}
            run = client.create_run(self.experiment_id, tags=tags, run_name=f"trial{trial.number}")
            client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in sampled.items()])
            trial.set_user_attr("mlflow_run_id", run.info.run_id)

    def finish(self, trial: optuna.trial.FrozenTrial) -> None:
        """Intermediate values (metric intermediate_value, step = env steps), state, objective, status."""
        run_id = trial.user_attrs.get("mlflow_run_id")
        if self.parent_run_id is None or run_id is None:
            return
        with _tolerant(f"trial {trial.number}", self.target):
            from mlflow.entities import Metric, RunTag

            now = int(time.time() * 1000)
            metrics = [Metric("intermediate_value", value, now, step)
                       for step, value in sorted(trial.intermediate_values.items())]
            if trial.state == TrialState.COMPLETE:
                metrics.append(Metric("objective", trial.value, now, max(trial.intermediate_values, default=0)))
            client = self.client
            client.log_batch(run_id, metrics=metrics, tags=[RunTag("state", trial.state.name.lower())])
            client.set_terminated(run_id, TRIAL_STATUS[trial.state])

    def close(self, optuna_study: optuna.Study, reached: bool) -> None:
        if self.parent_run_id is None:
            return
        with _tolerant("study", self.target):
            client = self.client
            if optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                client.log_metric(self.parent_run_id, "best_value", optuna_study.best_value)
            client.set_terminated(self.parent_run_id, MLFLOW_FINISHED if reached else MLFLOW_KILLED)


def _tolerant(what: str, target: tracking.Target):
    return store.tolerated(f"the study goes on without MLflow for the {what}", target.uri, target.experiment)
