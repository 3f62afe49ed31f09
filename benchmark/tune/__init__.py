"""`iris-bench tune`: an Optuna study whose trials are short training runs, run by parallel submitit workers.

    <runs_root>/<study>/
      study.json                the study's fixed settings: preset, --set overrides, games, seeds, search space, storage
      study.journal             the Optuna storage by default (JournalFileBackend; --storage takes any Optuna URL)
      mlflow.db, mlartifacts/   the embedded MLflow store: the study is a parent run, each trial a child run
      jobs.json, submitit/      the workers' submissions and logs (benchmark/jobs.py)
      workers/                  one lock file per live worker
      trial<N>/<game>/s<seed>/  the trial's run directories (iris/rundir.py)

Objective, maximised: the IQM of the final test returns of the trial's runs (games x seeds), each human-
normalised (raw for a game without a human reference, such as Catch). A trial trains its runs one after
another, seed by seed (every game of seed 0 first). After each evaluation it reports the running objective
(the finished runs' final scores with the current run's latest test return) at step = the trial's env steps
so far: every trial reports at the same steps, so the pruner compares like with like.

Each worker loops: recover lost trials, ask a trial, train it, tell the result, until the study has --trials
finished trials (complete, pruned, or failed by their own error). Optuna's JournalStorage has no heartbeat: a
worker holds a file lock for its whole life (benchmark/locks.py; the kernel drops it however the worker dies),
so a RUNNING trial whose worker's lock is free was lost. It is marked FAIL and its params queued again.

The package, one idea a module: settings (what a study keeps for life, its storage), command (validate, create,
start the workers, wait: the `tune` command), worker (the loop each worker runs), objective (a trial's runs and
its score), tracker (MLflow), export (the best trial, as a preset).
"""

from benchmark.tune.command import Request, cancel, run
from benchmark.tune.export import best
from benchmark.tune.settings import JOURNAL, STUDY_FILE, StudySettings, load_study_settings

__all__ = ["JOURNAL", "STUDY_FILE", "Request", "StudySettings", "best", "cancel", "load_study_settings", "run"]
