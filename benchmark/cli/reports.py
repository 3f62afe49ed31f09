"""`iris-bench report` and `iris-bench plan`: the analysis of finished runs, and of runs still to spend."""

from __future__ import annotations

from pathlib import Path

from benchmark.cli.common import add_runs_root, comma_list
from iris.config import resolve
from iris.errors import ConfigError


def add_report(sub) -> None:
    p = sub.add_parser("report", help="a paper's tables and figures: campaigns, score files and published Atari 100k "
                                      "results")
    p.add_argument("--campaign", dest="campaigns", action="extend", type=comma_list, default=[],
                   metavar="NAME[=LABEL]", help="campaign(s) to report, each a method named after it or LABEL: its "
                                                "finished runs under --runs-root (or in MLflow with --tracking-uri); "
                                                "repeat it or give A,B")
    add_runs_root(p)
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
                if args.tracking_uri:
                    from benchmark import store

                    store.probe(args.tracking_uri)
                methods = load_methods(args.campaigns, args.runs_root, args.tracking_uri, args.scores,
                                       ",".join(args.baselines or ["all"]))
            write_report(args.out, methods, ",".join(args.games or ["all"]), args.drop_missing, args.reps, args.seed,
                         timings)
        print(f"report: {args.out / 'report.md'}")
        if args.timing:
            print(timings.table())

    p.set_defaults(func=run_report)


def add_plan(sub) -> None:
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
    from analysis.rundir_source import read_campaign
    from analysis.normalise import references
    from analysis.plan import write_plan
    from analysis.published import baseline_names, load_baseline

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
    games = sorted(references()) if args.games == "all" else comma_list(args.games)
    epochs = resolve(args.preset, [], games[0]).training.epochs
    print(write_plan(pilot, games, seed_counts, epochs, args.preset, baseline, args.effect, args.sims, args.reps,
                     args.seed, args.out), end="")
    if args.out:
        print(f"plan: {args.out / 'plan.md'}")
