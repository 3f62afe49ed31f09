"""The words every layer shares, defined once: run states, metric names, MLflow run statuses. The agent writes them
(iris/), the infrastructure reads and shows them (benchmark/), the analysis aggregates them (analysis/); any layer
may import this module (and iris/errors.py, iris/rundir.py: the run directory's contract) and nothing else of the
agent's to speak the same language."""

from __future__ import annotations

# A run directory's state, in its status.json. stopped: interrupted (cancelled, preempted, killed), resumable.
PENDING, RUNNING, STOPPED, FINISHED, FAILED = "pending", "running", "stopped", "finished", "failed"
RUN_STATES = (PENDING, RUNNING, STOPPED, FINISHED, FAILED)
# A campaign's view of a run adds one: assigned to a live job that has not taken the run's lock yet.
QUEUED = "queued"
CAMPAIGN_STATES = (FINISHED, RUNNING, QUEUED, PENDING, STOPPED, FAILED)  # the order status tables count them in
RESUMABLE = (STOPPED, FAILED)  # what a rerun of a campaign resumes from its checkpoint

# A campaign folder's plan, written by `iris-bench run`: its "runs" keys ("Pong/s0") are run directories under it.
CAMPAIGN_FILE = "campaign.json"

# Metric names: keys of metrics.jsonl rows, and MLflow metrics (step = env steps).
ENV_STEPS = "env_steps"
TEST_RETURN = "test/return_mean"  # mean return of the evaluation episodes of an evaluation epoch
TEST_RETURN_STD = "test/return_std"
TRAIN_RETURN = "train/return_mean"  # mean return of the episodes collected this epoch

# MLflow run statuses, and the one a run directory's state maps to (a run still "running" when its job ended was
# interrupted: KILLED).
MLFLOW_RUNNING, MLFLOW_FINISHED, MLFLOW_FAILED, MLFLOW_KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
MLFLOW_TERMINATED = (MLFLOW_FINISHED, MLFLOW_FAILED, MLFLOW_KILLED)
MLFLOW_STATUS = {FINISHED: MLFLOW_FINISHED, FAILED: MLFLOW_FAILED, STOPPED: MLFLOW_KILLED, RUNNING: MLFLOW_KILLED}
