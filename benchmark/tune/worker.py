"""What each worker of a study runs: recover lost trials, ask one, train it, tell the result, until enough."""

from __future__ import annotations

import os
import socket
import traceback

import optuna
import submitit
from optuna.trial import TrialState

from benchmark import locks, search_space
from benchmark.tune.objective import objective
from benchmark.tune.settings import STUDY_FILE, StudySettings
from benchmark.tune.tracker import Tracker
from benchmark.worker import job_label

ASK_LOCK = ".ask.lock"  # held while recovering lost trials and asking: no trial is seen before its worker is
WORKERS = "workers"
MAX_RETRIES = 3  # a trial that keeps killing its worker (out of memory, say) ends FAIL after this many retries


class TuneWorker(submitit.helpers.Checkpointable):
    """One worker's loop; on preemption or time limit submitit requeues it, and its lost trial is retried."""

    def __call__(self, settings: StudySettings, trials: int, pruner: str, tracker: Tracker, threads: int | None) -> str:
        if threads is not None:
            import torch

            # OMP_NUM_THREADS, when set, caps the job's share: oversubscribed cores slow every run many times over.
            torch.set_num_threads(min(threads, int(os.environ.get("OMP_NUM_THREADS") or threads)))
        worker = f"{socket.gethostname()}-{os.getpid()}"
        lock = settings.root / WORKERS / f"{worker}.lock"
        optuna_study = settings.load(pruner)
        params = search_space.parse(settings.space, STUDY_FILE)
        done = 0
        with locks.hold(lock, owner=job_label()):
            while (trial := next_trial(optuna_study, settings, trials, worker, tracker)) is not None:
                run_trial(optuna_study, trial, settings, params, tracker)
                done += 1
        lock.unlink(missing_ok=True)
        return f"worker {worker}: {done} trial(s)"


def next_trial(optuna_study: optuna.Study, settings: StudySettings, trials: int, worker: str, tracker: Tracker) -> optuna.Trial | None:
    """A new (or queued) trial owned by `worker`, or None once the study has enough trials finished or running."""
    with locks.hold(settings.root / ASK_LOCK, wait=True):
        recover_lost(optuna_study, settings, tracker)
        finished, running = trial_counts(optuna_study)
        if finished + running >= trials:
            return None
        trial = optuna_study.ask()
        trial.set_user_attr("worker", worker)
        return trial


def recover_lost(optuna_study: optuna.Study, settings: StudySettings, tracker: Tracker) -> None:
    """Mark FAIL every RUNNING trial whose worker is gone, and queue its params again. Call under ASK_LOCK."""
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker is not None and locks.is_held(settings.root / WORKERS / f"{worker}.lock"):
            continue
        frozen = optuna_study.tell(trial.number, state=TrialState.FAIL)
        retries = trial.user_attrs.get("retries", 0)
        if retries < MAX_RETRIES:
            optuna_study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, "retries": retries + 1})
        tracker.finish(frozen)
        print(f"study {settings.name}: trial {trial.number} lost its worker ({worker}): marked FAIL"
              f"{', its params queued again' if retries < MAX_RETRIES else f' after {MAX_RETRIES} retries'}")


def trial_counts(optuna_study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials. A lost trial that was queued again counts once, through its retry."""
    trials = optuna_study.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    finished = sum(t.state.is_finished() and t.number not in retried for t in trials)
    return finished, sum(t.state == TrialState.RUNNING for t in trials)


def run_trial(optuna_study: optuna.Study, trial: optuna.Trial, settings: StudySettings, params: list[search_space.Param],
              tracker: Tracker) -> None:
    sampled = {p.key: p.suggest(trial) for p in params}
    tracker.start(trial, sampled)
    try:
        value = objective(trial, settings, sampled)
    except optuna.TrialPruned:
        frozen = optuna_study.tell(trial, state=TrialState.PRUNED)
    except Exception:  # this trial's own failure (a bad combination, say): the worker goes on
        traceback.print_exc()
        frozen = optuna_study.tell(trial, state=TrialState.FAIL)
    else:
        frozen = optuna_study.tell(trial, value)
    tracker.finish(frozen)
    print(f"trial {frozen.number}: {frozen.state.name.lower()}"
          + (f", objective {frozen.value:.4f}" if frozen.state == TrialState.COMPLETE else ""), flush=True)
