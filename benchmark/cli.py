"""The `iris-bench` command: parses arguments and delegates. Each subcommand is one `add_*` function."""

from __future__ import annotations

import argparse
import json
import os
import sys

from iris.config import resolve
from iris.errors import ConfigError, DiskFull, NonFiniteLoss, RunStateError


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


def add_envs(sub) -> None:
    p = sub.add_parser("envs", help="build each game (train and test env), step it with random actions, report")
    p.add_argument("--games", default="all", help="all (the 26 Atari 100k games) or a comma list, e.g. Pong,Catch")
    p.add_argument("--steps", type=int, default=1000, help="random steps per env (default: 1000)")
    p.set_defaults(func=run_envs)


def run_envs(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from benchmark.perf import env_steps_per_second
    from iris.config import EnvConfig
    from iris.envs import make_env, resolve_games

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


def add_perf(sub) -> None:
    p = sub.add_parser("perf", help="measure training speed (optimised vs reference mode), or the store or campaign figures")
    add_config_args(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--steps", type=int, default=5, help="timed steps per component (default: 5)")
    p.add_argument("--store", action="store_true", help="instead: episode store memory for 100k frames, write and sampling times")
    p.add_argument("--campaign", action="store_true",
                   help="instead: plan + submit a 26 x 5 campaign (jobs cancelled at once) and `status` on it")
    p.add_argument("--precision", action="store_true",
                   help="instead: bf16 autocast against fp32, each component's loss and --steps training steps from the "
                        "same weights on the same batches")
    p.add_argument("--plot", help="with --precision: write the loss curves side by side to this PNG")
    p.add_argument("--tracker", action="store_true",
                   help="instead: wall time of a small Catch campaign with a healthy and with a dead MLflow server")
    p.add_argument("--executor", default="local", help="with --campaign: local (default) or slurm")
    p.add_argument("--profile", help="with --campaign --executor slurm: the SLURM profile")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_perf)


def run_perf(args) -> None:
    from benchmark.perf import print_rows

    if args.store:
        from benchmark.perf import store_memory_benchmark

        print_rows(store_memory_benchmark(), args.json)
        return
    if args.tracker:
        from benchmark.tracker_timing import dead_server_cost

        print_rows(dead_server_cost(), args.json)
        return
    if args.campaign:
        from benchmark.campaign_timing import campaign_timings

        print_rows(campaign_timings(args.executor, args.profile), args.json)
        return
    if args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    if args.precision:
        from benchmark.precision import loss_curves, plot_curves, precision_rows

        curves = loss_curves(args.preset, args.game, [*args.overrides, f"training.device={args.device}"], args.steps)
        if args.plot:
            plot_curves(curves, args.plot)
        print_rows(precision_rows(curves), args.json, f"preset {args.preset}, {args.steps} steps per component")
        return
    from benchmark.speed import training_speed

    rows, setting = training_speed(args.preset, args.game, args.overrides, args.device, args.steps)
    print_rows(rows, args.json, setting)


def comma_list(value: str) -> list[str]:
    """An option value `A,B` as its items, for options that accumulate (action="extend")."""
    return [item.strip() for item in value.split(",") if item.strip()]


def add_report(sub) -> None:
    from pathlib import Path

    p = sub.add_parser("report", help="a paper's tables and figures: campaigns, score files and published Atari 100k "
                                      "results")
    p.add_argument("--campaign", dest="campaigns", action="extend", type=comma_list, default=[],
                   metavar="NAME[=LABEL]", help="campaign(s) to report, each a method named after it or LABEL: its "
                                                "finished runs under --runs-root (or in MLflow with --tracking-uri); "
                                                "repeat it or give A,B")
    p.add_argument("--runs-root", type=Path, default=Path("runs"), help="where campaigns live (default: runs)")
    p.add_argument("--tracking-uri", help="read the campaigns from this MLflow store (e.g. sqlite:///mlflow.db) "
                                          "instead")
    p.add_argument("--scores", nargs="+", action="extend", type=Path, default=[], metavar="FILE",
                   help="score files: .json {game: [score per run]} (the method is the file name) "
                        "or .csv with columns method,game,seed,score (a report's runs.csv); repeatable")
    p.add_argument("--baselines", action="extend", type=comma_list, default=None,
                   help="published methods: all (the default), none, or a comma list like IRIS,DIAMOND; repeatable")
    p.add_argument("--games", action="extend", type=comma_list, default=None,
                   help="all (every game of any method; the default) or a comma list; repeatable")
    p.add_argument("--drop-missing", action="store_true", help="leave out games some method lacks (the report names them)")
    p.add_argument("--reps", type=int, default=50_000, help="bootstrap repetitions (default: 50000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--timing", action="store_true", help="print where the time goes")
    p.add_argument("--out", type=Path, required=True, help="directory for report.md, tables, figures and JSON")

    def run_report(args) -> None:
        from analysis.timing import Timings

        timings = Timings()
        with timings.phase("total"):
            with timings.phase("imports"):
                from analysis.report import write_report
                from analysis.sources import load_methods
            with timings.phase("loading"):
                methods = load_methods(args.campaigns, args.runs_root, args.tracking_uri, args.scores,
                                       ",".join(args.baselines or ["all"]))
            write_report(args.out, methods, ",".join(args.games or ["all"]), args.drop_missing, args.reps, args.seed,
                         timings)
        print(f"report: {args.out / 'report.md'}")
        if args.timing:
            print(timings.table())

    p.set_defaults(func=run_report)


def add_plan(sub) -> None:
    from pathlib import Path

    p = sub.add_parser("plan", help="before a campaign: expected interval widths, power against a baseline and "
                                    "GPU-hours for each number of seeds")
    p.add_argument("--games", default="all", help="all (the 26 Atari 100k games) or a comma list")
    p.add_argument("--seeds", type=comma_list, default=["3", "5", "10"], help="numbers of seeds (default: 3,5,10)")
    p.add_argument("--preset", default="paper", help="the campaign's preset, for its GPU-hours without a timed "
                                                     "pilot (default: paper)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--pilot", help="a campaign of yours (under --runs-root) whose runs stand for the spread")
    source.add_argument("--like", default="IRIS", help="or a published method's runs (default: IRIS)")
    p.add_argument("--baseline", help="a published method: the power of the probability of improvement over it")
    p.add_argument("--effect", type=float, help="with --baseline: the true P(campaign > baseline) to detect "
                                                "(default: the pilot's own)")
    p.add_argument("--sims", type=int, default=200, help="simulated campaigns per number of seeds (default: 200)")
    p.add_argument("--reps", type=int, default=1000,
                   help="bootstrap repetitions per simulated campaign (default: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="also write plan.md, plan.json and the figure plan.png/.pdf here")
    add_runs_root(p)
    p.set_defaults(func=run_plan)


def run_plan(args) -> None:
    import dataclasses
    import math

    from analysis.campaign import read_campaign
    from analysis.costs import unit
    from analysis.normalise import references
    from analysis.plan import plan, plan_table
    from analysis.published import baseline_names, load_baseline
    from analysis.tables import to_markdown
    from benchmark.launch import PAPER_EPOCHS, PAPER_RUN_GPU_HOURS

    try:
        seed_counts = [int(n) for n in args.seeds]
    except ValueError:
        raise ConfigError(f"--seeds: a comma list of numbers like 3,5,10, got {','.join(args.seeds)}") from None
    def one_baseline(option: str, name: str):
        names = baseline_names(name)
        if len(names) != 1:
            raise ConfigError(f"{option} names one published method, got {name!r}")
        return load_baseline(names[0])

    pilot = read_campaign(args.runs_root, args.pilot) if args.pilot else one_baseline("--like", args.like)
    baseline = one_baseline("--baseline", args.baseline) if args.baseline else None
    if args.effect is not None and baseline is None:
        raise ConfigError("--effect is the difference to detect against a --baseline: name one")
    games = sorted(references()) if args.games == "all" else comma_list(args.games)
    timed = [c.hours for c in pilot.costs if math.isfinite(c.hours)]
    if timed:
        hours, per_unit = sum(timed) / len(timed), unit(pilot)
        basis = f"{hours:.3g} {per_unit} per run, measured on the pilot's {len(timed)} runs"
    else:
        epochs = resolve(args.preset, [], games[0]).training.epochs
        hours, per_unit = PAPER_RUN_GPU_HOURS * epochs / PAPER_EPOCHS, "GPU-hours"
        basis = (f"{hours:.3g} GPU-hours per run: {epochs} epochs of preset {args.preset} at the paper preset's "
                 f"measured {PAPER_RUN_GPU_HOURS} h per {PAPER_EPOCHS} epochs on an H200")
    rows = plan(pilot, games, seed_counts, hours, baseline, args.effect, args.sims, args.reps, args.seed)
    effect = f"P = {args.effect}" if args.effect is not None else "the pilot's own"
    lines = [f"Plan: {len(games)} games, runs like {pilot.name} ({pilot.source}), {args.sims} simulated campaigns "
             f"x {args.reps} bootstrap repetitions each, seed {args.seed}.", f"Cost: {basis}."]
    if baseline is not None:
        lines.append(f"Power: against {baseline.name}'s published runs, true difference {effect}.")
    text = "\n".join(lines) + "\n\n" + to_markdown(plan_table(rows, per_unit, baseline and baseline.name)) + "\n"
    print(text, end="")
    if args.out:
        from analysis import figures

        args.out.mkdir(parents=True, exist_ok=True)
        png = figures.plot_plan(rows, per_unit, args.out)
        (args.out / "plan.md").write_text(f"# Plan\n\n{text}\n![plan]({png})\n")
        (args.out / "plan.json").write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n")
        print(f"plan: {args.out / 'plan.md'}")


def add_runs_root(p: argparse.ArgumentParser) -> None:
    from pathlib import Path

    p.add_argument("--runs-root", type=Path, default=Path("runs"), help="where campaigns live (default: runs)")


def add_run(sub) -> None:
    p = sub.add_parser("run", help="train a campaign of games x seeds through submitit; rerun to resume (idempotent)")
    p.add_argument("--games", required=True, help="all (the 26 Atari 100k games) or a comma list, e.g. Pong,Breakout")
    p.add_argument("--seeds", type=int, required=True, help="runs per game")
    p.add_argument("--seed-offset", type=int, default=0, help="first seed (default: 0)")
    add_config_args(p, game=False)
    p.add_argument("--campaign", help="campaign name, its folder under --runs-root (default: the preset's name)")
    p.add_argument("--executor", default="local",
                   help="local (default: jobs on this machine), slurm, or debug (in-process)")
    p.add_argument("--profile", help="SLURM profile for --executor slurm, e.g. slurm/profiles/example.yaml")
    p.add_argument("--max-parallel", type=int, help="runs training at once (default: local one per GPU, or 1 without "
                                                      "GPUs; slurm the profile's array_parallelism)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (start, resume, skip) and a GPU-hour estimate")
    p.add_argument("--wait", action="store_true", help="block with a progress bar until the runs end")
    p.add_argument("--extend", action="store_true",
                   help="allow a larger training.epochs for an existing campaign: its runs train on from their checkpoints")
    add_runs_root(p)
    p.set_defaults(func=run_run)


def run_run(args) -> int:
    from benchmark import launch
    from iris.envs import resolve_games

    request = launch.Request(resolve_games(args.games), launch.seeds(args.seeds, args.seed_offset), args.preset,
                             args.overrides, args.campaign, args.executor, args.profile, args.max_parallel,
                             args.runs_root, args.extend)
    if args.dry_run:
        launch.print_plan(launch.make_plan(request))
        return 0
    plan = launch.submit(request)
    launch.print_plan(plan)
    if plan.todo:
        print(f"submitted {len(plan.todo)} run(s) to the {args.executor} executor; "
              f"follow with: iris-bench status --campaign {plan.campaign.name} --runs-root {args.runs_root}")
    else:
        print("nothing to submit: every run is finished, running or queued")
    if args.wait or args.executor == "debug":
        return launch.wait(plan.campaign, [r.key for r in plan.start + plan.resume + plan.skip])
    return 0


def add_status(sub) -> None:
    p = sub.add_parser("status", help="a table per campaign: each run's state, epoch, env steps, last test return, job")
    p.add_argument("--campaign", help="one campaign (default: every campaign under --runs-root)")
    p.add_argument("--json", action="store_true")
    add_runs_root(p)
    p.set_defaults(func=run_status)


def run_status(args) -> None:
    from benchmark import campaign, status

    found = [(c, status.views(c)) for c in campaign.find(args.runs_root, args.campaign)]
    if args.json:
        print(json.dumps([status.as_json(c, runs) for c, runs in found], indent=2))
        return
    for c, runs in found:
        status.print_table(c, runs)


def add_cancel(sub) -> None:
    p = sub.add_parser("cancel",
                       help="stop a campaign's jobs (scancel, or the local job processes); runs stay resumable")
    p.add_argument("--campaign", required=True)
    add_runs_root(p)
    p.set_defaults(func=run_cancel)


def run_cancel(args) -> None:
    from benchmark import campaign, launch

    (found,) = campaign.find(args.runs_root, args.campaign)
    stopped = launch.cancel(found)
    print(f"campaign {found.name}: cancelled {len(stopped)} job(s){': ' + ' '.join(stopped) if stopped else ''}; "
          f"rerun the same `iris-bench run` to resume")


def add_sync(sub) -> None:
    p = sub.add_parser("sync", help="replay run directories into MLflow (after the store was unreachable); idempotent")
    p.add_argument("--campaign", help="one campaign (default: every campaign under --runs-root)")
    add_runs_root(p)
    p.set_defaults(func=run_sync)


def run_sync(args) -> int:
    from benchmark import campaign, tracking

    errors = 0
    for c in campaign.find(args.runs_root, args.campaign):
        outcome = tracking.sync_campaign(c.root, c.name, [c.run_dir(k) for k in c.runs])
        for run_dir, what in outcome.items():
            print(f"{c.name} {run_dir.relative_to(c.root)}: {what}")
            errors += what.startswith("error:")
    return 1 if errors else 0


def add_tracking_server(sub) -> None:
    from pathlib import Path

    p = sub.add_parser("tracking-server", help="start a shared MLflow server with MLflow's basic-auth (users and "
                                               "passwords) on a store folder; prints what jobs need")
    p.add_argument("--root", type=Path, required=True, help="folder of the server's store, artifacts and users")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine "
                                                        "only; 0.0.0.0: the network, see README)")
    p.add_argument("--port", type=int, default=5000, help="default: 5000")
    p.add_argument("--workers", type=int, default=4, help="server processes (default: 4)")
    p.add_argument("--default-permission", default="NO_PERMISSIONS",
                   help="what a user may do on an experiment no one granted them: NO_PERMISSIONS (default), "
                        "READ, EDIT or MANAGE")

    def run_tracking_server(args) -> None:
        from benchmark.tracking_server import serve

        serve(args.root, args.host, args.port, args.workers, args.default_permission)

    p.set_defaults(func=run_tracking_server)


def add_tune(sub) -> None:
    from pathlib import Path

    p = sub.add_parser("tune", help="an Optuna study of short training runs, by parallel workers; rerun to resume")
    p.add_argument("--study", required=True, help="study name, its folder under --runs-root")
    p.add_argument("--games", help="all (the 26 Atari 100k games) or a comma list, e.g. Pong,Catch")
    p.add_argument("--seeds", type=int, default=1, help="runs per game in each trial (default: 1)")
    p.add_argument("--trials", type=int, help="finished trials (complete, pruned or failed) the study should have")
    p.add_argument("--workers", type=int, default=1, help="workers running trials in parallel (default: 1)")
    p.add_argument("--executor", default="local",
                   help="local (default: jobs on this machine), slurm, or debug (in-process)")
    p.add_argument("--profile", help="SLURM profile for --executor slurm, e.g. slurm/profiles/example.yaml")
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
    from iris.envs import resolve_games

    if args.export is not None and not args.best:
        raise ConfigError("--export needs --best")
    if args.best:
        tune.best(args.runs_root, args.study, args.export)
        return 0
    if args.cancel:
        stopped = tune.cancel(args.runs_root, args.study)
        print(f"study {args.study}: cancelled {len(stopped)} job(s); rerun the same `iris-bench tune` to resume")
        return 0
    if args.games is None or args.trials is None:
        raise ConfigError("tune needs --games and --trials (or --best, or --cancel)")
    request = tune.Request(args.study, resolve_games(args.games), launch.seeds(args.seeds, 0), args.trials,
                           args.workers, args.executor, args.profile, args.preset, args.overrides,
                           args.space or str(search_space.EXAMPLE), args.pruner, args.storage, args.runs_root)
    return tune.run(request)

def add_train(sub) -> None:
    from pathlib import Path

    p = sub.add_parser("train", help="train one IRIS run in a run directory; the same command resumes it")
    add_config_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, help="the run directory, created if missing (default: runs/GAME-PRESET-seedS)")
    p.add_argument("--extend", action="store_true",
                   help="allow a larger training.epochs for an existing run: it trains on from its last checkpoint")
    p.set_defaults(func=run_train)


def run_train(args) -> None:
    from pathlib import Path

    from benchmark import locks
    from iris import rundir
    from iris.envs import check_game
    from iris.trainer import check_runnable, train

    cfg = resolve(args.preset, args.overrides, args.game)
    cfg.env.game = check_game(cfg.env.game)
    check_runnable(cfg)  # before anything is written: a refused command leaves no run directory behind
    run_dir = args.run_dir or Path("runs") / f"{cfg.env.game}-{Path(args.preset).stem}-seed{args.seed}"
    lock = run_dir / locks.RUN_LOCK
    with locks.hold(lock, owner=f"iris-bench train (pid {os.getpid()})") as got:
        if not got:  # a campaign job or another train command: two trainers would write every epoch twice
            raise ConfigError(f"{run_dir} is being trained by {locks.owner(lock) or 'another process'}; wait for it, "
                              "or stop it (iris-bench cancel for a campaign job) and run this again to resume")
        rundir.write_spec(run_dir, cfg, args.seed, args.preset, args.overrides, args.extend)
        print(f"run directory: {run_dir}")
        train(run_dir)
    print_learning_curve(run_dir)


def print_learning_curve(run_dir) -> None:
    """The periodic test returns against env steps and training time (the trainer has printed the final evaluation)."""
    from rich.console import Console
    from rich.table import Table

    from iris import rundir

    rows = [r for r in rundir.read_metrics(run_dir) if "test/return_mean" in r]
    table = Table("epoch", "env steps", "minutes", "test return", title="learning curve")
    for r in rows:
        table.add_row(str(r["epoch"]), f"{r['env_steps']:,}", f"{r['time'] / 60:.1f}", f"{r['test/return_mean']:.3f}")
    Console().print(table)
    if rows:
        best = max(rows, key=lambda r: r["test/return_mean"])
        print(f"best test return {best['test/return_mean']:.3f} at epoch {best['epoch']} "
              f"({best['env_steps']:,} env steps, {best['time'] / 60:.1f} min)")


def add_eval(sub) -> None:
    from pathlib import Path

    p = sub.add_parser("eval", help="evaluate a run's latest checkpoint on test episodes")
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="seed of the test environments")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)


def run_eval(args) -> None:
    import numpy as np

    from iris.collect import evaluate
    from iris.rundir import summarize_eval
    from iris.trainer import load_agent

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {args.episodes}")
    agent, cfg, info = load_agent(args.run_dir, args.device)
    returns, lengths = evaluate(agent, cfg.env, args.episodes, cfg.training.eval_temperature, args.seed, info["device"])
    result = {"game": cfg.env.game, "epoch": info["epoch"], "length_mean": float(np.mean(lengths)),
              **summarize_eval(returns, lengths, info["env_steps"])}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{cfg.env.game} after epoch {info['epoch']} ({info['env_steps']} env steps), {len(returns)} episodes: "
              f"return {result['mean']:.3f} +- {result['std']:.3f} (min {result['min']:g}, max {result['max']:g}), "
              f"length {result['length_mean']:.1f}")


def add_dream(sub) -> None:
    from pathlib import Path

    p = sub.add_parser("dream", help="GIF of a real episode beside the world model's imagined continuation")
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("dream.gif"))
    p.add_argument("--episode", type=int, default=-1, help="index of the stored episode (default: the latest)")
    p.add_argument("--steps", type=int, default=40, help="imagined steps (default: 40)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_dream)


def run_dream(args) -> None:
    from iris.dream import write_dream
    from iris.episodes import EpisodeStore
    from iris.trainer import load_agent

    agent, _, info = load_agent(args.run_dir)
    episodes = EpisodeStore(args.run_dir / "episodes").episodes + info["in_progress"]  # finished ones first
    if not -len(episodes) <= args.episode < len(episodes):
        raise ConfigError(f"--episode {args.episode} is out of range: the run has {len(episodes)} episodes")
    png = args.out.with_name(args.out.stem + "_reconstructions.png")
    write_dream(agent, episodes[args.episode], args.out, png, steps=args.steps, seed=args.seed)
    print(f"wrote {args.out} (real | reconstructed | imagined) and {png}")


COMMANDS = [add_describe, add_envs, add_train, add_eval, add_dream, add_perf, add_report, add_plan, add_run,
            add_status, add_cancel, add_sync, add_tracking_server, add_tune]


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


if __name__ == "__main__":
    sys.exit(main())
