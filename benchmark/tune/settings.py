"""A study's settings: what it keeps for life (study.json) and where Optuna stores it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import optuna

from iris import rundir
from iris.errors import ConfigError

STUDY_FILE = "study.json"
JOURNAL = "study.journal"
PRUNERS = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner,
           "none": optuna.pruners.NopPruner}
FIXED = ("preset", "overrides", "games", "seeds", "space", "storage")  # what a study keeps for life


@dataclass(frozen=True)
class StudySettings:
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


def load_study_settings(runs_root: Path, name: str) -> StudySettings:
    root = Path(runs_root) / name
    data = rundir.read_json(root / STUDY_FILE)
    if data is None:
        found = sorted(p.parent.name for p in Path(runs_root).glob(f"*/{STUDY_FILE}"))
        raise ConfigError(f"no study {name!r} in {runs_root}; existing: {', '.join(found) or 'none'}")
    return StudySettings(name, root, **{k: data[k] for k in FIXED})
