"""Commands on one training run: describe a config, check the games, train, evaluate, dream."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmark.cli.common import add_config_args
from iris.config import resolve
from iris.errors import ConfigError
from iris.vocabulary import ENV_STEPS, TEST_RETURN


def add_describe(sub) -> None:
    p = sub.add_parser("describe", help="print the resolved config and each component's parameter count")
    add_config_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_describe)


def run_describe(args) -> None:
    from iris import api

    cfg = resolve(args.preset, args.overrides, args.game)
    described = api.describe(cfg)
    if args.json:
        print(json.dumps(described, indent=2))
        return
    for key, value in cfg.flat().items():
        print(f"{key:36s} {value}")
    print(f"{'config hash':36s} {described['config_hash']}")
    for name, n in described["parameters"].items():
        print(f"{'parameters.' + name:36s} {n:,}")


def add_envs(sub) -> None:
    p = sub.add_parser("envs", help="build each game (train and test env), step it with random actions, report")
    p.add_argument("--games", default="all", help="all (the 26 Atari 100k games) or a comma list, e.g. Pong,Catch")
    p.add_argument("--steps", type=int, default=1000, help="random steps per env (default: 1000)")
    p.set_defaults(func=run_envs)


def run_envs(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from benchmark.measure.env_speed import env_steps_per_second
    from iris.config import EnvConfig
    from iris.envs import make_env
    from iris.games import resolve_games

    if args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    console = Console()
    table = Table("game", "actions", "observation", "train steps/s", "test steps/s", "status")
    failures = 0
    for game in resolve_games(args.games):
        try:
            with console.status(f"stepping {game}"):
                cfg = EnvConfig(game=game)  # the paper's protocol
                train_env, test_env = make_env(cfg, train=True, seed=0), make_env(cfg, train=False, seed=0)
                rates = [env_steps_per_second(env, args.steps) for env in (train_env, test_env)]
            space = train_env.observation_space
            table.add_row(game, str(train_env.action_space.n), f"{'x'.join(map(str, space.shape))} {space.dtype}",
                          *(f"{r:,.0f}" for r in rates), "[green]ok")
        except Exception as e:  # report every game, then fail
            failures += 1
            table.add_row(game, "", "", "", "", f"[red]error: {type(e).__name__}: {e}")
    console.print(table)
    return 1 if failures else 0


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train one IRIS run in a run directory; the same command resumes it")
    add_config_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, help="the run directory, created if missing (default: runs/GAME-PRESET-seedS)")
    p.add_argument("--extend", action="store_true",
                   help="allow a larger training.epochs for an existing run: it trains on from its last checkpoint")
    p.set_defaults(func=run_train)


def run_train(args) -> None:
    from benchmark import locks
    from iris import api

    cfg = resolve(args.preset, args.overrides, args.game)
    api.check_runnable(cfg)  # before anything is written: a refused command leaves no run directory behind
    run_dir = args.run_dir or api.default_run_dir(Path("runs"), cfg, args.preset, args.seed)
    lock = run_dir / locks.RUN_LOCK
    with locks.hold(lock, owner=f"iris-bench train (pid {os.getpid()})") as got:
        if not got:  # a campaign job or another train command: two trainers would write every epoch twice
            raise ConfigError(f"{run_dir} is being trained by {locks.owner(lock) or 'another process'}; wait for it, "
                              "or stop it (iris-bench cancel for a campaign job) and run this again to resume")
        api.create_run(run_dir, cfg, args.seed, args.preset, args.overrides, args.extend)
        print(f"run directory: {run_dir}")
        api.train_run(run_dir)
    print_learning_curve(run_dir)


def print_learning_curve(run_dir: Path) -> None:
    """The periodic test returns against env steps and training time (the trainer has printed the final evaluation)."""
    from rich.console import Console
    from rich.table import Table

    from iris import rundir

    rows = [r for r in rundir.read_metrics(run_dir) if TEST_RETURN in r]
    table = Table("epoch", "env steps", "minutes", "test return", title="learning curve")
    for r in rows:
        table.add_row(str(r["epoch"]), f"{r[ENV_STEPS]:,}", f"{r['time'] / 60:.1f}", f"{r[TEST_RETURN]:.3f}")
    Console().print(table)
    if rows:
        best = max(rows, key=lambda r: r[TEST_RETURN])
        print(f"best test return {best[TEST_RETURN]:.3f} at epoch {best['epoch']} "
              f"({best[ENV_STEPS]:,} env steps, {best['time'] / 60:.1f} min)")


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a run's latest checkpoint on test episodes")
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="seed of the test environments")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)


def run_eval(args) -> None:
    from iris import api

    result = api.evaluate_run(args.run_dir, args.episodes, args.seed, args.device)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['game']} after epoch {result['epoch']} ({result['env_steps']} env steps), "
              f"{result['episodes']} episodes: return {result['mean']:.3f} +- {result['std']:.3f} "
              f"(min {result['min']:g}, max {result['max']:g}), length {result['length_mean']:.1f}")


def add_dream(sub) -> None:
    p = sub.add_parser("dream", help="GIF of a real episode beside the world model's imagined continuation")
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("dream.gif"))
    p.add_argument("--episode", type=int, default=-1, help="index of the stored episode (default: the latest)")
    p.add_argument("--steps", type=int, default=40, help="imagined steps (default: 40)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_dream)


def run_dream(args) -> None:
    from iris import api

    png = api.dream_run(args.run_dir, args.out, args.episode, args.steps, args.seed)
    print(f"wrote {args.out} (real | reconstructed | imagined) and {png}")
