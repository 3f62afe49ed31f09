"""The `tune` command: validate, create or resume the study, start the workers it still needs, wait for them."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import optuna

from benchmark import campaign, executors, jobs, locks, search_space
from benchmark.progress import Snapshot, follow
from benchmark.tune.export import print_summary
from benchmark.tune.settings import PRUNERS, STUDY_FILE, StudySettings, load_study_settings
from benchmark.tune.tracker import Tracker
from benchmark.tune.worker import ASK_LOCK, TuneWorker, recover_lost, trial_counts
from benchmark.requests import at_least_one, check_jobs
from iris import rundir
from iris.errors import ConfigError


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


def check(request: Request) -> tuple[StudySettings, executors.Backend]:
    """Validate everything before anything is written or started."""
    campaign.check_name(request.study, "study")
    backend = executors.backend(request.executor, request.profile)
    at_least_one("--trials", request.trials)
    at_least_one("--workers", request.workers)
    if request.pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {request.pruner!r}; valid: {', '.join(PRUNERS)}")
    campaign.campaign_config(request.preset, request.overrides)
    check_jobs(request.preset, request.overrides, request.games[0], backend)
    space = search_space.read(request.space)
    search_space.parse(space, request.space)
    root = (request.runs_root / request.study).absolute()  # as every worker sees it, wherever it starts
    old = rundir.read_json(root / STUDY_FILE) or {}
    settings = StudySettings(request.study, root, request.preset, list(request.overrides), request.games,
                             request.seeds, space, request.storage or old.get("storage"))
    for key, value in settings.fixed().items():
        if key in old and old[key] != value:
            raise ConfigError(f"study {settings.name!r} was created with other {key} ({_short(old[key])}; now "
                              f"{_short(value)}; see {root / STUDY_FILE}): rerun with its settings or name a "
                              f"new --study")
    return settings, backend


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def run(request: Request) -> int:
    """Create or resume the study, start the workers it still needs, wait for them; 0 once it has --trials."""
    settings, backend = check(request)
    backend.check_scheduler()
    with locks.hold(settings.root / locks.SUBMIT_LOCK, wait=True):
        rundir.atomic_write_json(settings.root / STUDY_FILE, {"name": settings.name, **settings.fixed()})
        optuna.create_study(study_name=settings.name, storage=settings.optuna_storage(), direction="maximize",
                            load_if_exists=True)
        optuna_study = settings.load(request.pruner)
        tracker = Tracker.open(settings)
        with locks.hold(settings.root / ASK_LOCK, wait=True):
            recover_lost(optuna_study, settings, tracker)
        finished, running = trial_counts(optuna_study)
        count = min(request.workers, request.trials - finished - running)
        print(f"study {settings.name} in {settings.root}: {finished} of {request.trials} trial(s) finished, {running} "
              f"running; starting {max(count, 0)} worker(s) ({request.executor})")
        if count > 0:
            folder = executors.job_folder(settings.root)
            job_ids = backend.start_workers(folder, TuneWorker(), (settings, request.trials, request.pruner, tracker),
                                            count, f"iris-tune-{settings.name}")
            if job_ids:
                jobs.record(settings.root, backend.name, folder, dict.fromkeys(job_ids, []))
    reached = wait(optuna_study, settings, request.trials)
    tracker.close(optuna_study, reached)
    print_summary(optuna_study, request.trials)
    if not reached:
        print(f"iris-bench: study {settings.name} has fewer than {request.trials} finished trials and no live worker: "
              f"rerun the same command to resume it", file=sys.stderr)
    return 0 if reached else 1


def wait(optuna_study: optuna.Study, settings: StudySettings, trials: int) -> bool:
    """Follow the finished trials until there are enough or no worker is alive; whether there are."""
    def poll() -> Snapshot:
        finished, running = trial_counts(optuna_study)
        summary = f"{running} running"
        return Snapshot(finished, trials, summary, f"{settings.name}: trials {finished}/{trials} finished, {summary}",
                        finished >= trials or not jobs.alive_job_ids(jobs.load(settings.root)))

    return follow(settings.name, "trial", poll).done >= trials


def cancel(runs_root: Path, name: str) -> tuple[list[str], list[str]]:
    """Stop the study's live workers and wait until they are gone (returns those stopped, those still alive);
    their running trials are recovered by the next run."""
    return jobs.cancel(load_study_settings(runs_root, name).root)
