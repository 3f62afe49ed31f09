"""The methods a report compares, in order: the campaigns (each named after it, or its label), then score files,
then baselines."""

from __future__ import annotations

from pathlib import Path

from analysis.rundir_source import read_campaign
from analysis.method import Method
from analysis.mlflow_source import read_mlflow_campaign
from analysis.published import baseline_names, load_baseline
from analysis.scorefiles import read_score_file
from iris.errors import ConfigError


def campaign_label(spec: str) -> tuple[str, str]:
    """`NAME` or `NAME=LABEL` -> (campaign, the method's name in the report)."""
    campaign, _, label = spec.partition("=")
    if not campaign.strip() or (_ and not label.strip()):
        raise ConfigError(f"--campaign {spec!r}: expected NAME or NAME=LABEL")
    return campaign.strip(), (label or campaign).strip()


def load_methods(campaigns: list[str] = (), runs_root: Path = Path("runs"), tracking_uri: str | None = None,
                 score_files: list[Path] = (), baselines: str = "all") -> list[Method]:
    """Campaigns are read from their run directories, or from MLflow when `tracking_uri` is given."""
    if tracking_uri and not campaigns:
        raise ConfigError("--tracking-uri reads a campaign: name it with --campaign")
    names = baseline_names(baselines)  # check the cheap argument first
    methods = []
    for campaign, label in map(campaign_label, campaigns):
        methods.append(read_mlflow_campaign(tracking_uri, campaign, label) if tracking_uri
                       else read_campaign(runs_root, campaign, label))
    for path in score_files:
        methods += read_score_file(path)
    return methods + [load_baseline(name) for name in names]
