"""The `iris-bench` command: one module per command group, each `add_*` function one subcommand that parses its
arguments, calls one function and prints. runs: one training run (describe, envs, train, eval, dream); campaigns:
many runs through an executor (run, status, cancel, sync, tracking-server); studies: tune; reports: report, plan;
measures: perf."""

from __future__ import annotations

import argparse
import os
import sys

from benchmark.cli import campaigns, measures, reports, runs, studies
from iris.errors import ConfigError, DiskFull, NonFiniteLoss, RunStateError

COMMANDS = [runs.add_describe, runs.add_envs, runs.add_train, runs.add_eval, runs.add_dream, measures.add_perf,
            reports.add_report, reports.add_plan, campaigns.add_run, campaigns.add_status, campaigns.add_cancel,
            campaigns.add_sync, campaigns.add_tracking_server, studies.add_tune]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iris-bench", description="IRIS on Atari 100k: train, run campaigns, report.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ConfigError, DiskFull, NonFiniteLoss, RunStateError) as e:
        print(f"iris-bench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`iris-bench describe | head -1`): nothing left to tell
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
