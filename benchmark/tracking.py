"""MLflow mirror of run directories: one experiment per campaign, one MLflow run per (game, seed).

The run directory stays the source of truth. `sync_run` replays whatever MLflow has not seen yet
(metrics.jsonl rows it has not logged in this form, then the final evaluation and artifacts) and records
its progress in <run_dir>/mlflow.json, so it is idempotent: the live tracker calls it after every
epoch, `iris-bench sync` calls it later for runs whose store was unreachable. A resumed run finds its
MLflow run id in mlflow.json (or, failing that, by its tags) and continues it, never starting another.

mlflow.json names the campaign's own store relatively ("campaign"), so a copied campaign folder keeps
syncing into its own copy; its store's experiment, which remembers where its artifacts live, is checked
first, and a store made for another folder is refused (`prepare`). Store failures are one-line
`store.TrackingError`s (benchmark/store.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmark import locks, store
from benchmark.store import DamagedStateFile, TrackingError
from iris import errors, rundir
from iris.vocabulary import MLFLOW_FINISHED, MLFLOW_RUNNING, MLFLOW_STATUS, MLFLOW_TERMINATED

STATE_FILE = "mlflow.json"  # in the run directory: {store, run_id, synced: {epoch: row hash}, final_synced}
STATE_KEYS = ("store", "run_id", "synced", "final_synced")
EMBEDDED = "campaign"  # mlflow.json's name for the campaign's own mlflow.db
SYNC_LOCK = "mlflow.lock"  # in the run directory, held while syncing it
ARTIFACTS = ("spec.json", "eval.json", "dream.gif", "reconstructions*")
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}  # MLflow's UI: the model-training view
SOURCE_TAGS = {"mlflow.source.type": "JOB", "mlflow.source.name": "iris-bench"}
RUNTIME_KEYS = ("device", "device_name", "precision", "torch_threads")  # the run's "runtime" record, as tags
_MAX_RETRY_GAP = 64  # epochs between tries once the store keeps failing


@dataclass(frozen=True)
class Target:
    """Where a campaign's runs are tracked; pickled into every job."""

    uri: str
    experiment: str  # the campaign name
    artifact_location: str | None  # for an experiment created in the embedded store; a server picks its own
    code_version: str

    @property
    def store_id(self) -> str:
        """How mlflow.json names this store: a server by its URI, the embedded one relatively."""
        return self.uri if self.artifact_location is None else EMBEDDED


def target_for(campaign_root: Path, campaign: str) -> Target:
    """$MLFLOW_TRACKING_URI when set, else the campaign's embedded SQLite store and artifact folder."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return Target(store.check_uri(uri), campaign, None, code_version())
    root = campaign_root.resolve()
    return Target(f"sqlite:///{root / 'mlflow.db'}", campaign, (root / "mlartifacts").as_uri(), code_version())


def code_version() -> str:
    """`git describe` of this checkout, else the installed package version."""
    repo = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=repo, capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return importlib.metadata.version("iris-bench")


def client(target: Target):
    return store.client(target.uri)


def prepare(target: Target) -> str:
    """Create the store and the experiment once, before any job opens them (concurrent first opens of a
    new SQLite store break its migrations). Returns the experiment id. An embedded store whose experiment
    keeps its artifacts in another folder was copied or moved with its campaign: refused."""
    with store.reported(target.uri, target.experiment):
        mlflow = client(target)
        experiment = mlflow.get_experiment_by_name(target.experiment)
        if experiment is None:
            return mlflow.create_experiment(target.experiment, artifact_location=target.artifact_location,
                                            tags=EXPERIMENT_TAGS)
        if target.artifact_location is not None and experiment.artifact_location != target.artifact_location:
            raise TrackingError(_moved_store(target, experiment.artifact_location))
        for key, value in EXPERIMENT_TAGS.items():
            if experiment.tags.get(key) != value:
                mlflow.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id


def _moved_store(target: Target, artifact_location: str) -> str:
    db = target.uri.removeprefix("sqlite:///")
    return (f"campaign store {db} was made for the campaign folder that keeps its artifacts in {artifact_location} "
            f"(this folder was copied or moved): sync that folder, or move {db} and the mlartifacts folder beside "
            f"it aside and rerun `iris-bench sync` to build this folder's own store from its run directories")


def sync_run(run_dir: Path, target: Target, status: str | None = None) -> int:
    """Mirror `run_dir` into MLflow; returns the number of epochs logged now. `status` (FINISHED, FAILED,
    KILLED, RUNNING) is set on the MLflow run at the end; a run with eval.json always ends FINISHED.
    Holds the run's sync lock, so a job and `iris-bench sync` never log the same rows twice.
    Raises TrackingError (DamagedStateFile for a damaged mlflow.json) in one line."""
    with locks.hold(run_dir / SYNC_LOCK, wait=True), store.reported(target.uri, target.experiment):
        return _sync_locked(run_dir, target, status)


def _sync_locked(run_dir: Path, target: Target, status: str | None) -> int:
    from mlflow.entities import Metric, RunTag

    mlflow = client(target)
    state = _run_state(mlflow, run_dir, target)
    rows = rundir.read_metrics(run_dir)
    # A row counts as synced while its epoch keeps the same content: a resumed run rewrites the epochs
    # after its checkpoint, and those are logged again.
    new = [r for r in rows if state["synced"].get(str(r["epoch"])) != _fingerprint(r)]
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, int(r["env_steps"])) for r in new for k, v in r.items() if _is_number(v)]
    for i in range(0, len(metrics), 1000):  # MLflow's batch limit
        mlflow.log_batch(state["run_id"], metrics=metrics[i:i + 1000])
    if new:
        _save_state(run_dir, state, synced={str(r["epoch"]): _fingerprint(r) for r in rows})
    evaluation = rundir.read_eval(run_dir)
    runtime = runtime_tags(run_dir, evaluation)
    if runtime:
        mlflow.log_batch(state["run_id"], tags=[RunTag(k, v) for k, v in runtime.items()])
    if evaluation is not None and not state["final_synced"]:
        final = {"final/return_mean": evaluation["mean"]}
        if rows and "time" in rows[-1]:
            final["final/wall_time_s"] = rows[-1]["time"]
        mlflow.log_batch(state["run_id"], metrics=[Metric(k, float(v), now, evaluation["env_steps"])
                                                   for k, v in final.items()])
        for pattern in ARTIFACTS:
            for path in sorted(run_dir.glob(pattern)):
                mlflow.log_artifact(state["run_id"], str(path))
        _save_state(run_dir, state, final_synced=True)
    if evaluation is not None:
        status = MLFLOW_FINISHED
    if status in MLFLOW_TERMINATED:
        mlflow.set_terminated(state["run_id"], status, end_time=_end_time(run_dir))
    elif status is not None:
        mlflow.update_run(state["run_id"], status=status)
    return len(new)


def runtime_tags(run_dir: Path, evaluation: dict | None) -> dict[str, str]:
    """runtime.device, ... from the "runtime" record of eval.json, else of status.json, when present."""
    record = (evaluation or {}).get("runtime") or (rundir.read_status(run_dir) or {}).get("runtime") or {}
    return {f"runtime.{k}": str(record[k]) for k in RUNTIME_KEYS if record.get(k) is not None}


def _end_time(run_dir: Path) -> int:
    """When the run last showed life (status.json's heartbeat: its finish for a finished run), in ms."""
    heartbeat = (rundir.read_status(run_dir) or {}).get("heartbeat")
    return int((heartbeat or time.time()) * 1000)


def mirror_status(run_dir: Path) -> str | None:
    """The MLflow status matching status.json, for a run that no process is training."""
    return MLFLOW_STATUS.get((rundir.read_status(run_dir) or {}).get("state"))


def sync_campaign(campaign_root: Path, campaign: str, run_dirs: list[Path]) -> dict[Path, str]:
    """`iris-bench sync`: replay every started run into MLflow. A run no process trains also gets its
    MLflow status from status.json (a killed job leaves it RUNNING there).
    A store failure stops it (TrackingError); a run whose mlflow.json is damaged is reported as
    "error: ..." and the other runs are synced."""
    target = target_for(campaign_root, campaign)
    prepare(target)
    outcome = {}
    for run_dir in run_dirs:
        if rundir.read_status(run_dir) is None:
            outcome[run_dir] = "not started"
            continue
        training = locks.is_held(run_dir / locks.RUN_LOCK)
        try:
            logged = sync_run(run_dir, target, None if training else mirror_status(run_dir))
        except DamagedStateFile as e:
            outcome[run_dir] = f"error: {e}"
            continue
        outcome[run_dir] = f"{logged} epoch(s) logged" + (" (running)" if training else "")
    return outcome


def _fingerprint(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:16]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _run_state(mlflow, run_dir: Path, target: Target) -> dict:
    """This run's MLflow state in `target`'s store: the saved one while its run exists there, else a run
    found by its tags, else a new run."""
    state = saved_state(run_dir)
    if state is not None and state.get("store") == target.store_id and _exists(mlflow, state["run_id"]):
        return state
    spec = rundir.read_spec(run_dir)
    experiment_id = prepare(target)
    found = mlflow.search_runs([experiment_id], f"tags.game = '{spec['game']}' and tags.seed = '{spec['seed']}'")
    run_id = found[0].info.run_id if found else _create_run(mlflow, experiment_id, spec, target)
    state = {"store": target.store_id, "run_id": run_id, "synced": {}, "final_synced": False}
    rundir.atomic_write_json(run_dir / STATE_FILE, state)
    return state


def saved_state(run_dir: Path) -> dict | None:
    """mlflow.json, or None before the first sync; a damaged one is a DamagedStateFile naming it (kept as it is)."""
    path = run_dir / STATE_FILE
    try:
        state = rundir.read_json(path)
    except (ValueError, OSError, errors.RunStateError) as e:  # rundir.read_json names the file too: say it our way
        raise DamagedStateFile(_damaged_state(path, f"{type(e).__name__}: {e}")) from None
    if state is not None and not (isinstance(state, dict) and all(k in state for k in STATE_KEYS[1:])):
        raise DamagedStateFile(_damaged_state(path, f"it lacks {', '.join(STATE_KEYS)}"))
    return state


def _damaged_state(path: Path, why: str) -> str:
    return (f"{path} is damaged ({why}): move it aside and rerun `iris-bench sync`, which finds the run's "
            f"MLflow run again by its tags")


def _exists(mlflow, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_run(run_id)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def _create_run(mlflow, experiment_id: str, spec: dict, target: Target) -> str:
    from mlflow.entities import Param

    tags = {"game": spec["game"], "seed": str(spec["seed"]), "preset": spec["preset"], "campaign": target.experiment,
            "config_hash": spec["config_hash"], "code_version": target.code_version, **SOURCE_TAGS}
    run = mlflow.create_run(experiment_id, tags=tags, run_name=f"{spec['game']}-s{spec['seed']}")
    params = [Param(k, str(v)) for k, v in rundir.spec_config(spec).flat().items()]
    for i in range(0, len(params), 100):  # MLflow's batch limit
        mlflow.log_batch(run.info.run_id, params=params[i:i + 100])
    return run.info.run_id


def _save_state(run_dir: Path, state: dict, **changes: object) -> None:
    state.update(changes)
    rundir.atomic_write_json(run_dir / STATE_FILE, state)


class LiveTracker:
    """The job's side: syncs after every epoch and never lets a tracking failure stop training.

    Each call is bounded to seconds (benchmark/store.py); while the store fails, tries are spaced out
    (1, 2, 4 ... epochs apart), each failure is one line; nothing is lost, the next successful sync or
    `iris-bench sync` catches up."""

    def __init__(self, run_dir: Path, target: Target):
        self.run_dir, self.target = run_dir, target
        self.epoch, self.failures, self.next_try_epoch = 0, 0, 0
        self._sync(MLFLOW_RUNNING)

    def on_epoch(self, row: dict) -> None:
        self.epoch = row["epoch"]
        if self.epoch >= self.next_try_epoch and self._sync(None):
            self._log_system_metrics(row["env_steps"])

    def close(self, status: str) -> None:
        self._sync(status)

    def _sync(self, status: str | None) -> bool:
        # Should this fail (the store is down, refuses or is damaged), metrics.jsonl keeps everything.
        next_try = self.epoch + min(2 ** self.failures, _MAX_RETRY_GAP)
        with store.tolerated(f"training continues, next try after epoch {next_try - 1}; "
                             "`iris-bench sync` replays what is missing") as outcome:
            sync_run(self.run_dir, self.target, status)
        self.failures = self.failures + 1 if outcome.failed else 0
        self.next_try_epoch = next_try if outcome.failed else self.next_try_epoch
        return not outcome.failed

    def _log_system_metrics(self, step: int) -> None:
        """RSS, CPU time and peak GPU memory (MLflow's own system metrics need psutil, absent here)."""
        from mlflow.entities import Metric

        values = {"system/rss_mb": _rss_mb(), "system/cpu_seconds": sum(os.times()[:2])}
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            values["system/gpu_max_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        now = int(time.time() * 1000)
        with store.tolerated("system metrics not logged (live-only figures: losing one is harmless)",
                             self.target.uri, self.target.experiment):
            run_id = saved_state(self.run_dir)["run_id"]
            client(self.target).log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

