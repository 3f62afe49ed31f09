"""A trial's objective: its runs trained one after another, the IQM of their final (normalised) scores, reported
after each evaluation so the pruner compares like with like."""

from __future__ import annotations

import functools

import numpy as np
import optuna

from benchmark.tune.settings import StudySettings
from analysis.normalise import score
from iris.api import create_run
from iris.config import resolve
from iris.vocabulary import ENV_STEPS, TEST_RETURN


def objective(trial: optuna.Trial, settings: StudySettings, sampled: dict) -> float:
    from iris.api import train_run  # torch: only in the worker

    overrides = settings.overrides + [f"{k}={v}" for k, v in sampled.items()]
    scores: list[float] = []
    steps = 0  # the trial's env steps before the current run
    for seed in settings.seeds:
        for game in settings.games:
            run_dir = settings.root / f"trial{trial.number}" / game / f"s{seed}"
            create_run(run_dir, resolve(settings.preset, overrides, game), seed, settings.preset, overrides)
            result = train_run(run_dir, on_epoch=functools.partial(report, trial, game, list(scores), steps))
            scores.append(float(score(game, np.asarray(result["mean"]))))
            steps += result["env_steps"]
    return iqm(scores)


def report(trial: optuna.Trial, game: str, scores: list[float], steps: int, row: dict) -> None:
    """The trainer's on_epoch callback: report the running objective after each evaluation, prune if told."""
    if TEST_RETURN not in row:
        return
    step = steps + row[ENV_STEPS]
    trial.report(iqm(scores + [float(score(game, np.asarray(row[TEST_RETURN])))]), step)
    if trial.should_prune():
        raise optuna.TrialPruned(f"pruned at env step {step} (epoch {row['epoch']} of {game})")


def iqm(scores: list[float]) -> float:
    from rliable.metrics import aggregate_iqm  # the analysis suite's IQM (25% trimmed mean)

    return float(aggregate_iqm(np.asarray(scores)))
