"""`iris-bench perf`: the benchmarks of benchmark/measure/, each printing its figures."""

from __future__ import annotations

from benchmark.cli.common import add_config_args
from iris.errors import ConfigError


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
    p.add_argument("--learn", metavar="GAME", help="instead: train GAME with --preset for each of --seeds until a "
                                                   "periodic test return reaches --threshold; minutes and env steps")
    p.add_argument("--seeds", default="0-4", help="with --learn: a range like 0-4 or a list like 0,2 (default: 0-4)")
    p.add_argument("--threshold", type=float, default=0.8, help="with --learn: the test return to reach (default: 0.8)")
    p.add_argument("--confirm", type=int, default=100,
                   help="with --learn: fresh test episodes that check the checkpoint that reached it (default: 100)")
    p.add_argument("--tracker", action="store_true",
                   help="instead: wall time of a small Catch campaign with a healthy and with a dead MLflow server")
    p.add_argument("--executor", default="local", help="with --campaign: local (default) or slurm")
    p.add_argument("--profile", help="with --campaign --executor slurm: the SLURM profile")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_perf)


def run_perf(args) -> None:
    from benchmark.measure.rows import print_rows

    if args.store:
        from benchmark.measure.episode_store import store_memory_benchmark

        print_rows(store_memory_benchmark(), args.json)
        return
    if args.tracker:
        from benchmark.measure.dead_tracker import dead_server_cost

        print_rows(dead_server_cost(), args.json)
        return
    if args.learn:
        from benchmark.measure.learning import parse_seeds, time_to_threshold

        rows, setting = time_to_threshold(args.preset, args.learn, args.overrides, parse_seeds(args.seeds),
                                          args.threshold, args.confirm)
        print_rows(rows, args.json, setting)
        return
    if args.campaign:
        from benchmark.measure.campaign_overhead import campaign_timings

        print_rows(campaign_timings(args.executor, args.profile), args.json)
        return
    if args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    if args.precision:
        from benchmark.measure.precision import loss_curves, plot_curves, precision_rows

        curves = loss_curves(args.preset, args.game, [*args.overrides, f"training.device={args.device}"], args.steps)
        if args.plot:
            plot_curves(curves, args.plot)
        print_rows(precision_rows(curves), args.json, f"preset {args.preset}, {args.steps} steps per component")
        return
    from benchmark.measure.training_speed import training_speed

    rows, setting = training_speed(args.preset, args.game, args.overrides, args.device, args.steps)
    print_rows(rows, args.json, setting)
