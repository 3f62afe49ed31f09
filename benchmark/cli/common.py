"""Arguments several commands share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iris.config import PRESETS


def add_config_args(p: argparse.ArgumentParser, game: bool = True) -> None:
    p.add_argument("--preset", default="tiny", help=f"{', '.join(PRESETS)}, or a preset .yaml file (default: tiny)")
    if game:
        p.add_argument("--game", default=None, help="game name (default: the preset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")


def add_runs_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-root", type=Path, default=Path("runs"), help="where campaigns live (default: runs)")


def add_executor_args(p: argparse.ArgumentParser) -> None:
    from benchmark.executors import BACKENDS

    p.add_argument("--executor", default="local",
                   help=f"{', '.join(BACKENDS)} (default: local, jobs on this machine; debug: in this process)")
    p.add_argument("--profile", help="SLURM profile for --executor slurm, e.g. slurm/profiles/example.yaml")


def comma_list(value: str) -> list[str]:
    """An option value `A,B` as its items, for options that accumulate (action="extend")."""
    return [item.strip() for item in value.split(",") if item.strip()]


def say_cancelled(what: str, stopped: list[str], alive: list[str], rerun: str) -> int:
    """`cancel`'s lines: the jobs stopped, and (exit 1) any still alive at the deadline."""
    print(f"{what}: cancelled {len(stopped)} job(s){': ' + ' '.join(stopped) if stopped else ''}; "
          f"rerun the same `{rerun}` to resume")
    if alive:
        print(f"iris-bench: error: job(s) {' '.join(alive)} still alive after repeated signals; rerun cancel, "
              f"or stop them by hand", file=sys.stderr)
        return 1
    return 0
