"""The `iris-bench` command: parses arguments and delegates. Each subcommand is one `add_*` function."""

from __future__ import annotations

import argparse
import json
import sys

from iris.config import ConfigError, resolve


def add_config_args(p: argparse.ArgumentParser, game: bool = True) -> None:
    p.add_argument("--preset", default="tiny", help="paper, tiny, catch, or a preset .yaml file (default: tiny)")
    if game:
        p.add_argument("--game", default=None, help="game name (default: the preset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value; repeatable")


def add_describe(sub) -> None:
    p = sub.add_parser("describe", help="print the resolved config and each component's parameter count")
    add_config_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_describe)


def run_describe(args) -> None:
    from iris.agent import parameter_counts

    cfg = resolve(args.preset, args.overrides, args.game)
    counts = parameter_counts(cfg)
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "config_hash": cfg.hash(), "parameters": counts}, indent=2))
        return
    for key, value in cfg.flat().items():
        print(f"{key:36s} {value}")
    print(f"{'config hash':36s} {cfg.hash()}")
    for name, n in counts.items():
        print(f"{'parameters.' + name:36s} {n:,}")


COMMANDS = [add_describe]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iris-bench", description="IRIS on Atari 100k: train, run campaigns, report.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as e:
        print(f"iris-bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
