"""Commands on campaigns, many runs through an executor: run, status, cancel, sync; and the shared tracking server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmark.cli.common import add_config_args, add_executor_args, add_runs_root, say_cancelled


def add_run(sub) -> None:
    p = sub.add_parser("run", help="train a campaign of games x seeds through submitit; rerun to resume (idempotent)")
    p.add_argument("--games", required=True, help="all (the 26 Atari 100k games) or a comma list, e.g. Pong,Breakout")
    p.add_argument("--seeds", type=int, required=True, help="runs per game")
    p.add_argument("--seed-offset", type=int, default=0, help="first seed (default: 0)")
    add_config_args(p, game=False)
    p.add_argument("--campaign", help="campaign name, its folder under --runs-root (default: the preset's name)")
    add_executor_args(p)
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
    from iris.games import resolve_games

    request = launch.Request(
        games=resolve_games(args.games), seeds=launch.seeds(args.seeds, args.seed_offset), preset=args.preset,
        overrides=args.overrides, campaign=args.campaign, executor=args.executor, profile=args.profile,
        max_parallel=args.max_parallel, runs_root=args.runs_root, extend=args.extend,
    )
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
    if args.wait or plan.backend.in_process:
        return launch.wait(plan.campaign, [r.key for r in plan.start + plan.resume + plan.skip])
    return 0


def add_status(sub) -> None:
    p = sub.add_parser("status", help="a table per campaign: each run's state, epoch, env steps, last test return, job")
    p.add_argument("--campaign", help="one campaign (default: every campaign under --runs-root)")
    p.add_argument("--json", action="store_true")
    add_runs_root(p)
    p.set_defaults(func=run_status)


def run_status(args) -> int:
    from benchmark import status

    found, damaged = status.survey(args.runs_root, args.campaign)
    if args.json:
        print(json.dumps([status.as_json(c, runs) for c, runs in found], indent=2))
    else:
        for c, runs in found:
            status.print_table(c, runs)
    for reason in damaged:
        print(f"iris-bench: error: {reason}", file=sys.stderr)
    return 2 if damaged else 0


def add_cancel(sub) -> None:
    p = sub.add_parser("cancel",
                       help="stop a campaign's jobs (scancel, or the local job processes); runs stay resumable")
    p.add_argument("--campaign", required=True)
    add_runs_root(p)
    p.set_defaults(func=run_cancel)


def run_cancel(args) -> int:
    from benchmark import campaign, launch

    (found,) = campaign.find(args.runs_root, args.campaign)
    return say_cancelled(f"campaign {found.name}", *launch.cancel(found), "iris-bench run")


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
