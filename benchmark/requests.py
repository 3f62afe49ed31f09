"""What a campaign (`run`) and a study (`tune`) both check before anything is written or submitted."""

from __future__ import annotations

from benchmark import executors
from iris.config import Config, resolve
from iris.errors import ConfigError


def at_least_one(flag: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{flag} must be 1 or more, got {value}")


def check_jobs(preset: str, overrides: list[str], game: str, backend: executors.Backend) -> Config:
    """The config the jobs will train, checked with what every job would need, once here rather than in 130 jobs
    failing alike: the LPIPS weights, and the device where the jobs run on this machine (a cluster's login node
    often has no GPU)."""
    from iris.api import check_runnable  # torch: imported only when a plan is made

    cfg = resolve(preset, overrides, game)
    check_runnable(cfg, device=backend.runs_here)
    return cfg
