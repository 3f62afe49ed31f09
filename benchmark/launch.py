"""`iris-bench run` and `iris-bench cancel`: plan a campaign, submit what is left to do, wait, stop.

Idempotent: a rerun of the same command skips finished runs and runs that are running or queued, and
resumes the others from their checkpoints. The campaign's submit lock serialises concurrent commands.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmark import campaign as campaigns
from benchmark import executors, jobs, locks, store, tracking
from benchmark.progress import Snapshot, follow
from benchmark.requests import at_least_one, check_jobs
from benchmark.status import RunView, views
from benchmark.worker import Worker
from iris import rundir
from iris.config import Config
from iris.errors import ConfigError, DiskFull
from iris.vocabulary import FINISHED, PENDING, QUEUED, RESUMABLE, RUNNING



@dataclass
class Request:
    games: list[str]
    seeds: list[int]
    preset: str
    overrides: list[str]
    campaign: str | None
    executor: str
    profile: str | None
    max_parallel: int | None
    runs_root: Path
    extend: bool = False  # allow more training.epochs for an existing campaign (campaign.plan)


@dataclass
class Disk:
    """What the runs to do will write at most, against the free space where they go."""
    run: rundir.DiskNeed  # one run from its start
    needed: int  # every run to do, less what its directory holds already, and a checkpoint more per run at once
    free: int
    where: Path  # the campaign's folder


@dataclass
class Plan:
    campaign: campaigns.Campaign
    backend: executors.Backend
    start: list[RunView]  # never started
    resume: list[RunView]  # stopped or failed: resume from the checkpoint
    skip: list[RunView]  # finished, running or queued
    disk: Disk

    @property
    def todo(self) -> list[RunView]:
        return self.start + self.resume


def seeds(count: int, offset: int) -> list[int]:
    at_least_one("--seeds", count)
    if offset < 0:
        raise ConfigError(f"--seed-offset must be 0 or more, got {offset}")
    return list(range(offset, offset + count))


def make_plan(request: Request) -> Plan:
    """Validate everything and sort the runs; writes nothing."""
    backend = executors.backend(request.executor, request.profile)
    at_least_one("--max-parallel", request.max_parallel)
    cfg = check_jobs(request.preset, request.overrides, request.games[0], backend)
    name = request.campaign or campaigns.default_name(request.preset)
    campaign = campaigns.plan(request.runs_root, name, request.preset, request.overrides, request.games, request.seeds,
                              request.extend)
    wanted = {campaigns.run_key(g, s) for g in request.games for s in request.seeds}
    for key in sorted(wanted):  # a damaged spec.json or status.json (did it finish?): refused, one line naming it
        rundir.read_spec(campaign.run_dir(key))
        rundir.read_status(campaign.run_dir(key))
    runs = [r for r in views(campaign) if r.key in wanted]
    resumed = (*RESUMABLE, FINISHED) if campaign.extending else RESUMABLE
    start, resume = [r for r in runs if r.state == PENDING], [r for r in runs if r.state in resumed]
    skip = [r for r in runs if r.state not in resumed and r.state != PENDING]
    return Plan(campaign, backend, start, resume, skip,
                disk_plan(campaign, cfg, start + resume, backend.at_once(request.max_parallel)))


def disk_plan(campaign: campaigns.Campaign, cfg: Config, todo: list[RunView], at_once: int | None) -> Disk:
    """One run's estimate from the config (iris.api.disk_needed: the first game's agent stands for all, whose action
    counts change its parameters by under 0.5%) times the runs to do, less what a resumed run holds already, plus the
    checkpoint each of the runs training at once (Backend.at_once; None: all) writes beside its last; a one-line
    DiskFull where that is more than the free space."""
    from iris.api import disk_needed

    run = disk_needed(cfg)
    held = sum(max(run.total - rundir.size_of(campaign.run_dir(r.key)), 0) for r in todo)
    writing = min(at_once or len(todo), len(todo))
    disk = Disk(run, held + writing * run.checkpoint, rundir.free_bytes(campaign.root), campaign.root)
    if disk.needed > disk.free:
        raise DiskFull(f"not enough space for the {len(todo)} run(s) to do in {disk.where}: up to "
                       f"{rundir.size_text(disk.needed)} needed, {rundir.size_text(disk.free)} free; free space there, "
                       "or run fewer games or seeds, or choose another --runs-root")
    return disk


def gpu_hours(runs: list[RunView]) -> float:
    """The paper preset's measured rate (analysis/costs.py) times the epochs left: an upper bound for smaller presets."""
    from analysis.costs import PAPER_EPOCHS, PAPER_RUN_GPU_HOURS

    return sum(r.epochs - r.epoch for r in runs) * PAPER_RUN_GPU_HOURS / PAPER_EPOCHS


def print_plan(plan: Plan) -> None:
    from analysis.costs import PAPER_EPOCHS, PAPER_RUN_GPU_HOURS

    c = plan.campaign
    print(f"campaign {c.name} in {c.root}: preset {c.preset}, --set {' '.join(c.overrides) or 'none'}, "
          f"config {c.config_hash}")
    for label, runs in (("start", plan.start), ("resume", plan.resume), ("skip", plan.skip)):
        detail = ", ".join(f"{n} {s}" for s, n in Counter(r.state for r in runs).items()) if label == "skip" else ""
        print(f"  {label:6s} {len(runs):4d}{f' ({detail})' if detail else ''}: {_by_game(runs)}")
    print(f"  estimate: {gpu_hours(plan.todo):.2f} GPU-hours ({sum(r.epochs - r.epoch for r in plan.todo)} epochs "
          f"to go x {PAPER_RUN_GPU_HOURS} h per {PAPER_EPOCHS}-epoch paper run on one GPU)")
    d, size = plan.disk, rundir.size_text
    print(f"  disk:     up to {size(d.needed)}, {size(d.free)} free there (a run ends with episodes "
          f"{size(d.run.episodes)}, checkpoint {size(d.run.checkpoint)}, other {size(d.run.other)}; a run training "
          "writes its next checkpoint beside its last)")


def _by_game(runs: list[RunView]) -> str:
    games: dict[str, list[str]] = {}
    for r in runs:
        games.setdefault(r.game, []).append(f"s{r.seed}")
    return "; ".join(f"{g} {' '.join(s)}" for g, s in games.items()) or "-"


def submit(request: Request) -> Plan:
    """Plan under the campaign's submit lock, create its files and tracking store, submit what is to do."""
    first = make_plan(request)
    root = first.campaign.root
    first.backend.check_scheduler()
    with locks.hold(root / locks.SUBMIT_LOCK, wait=True):
        plan = make_plan(request)  # again, now that no other command can submit to this campaign
        campaigns.materialize(plan.campaign)
        if plan.todo:
            target = tracking.target_for(root, plan.campaign.name)
            # Runs train anyway: their metrics wait in metrics.jsonl.
            with store.tolerated(f"training goes on, replay later with `iris-bench sync --campaign {plan.campaign.name}`"):
                tracking.prepare(target)
            if not plan.backend.runs_here and target.uri.startswith("sqlite:"):
                print("iris-bench: warning: jobs on several nodes sharing one SQLite file over a network file system "
                      "risk its locking: on a real cluster set MLFLOW_TRACKING_URI to an MLflow server (README)",
                      file=sys.stderr)
            run_dirs = [plan.campaign.run_dir(r.key) for r in plan.todo]
            folder = executors.job_folder(root)
            assignment = plan.backend.submit_runs(folder, Worker(), run_dirs, (target,), request.max_parallel,
                                                  f"iris-{plan.campaign.name}")
            if assignment:
                keys = {job_id: [str(d.relative_to(root)) for d in dirs] for job_id, dirs in assignment.items()}
                jobs.record(root, plan.backend.name, folder, keys)
    return plan


def wait(campaign: campaigns.Campaign, keys: list[str]) -> int:
    """Follow the runs of `keys` (their epochs) until none is running or queued; 0 when all finished."""
    def poll() -> Snapshot:
        runs = _selected(campaign, keys)
        states = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.state for r in runs).items()))
        return Snapshot(sum(r.epoch for r in runs), sum(r.epochs for r in runs), states,
                        progress_line(campaign.name, runs, states),
                        not any(r.state in (RUNNING, QUEUED) for r in runs))

    follow(campaign.name, "epoch", poll)
    unfinished = [f"{r.key} {r.told}" for r in _selected(campaign, keys) if r.state != FINISHED]
    if unfinished:
        print(f"iris-bench: {len(unfinished)} run(s) did not finish: {', '.join(unfinished)}", file=sys.stderr)
        return 1
    return 0


def progress_line(name: str, runs: list[RunView], states: str) -> str:
    """The campaign's epochs and each unfinished run's epoch, env steps and last test return, in one line."""
    done, total = sum(r.epoch for r in runs), sum(r.epochs for r in runs)
    parts = [f"{name}: epochs {done}/{total} ({100 * done / max(total, 1):.0f}%), {states}"]
    for r in runs:
        ret = "" if r.last_test_return is None else f", test return {r.last_test_return:.3f}"
        parts.append(f"{r.key} {r.state} epoch {r.epoch}/{r.epochs}, env steps {r.env_steps:,}{ret}")
    return " | ".join(parts)


def _selected(campaign: campaigns.Campaign, keys: list[str]) -> list[RunView]:
    wanted = set(keys)
    return [r for r in views(campaign) if r.key in wanted]


def cancel(campaign: campaigns.Campaign, timeout_s: float = 120.0) -> tuple[list[str], list[str]]:
    """Stop the campaign's live jobs and wait until they are gone and hold no run; runs stay resumable.
    Returns (the ids stopped, those still alive after `timeout_s`)."""
    return jobs.cancel(campaign.root, timeout_s, lambda stopped: not any(
        r.state == RUNNING and r.job in stopped for r in views(campaign)))
