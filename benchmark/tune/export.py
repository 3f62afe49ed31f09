"""A study's results: the summary, the best trial, and the best trial as a preset file for --preset."""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from benchmark.tune.settings import StudySettings, load_study_settings
from benchmark.tune.worker import trial_counts
from iris.config import parse_value, resolve
from iris.errors import ConfigError


def print_summary(optuna_study: optuna.Study, trials: int) -> None:
    states = [t.state.name.lower() for t in optuna_study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    print(f"study {optuna_study.study_name}: {trial_counts(optuna_study)[0]} of {trials} trial(s) finished ({counts})")
    if optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        print_best(optuna_study.best_trial)


def print_best(trial: optuna.trial.FrozenTrial) -> None:
    print(f"best trial {trial.number}: objective {trial.value:.4f}")
    for key, value in trial.params.items():
        print(f"  {key} = {value}")


def best(runs_root: Path, name: str, export: Path | None) -> None:
    """`tune --best`: print the best trial; with `export`, write it as a preset file for --preset."""
    settings = load_study_settings(runs_root, name)
    optuna_study = settings.load()
    if not optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ConfigError(f"study {name!r} has no complete trial yet")
    print_best(optuna_study.best_trial)
    if export is not None:
        export.parent.mkdir(parents=True, exist_ok=True)
        export.write_text(yaml.safe_dump(preset_of(settings, optuna_study.best_trial.params), sort_keys=False))
        print(f"wrote {export}: train it with --preset {export}")


def preset_of(settings: StudySettings, params: dict) -> dict:
    """{base, set}: the study's preset, its --set overrides, then the trial's values (load_preset's format)."""
    config = resolve(settings.preset)
    values = {}
    for item in settings.overrides:
        key, _, raw = item.partition("=")
        value = parse_value(config, key.strip(), raw.strip())
        values[key.strip()] = list(value) if isinstance(value, tuple) else value
    return {"base": settings.preset, "set": {**values, **params}}
