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
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import optuna
import submitit
import yaml
from optuna.trial import TrialState

from benchmark import campaign, executors, jobs, locks, profiles, search_space, store, tracking
from benchmark.launch import POLL_SECONDS
from benchmark.worker import job_label
from iris import rundir
from iris.errors import ConfigError
from iris.config import parse_value, resolve

STUDY_FILE = "study.json"
JOURNAL = "study.journal"
SUBMIT_LOCK = ".submit.lock"  # one command at a time creates and submits to a study
ASK_LOCK = ".ask.lock"  # held while recovering lost trials and asking: no trial is seen before its worker is
WORKERS = "workers"
MAX_RETRIES = 3  # a trial that keeps killing its worker (out of memory, say) ends FAIL after this many retries
PRUNERS = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner,
           "none": optuna.pruners.NopPruner}
FIXED = ("preset", "overrides", "games", "seeds", "space", "storage")  # what a study keeps for life
MLFLOW_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


@dataclass(frozen=True)
class Study:
    name: str
    root: Path
    preset: str
    overrides: list[str]
    games: list[str]
    seeds: list[int]
    space: dict  # the search space's YAML mapping, as written
    storage: str | None  # an Optuna storage URL; None: the journal file in the study folder

    def fixed(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in FIXED}

    def optuna_storage(self) -> optuna.storages.BaseStorage | str:
        if self.storage:
            return self.storage
        backend = optuna.storages.journal.JournalFileBackend(str(self.root / JOURNAL))
        return optuna.storages.JournalStorage(backend)

    def load(self, pruner: str = "none") -> optuna.Study:
        return optuna.load_study(study_name=self.name, storage=self.optuna_storage(), pruner=PRUNERS[pruner]())


@dataclass
class Request:
    study: str
    games: list[str]
    seeds: list[int]
    trials: int
    workers: int
    executor: str
    profile: str | None
    preset: str
    overrides: list[str]
    space: str
    pruner: str
    storage: str | None
    runs_root: Path


def check(request: Request) -> tuple[Study, profiles.Profile | None]:
    """Validate everything before anything is written or started."""
    campaign.check_name(request.study, "study")
    executors.check(request.executor, request.profile)
    profile = profiles.load(request.profile) if request.profile else None
    for flag, value in (("--trials", request.trials), ("--workers", request.workers)):
        if value < 1:
            raise ConfigError(f"{flag} must be 1 or more, got {value}")
    if request.pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {request.pruner!r}; valid: {', '.join(PRUNERS)}")
    campaign.campaign_config(request.preset, request.overrides)
    space = search_space.read(request.space)
    search_space.parse(space, request.space)
    root = (request.runs_root / request.study).absolute()  # as every worker sees it, wherever it starts
    old = rundir.read_json(root / STUDY_FILE) or {}
    study = Study(request.study, root, request.preset, list(request.overrides), request.games, request.seeds, space,
                  request.storage or old.get("storage"))
    for key, value in study.fixed().items():
        if key in old and old[key] != value:
            raise ConfigError(f"study {study.name!r} was created with other {key} ({_short(old[key])}; now "
                              f"{_short(value)}; see {root / STUDY_FILE}): rerun with its settings or name a "
                              f"new --study")
    return study, profile


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def run(request: Request) -> int:
    """Create or resume the study, start the workers it still needs, wait for them; 0 once it has --trials."""
    study, profile = check(request)
    executors.check_scheduler(request.executor)
    with locks.hold(study.root / SUBMIT_LOCK, wait=True):
        rundir.atomic_write_json(study.root / STUDY_FILE, {"name": study.name, **study.fixed()})
        optuna.create_study(study_name=study.name, storage=study.optuna_storage(), direction="maximize",
                            load_if_exists=True)
        ostudy = study.load(request.pruner)
        tracker = Tracker.open(study)
        with locks.hold(study.root / ASK_LOCK, wait=True):
            recover_lost(ostudy, study, tracker)
        finished, running = progress(ostudy)
        count = min(request.workers, request.trials - finished - running)
        print(f"study {study.name} in {study.root}: {finished} of {request.trials} trial(s) finished, {running} "
              f"running; starting {max(count, 0)} worker(s) ({request.executor})")
        if count > 0:
            submit(request.executor, study, profile, count, (study, request.trials, request.pruner, tracker))
    reached = wait(ostudy, study, request.trials)
    tracker.close(ostudy, reached)
    print_summary(ostudy, request.trials)
    if not reached:
        print(f"iris-bench: study {study.name} has fewer than {request.trials} finished trials and no live worker: "
              f"rerun the same command to resume it", file=sys.stderr)
    return 0 if reached else 1


def submit(executor: str, study: Study, profile: profiles.Profile | None, count: int, args: tuple) -> None:
    folder = executors.job_folder(study.root)
    if executor == "debug":  # in-process, now
        submitit.DebugExecutor(folder).submit(TuneWorker(), *args, None).result()
        return
    if executor == "local":
        job_ids = executors.start_local_workers(folder, TuneWorker(), args, count)
    else:
        slurm = executors.slurm_executor(folder, profile, f"iris-tune-{study.name}", None)
        columns = [[a] * count for a in (*args, profile.params.get("cpus_per_task"))]
        job_ids = [job.job_id for job in slurm.map_array(TuneWorker(), *columns)]
    jobs.record(study.root, executor, folder, {job_id: [] for job_id in job_ids})


def wait(ostudy: optuna.Study, study: Study, trials: int) -> bool:
    """Progress bar over finished trials until there are enough or no worker is alive; whether there are."""
    from tqdm import tqdm

    with tqdm(total=trials, unit="trial", desc=study.name, disable=None) as bar:
        while True:
            finished, running = progress(ostudy)
            bar.n = min(finished, trials)
            bar.set_postfix_str(f"{running} running")
            if finished >= trials or not jobs.alive_job_ids(jobs.load(study.root)):
                return finished >= trials
            time.sleep(POLL_SECONDS)


def cancel(runs_root: Path, name: str) -> list[str]:
    """Stop the study's live workers; their running trials are recovered by the next run."""
    return jobs.cancel(load_study_settings(runs_root, name).root)


# ---- the worker ----------------------------------------------------------------------------------------------


class TuneWorker(submitit.helpers.Checkpointable):
    """One worker's loop; on preemption or time limit submitit requeues it, and its lost trial is retried."""

    def __call__(self, study: Study, trials: int, pruner: str, tracker: Tracker, threads: int | None) -> str:
        if threads is not None:
            import torch

            # OMP_NUM_THREADS, when set, caps the job's share: oversubscribed cores slow every run many times over.
            torch.set_num_threads(min(threads, int(os.environ.get("OMP_NUM_THREADS") or threads)))
        worker = f"{socket.gethostname()}-{os.getpid()}"
        lock = study.root / WORKERS / f"{worker}.lock"
        ostudy = study.load(pruner)
        params = search_space.parse(study.space, STUDY_FILE)
        done = 0
        with locks.hold(lock, owner=job_label()):
            while (trial := next_trial(ostudy, study, trials, worker, tracker)) is not None:
                run_trial(ostudy, trial, study, params, tracker)
                done += 1
        lock.unlink(missing_ok=True)
        return f"worker {worker}: {done} trial(s)"


def next_trial(ostudy: optuna.Study, study: Study, trials: int, worker: str, tracker: Tracker) -> optuna.Trial | None:
    """A new (or queued) trial owned by `worker`, or None once the study has enough trials finished or running."""
    with locks.hold(study.root / ASK_LOCK, wait=True):
        recover_lost(ostudy, study, tracker)
        finished, running = progress(ostudy)
        if finished + running >= trials:
            return None
        trial = ostudy.ask()
        trial.set_user_attr("worker", worker)
        return trial


def recover_lost(ostudy: optuna.Study, study: Study, tracker: Tracker) -> None:
    """Mark FAIL every RUNNING trial whose worker is gone, and queue its params again. Call under ASK_LOCK."""
    for trial in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker is not None and locks.is_held(study.root / WORKERS / f"{worker}.lock"):
            continue
        frozen = ostudy.tell(trial.number, state=TrialState.FAIL)
        retries = trial.user_attrs.get("retries", 0)
        if retries < MAX_RETRIES:
            ostudy.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, "retries": retries + 1})
        tracker.finish(frozen)
        print(f"study {study.name}: trial {trial.number} lost its worker ({worker}): marked FAIL"
              f"{', its params queued again' if retries < MAX_RETRIES else f' after {MAX_RETRIES} retries'}")


def progress(ostudy: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials. A lost trial that was queued again counts once, through its retry."""
    trials = ostudy.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    finished = sum(t.state.is_finished() and t.number not in retried for t in trials)
    return finished, sum(t.state == TrialState.RUNNING for t in trials)


def run_trial(ostudy: optuna.Study, trial: optuna.Trial, study: Study, params: list[search_space.Param],
              tracker: Tracker) -> None:
    sampled = {p.key: p.suggest(trial) for p in params}
    tracker.start(trial, sampled)
    try:
        value = objective(trial, study, sampled)
    except optuna.TrialPruned:
        frozen = ostudy.tell(trial, state=TrialState.PRUNED)
    except Exception:  # this trial's own failure (a bad combination, say): the worker goes on
        traceback.print_exc()
        frozen = ostudy.tell(trial, state=TrialState.FAIL)
    else:
        frozen = ostudy.tell(trial, value)
    tracker.finish(frozen)
    print(f"trial {frozen.number}: {frozen.state.name.lower()}"
          + (f", objective {frozen.value:.4f}" if frozen.state == TrialState.COMPLETE else ""), flush=True)


def objective(trial: optuna.Trial, study: Study, sampled: dict) -> float:
    from iris.trainer import train

    overrides = study.overrides + [f"{k}={v}" for k, v in sampled.items()]
    scores: list[float] = []
    steps = 0  # the trial's env steps before the current run
    for seed in study.seeds:
        for game in study.games:
            run_dir = study.root / f"trial{trial.number}" / game / f"s{seed}"
            rundir.write_spec(run_dir, resolve(study.preset, overrides, game), seed, study.preset, overrides)
            result = train(run_dir, on_epoch=functools.partial(report, trial, game, list(scores), steps))
            scores.append(score(game, result["mean"]))
            steps += result["env_steps"]
    return iqm(scores)


def report(trial: optuna.Trial, game: str, scores: list[float], steps: int, row: dict) -> None:
    """The trainer's on_epoch callback: report the running objective after each evaluation, prune if told."""
    if "test/return_mean" not in row:
        return
    step = steps + row["env_steps"]
    trial.report(iqm(scores + [score(game, row["test/return_mean"])]), step)
    if trial.should_prune():
        raise optuna.TrialPruned(f"pruned at env step {step} (epoch {row['epoch']} of {game})")


def score(game: str, test_return: float) -> float:
    from analysis.normalise import has_reference, normalise

    return float(normalise(game, np.asarray(test_return))) if has_reference(game) else float(test_return)


def iqm(scores: list[float]) -> float:
    from rliable.metrics import aggregate_iqm  # the analysis suite's IQM (25% trimmed mean)

    return float(aggregate_iqm(np.asarray(scores)))


# ---- MLflow ------------------------------------------------------------------------------------------------


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
    def open(cls, study: Study) -> Tracker:
        """In the command, before any worker: create the store, the experiment and the parent run once."""
        target = tracking.target_for(study.root, f"tune-{study.name}")
        with _tolerant("store", target):
            from mlflow.entities import Param

            client = cls(target).client
            experiment_id = tracking.prepare(target)
            found = client.search_runs([experiment_id], "tags.kind = 'study'")
            if found:
                client.update_run(found[0].info.run_id, status="RUNNING")
                return cls(target, experiment_id, found[0].info.run_id)
            tags = {"kind": "study", "study": study.name, "preset": study.preset, "code_version": target.code_version}
            run = client.create_run(experiment_id, tags=tags, run_name=study.name)
            params = [Param(k, v if isinstance(v, str) else json.dumps(v))
                      for k, v in study.fixed().items() if v is not None]
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
                    "state": "running"}
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
            client.set_terminated(run_id, MLFLOW_STATUS[trial.state])

    def close(self, ostudy: optuna.Study, reached: bool) -> None:
        if self.parent_run_id is None:
            return
        with _tolerant("study", self.target):
            client = self.client
            if ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                client.log_metric(self.parent_run_id, "best_value", ostudy.best_value)
            client.set_terminated(self.parent_run_id, "FINISHED" if reached else "KILLED")


@contextlib.contextmanager
def _tolerant(what: str, target: tracking.Target):
    try:
        with store.reported(target.uri, target.experiment):
            yield
    except store.TrackingError as e:
        print(f"tracking: {e}; the study goes on without MLflow for the {what}", file=sys.stderr)


# ---- results -----------------------------------------------------------------------------------------------


def load_study_settings(runs_root: Path, name: str) -> Study:
    root = Path(runs_root) / name
    data = rundir.read_json(root / STUDY_FILE)
    if data is None:
        found = sorted(p.parent.name for p in Path(runs_root).glob(f"*/{STUDY_FILE}"))
        raise ConfigError(f"no study {name!r} in {runs_root}; existing: {', '.join(found) or 'none'}")
    return Study(name, root, **{k: data[k] for k in FIXED})


def print_summary(ostudy: optuna.Study, trials: int) -> None:
    states = [t.state.name.lower() for t in ostudy.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    print(f"study {ostudy.study_name}: {progress(ostudy)[0]} of {trials} trial(s) finished ({counts})")
    if ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        print_best(ostudy.best_trial)


def print_best(trial: optuna.trial.FrozenTrial) -> None:
    print(f"best trial {trial.number}: objective {trial.value:.4f}")
    for key, value in trial.params.items():
        print(f"  {key} = {value}")


def best(runs_root: Path, name: str, export: Path | None) -> None:
    """`tune --best`: print the best trial; with `export`, write it as a preset file for --preset."""
    study = load_study_settings(runs_root, name)
    ostudy = study.load()
    if not ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ConfigError(f"study {name!r} has no complete trial yet")
    print_best(ostudy.best_trial)
    if export is not None:
        export.parent.mkdir(parents=True, exist_ok=True)
        export.write_text(yaml.safe_dump(preset_of(study, ostudy.best_trial.params), sort_keys=False))
        print(f"wrote {export}: train it with --preset {export}")


def preset_of(study: Study, params: dict) -> dict:
    """{base, set}: the study's preset, its --set overrides, then the trial's values (load_preset's format)."""
    config = resolve(study.preset)
    values = {}
    for item in study.overrides:
        key, _, raw = item.partition("=")
        value = parse_value(config, key.strip(), raw.strip())
        values[key.strip()] = list(value) if isinstance(value, tuple) else value
    return {"base": study.preset, "set": {**values, **params}}
