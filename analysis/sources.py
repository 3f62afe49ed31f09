"""The methods a report compares, in order: the campaign (named after it), then score files, then baselines."""

from __future__ import annotations

from pathlib import Path

from analysis.campaign import read_campaign
from analysis.method import Method
from analysis.mlflow_source import read_mlflow_campaign
from analysis.published import baseline_names, load_baseline
from analysis.scorefiles import read_score_file
from iris.errors import ConfigError


def load_methods(campaign: str | None = None, runs_root: Path = Path("runs"), tracking_uri: str | None = None,
                 score_files: list[Path] = (), baselines: str = "all") -> list[Method]:
    """A campaign is read from its run directories, or from MLflow when `tracking_uri` is given."""
    if tracking_uri and not campaign:
        raise ConfigError("--tracking-uri reads a campaign: name it with --campaign")
    names = baseline_names(baselines)  # check the cheap argument first
    methods = []
    if campaign and tracking_uri:
        methods.append(read_mlflow_campaign(tracking_uri, campaign))
    elif campaign:
        methods.append(read_campaign(runs_root, campaign))
    for path in score_files:
        methods += read_score_file(path)
    return methods + [load_baseline(name) for name in names]
