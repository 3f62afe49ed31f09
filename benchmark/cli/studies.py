"""`iris-bench tune`: an Optuna study of short training runs (benchmark/tune/)."""

from __future__ import annotations

from pathlib import Path

from benchmark.cli.common import add_config_args, add_executor_args, add_runs_root, say_cancelled
from iris.errors import ConfigError


def add_tune(sub) -> None:
    p = sub.add_parser("tune", help="an Optuna study of short training runs, by parallel workers; rerun to resume")
    p.add_argument("--study", required=True, help="study name, its folder under --runs-root")
    p.add_argument("--games", help="all (the 26 Atari 100k games) or a comma list, e.g. Pong,Catch")
    p.add_argument("--seeds", type=int, default=1, help="runs per game in each trial (default: 1)")
    p.add_argument("--trials", type=int, help="finished trials (complete, pruned or failed) the study should have")
    p.add_argument("--workers", type=int, default=1, help="workers running trials in parallel (default: 1)")
    add_executor_args(p)
    add_config_args(p, game=False)
    p.add_argument("--space", default=None, help="search space YAML (default: benchmark/spaces/example.yaml)")
    p.add_argument("--pruner", default="median", help="median (default), hyperband or none")
    p.add_argument("--storage", help="Optuna storage URL (default: the journal file <runs-root>/<study>/study.journal)")
    p.add_argument("--best", action="store_true", help="print the best trial instead of running the study")
    p.add_argument("--export", type=Path, metavar="PRESET.yaml", help="with --best: write it as a preset file")
    p.add_argument("--cancel", action="store_true", help="stop the study's workers; rerun to resume")
    add_runs_root(p)
    p.set_defaults(func=run_tune)


def run_tune(args) -> int:
    from benchmark import launch, search_space, tune
    from iris.games import resolve_games

    if args.export is not None and not args.best:
        raise ConfigError("--export needs --best")
    if args.best:
        tune.best(args.runs_root, args.study, args.export)
        return 0
    if args.cancel:
        return say_cancelled(f"study {args.study}", *tune.cancel(args.runs_root, args.study), "iris-bench tune")
    if args.games is None or args.trials is None:
        raise ConfigError("tune needs --games and --trials (or --best, or --cancel)")
    request = tune.Request(
        study=args.study, games=resolve_games(args.games), seeds=launch.seeds(args.seeds, 0), trials=args.trials,
        workers=args.workers, executor=args.executor, profile=args.profile, preset=args.preset,
        overrides=args.overrides, space=args.space or str(search_space.EXAMPLE), pruner=args.pruner,
        storage=args.storage, runs_root=args.runs_root,
    )
    return tune.run(request)
