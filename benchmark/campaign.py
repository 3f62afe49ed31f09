"""A campaign: one config trained on games x seeds, laid out as

    <runs_root>/<campaign>/
      campaign.json         name, preset, overrides, config hash, the planned runs ("Pong/s0", ...)
      jobs.json             every submission and its job ids (benchmark/jobs.py)
      mlflow.db, mlartifacts/   the embedded MLflow store (benchmark/tracking.py)
      submitit/             job pickles and logs
      <game>/s<seed>/       one run directory each (iris/rundir.py)

A campaign's config never changes: planning it again with another preset or other overrides is refused
(name a new campaign instead). Planning it again with more games or seeds adds runs to it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from iris import api, rundir
from iris.config import Config, resolve
from iris.errors import ConfigError
from iris.vocabulary import CAMPAIGN_FILE

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class Campaign:
    name: str
    root: Path
    preset: str
    overrides: list[str]
    config_hash: str
    epochs: int  # training.epochs of every run
    runs: list[str] = field(default_factory=list)  # keys "Game/sSEED", in plan order
    history: list[dict] = field(default_factory=list)  # earlier configs, each extended to more epochs
    extending: bool = False  # this plan raises the epochs of the runs (materialize extends their specs)

    def run_dir(self, key: str) -> Path:
        return self.root / key

    def to_dict(self) -> dict:
        return {"name": self.name, "preset": self.preset, "overrides": self.overrides,
                "config_hash": self.config_hash, "epochs": self.epochs, "runs": self.runs, "history": self.history}


def run_key(game: str, seed: int) -> str:
    return f"{game}/s{seed}"


def default_name(preset: str) -> str:
    """The preset's name, or a preset file's stem (runs/tiny, runs/my_tuned)."""
    return Path(preset).stem if preset.endswith((".yaml", ".yml")) else preset


def campaign_config(preset: str, overrides: list[str]) -> Config:
    """The config every run shares (the game aside). --games picks games, never an override."""
    if any(item.partition("=")[0].strip() == "env.game" for item in overrides):
        raise ConfigError("--set env.game is not allowed in a campaign; choose games with --games")
    return resolve(preset, overrides)


def check_name(name: str, what: str) -> None:
    """A campaign's or a study's name: its folder under the runs root."""
    if not _NAME.match(name):
        raise ConfigError(f"bad {what} name {name!r}: use letters, digits, '.', '_' and '-'")


def plan(runs_root: Path, name: str, preset: str, overrides: list[str], games: list[str], seeds: list[int],
         extend: bool = False) -> Campaign:
    """The campaign with these runs added; writes nothing. Refuses a config change of an existing campaign, except,
    with extend, more training.epochs and nothing else (its runs then train on from their checkpoints)."""
    check_name(name, "campaign")
    config = campaign_config(preset, overrides)
    config_hash = config.hash()
    root = Path(runs_root) / name
    old = load(root)
    extended = False
    if old is not None and old.config_hash != config_hash:
        more_epochs = rundir.extended_epochs(campaign_config(old.preset, old.overrides).to_dict(), config.to_dict())
        if not (extend and more_epochs):
            hint = "give a new --campaign NAME to run this config" + (
                ", or add --extend to train its runs on to the new epoch count" if more_epochs else "")
            raise ConfigError(
                f"campaign {name!r} was planned with another config (preset {old.preset}, "
                f"--set {' '.join(old.overrides) or 'none'}, hash {old.config_hash}; now hash {config_hash}): {hint}"
            )
        extended = True
    runs = list(old.runs) if old is not None else []
    runs += [k for k in (run_key(g, s) for g in games for s in seeds) if k not in runs]
    if old is not None and not extended:
        preset, overrides = old.preset, old.overrides  # same config: keep the spelling it was planned with
    history = (old.history if old is not None else []) + (
        [{"config_hash": old.config_hash, "epochs": old.epochs, "overrides": old.overrides}] if extended else [])
    return Campaign(name, root, preset, list(overrides), config_hash, config.training.epochs, runs, history, extended)


def materialize(campaign: Campaign) -> None:
    """Write campaign.json and each run's spec.json (write_spec refuses a changed run)."""
    rundir.atomic_write_json(campaign.root / CAMPAIGN_FILE, {**campaign.to_dict(), "updated": time.time()})
    for key in campaign.runs:
        game, seed = split_key(key)
        config = resolve(campaign.preset, campaign.overrides, game)
        api.create_run(campaign.run_dir(key), config, seed, campaign.preset, campaign.overrides, campaign.extending)


def split_key(key: str) -> tuple[str, int]:
    game, _, seed = key.partition("/s")
    return game, int(seed)


def load(root: Path) -> Campaign | None:
    data = rundir.read_json(Path(root) / CAMPAIGN_FILE)
    if data is None:
        return None
    return Campaign(data["name"], Path(root), data["preset"], data["overrides"], data["config_hash"], data["epochs"],
                    data["runs"], data.get("history", []))


def find(runs_root: Path, name: str | None) -> list[Campaign]:
    """The named campaign, or every campaign under runs_root when no name is given."""
    runs_root = Path(runs_root)
    if name is not None:
        campaign = load(runs_root / name)
        if campaign is None:
            raise ConfigError(f"no campaign {name!r} in {runs_root}; existing: {', '.join(names(runs_root)) or 'none'}")
        return [campaign]
    return [load(runs_root / n) for n in existing(runs_root)]


def existing(runs_root: Path) -> list[str]:
    """The names of the campaigns under runs_root; a ConfigError if there is none."""
    found = names(runs_root)
    if not found:
        raise ConfigError(f"no campaign in {runs_root}; start one with `iris-bench run`")
    return found


def names(runs_root: Path) -> list[str]:
    return [p.parent.name for p in sorted(Path(runs_root).glob(f"*/{CAMPAIGN_FILE}"))]
