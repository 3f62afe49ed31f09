"""Where each run of a campaign stands, read from its run directory, its lock and the live jobs.

States: finished; running (a process holds its lock); queued (a live job will train it); pending
(never started); failed; stopped (interrupted: killed, cancelled, preempted; resumes from its checkpoint).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmark import jobs, locks
from benchmark.campaign import Campaign, existing, find, load, split_key
from iris import rundir
from iris.errors import RunStateError
from iris.vocabulary import CAMPAIGN_STATES, FAILED, FINISHED, PENDING, QUEUED, RUNNING, STOPPED


@dataclass
class RunView:
    key: str
    game: str
    seed: int
    state: str
    epoch: int
    epochs: int
    env_steps: int
    last_test_return: float | None
    job: str
    heartbeat: float | None
    error: str | None

    @property
    def told(self) -> str:
        """The state, and for a failed run the first line of why (the file a damaged one names)."""
        return f"{self.state}: {self.error.splitlines()[0]}" if self.state == FAILED and self.error else self.state


def is_finished(run_dir: Path) -> bool:
    try:
        return (rundir.read_status(run_dir) or {}).get("state") == FINISHED
    except RunStateError:
        return False


def view(campaign: Campaign, key: str, live: dict[str, str]) -> RunView:
    run_dir = campaign.run_dir(key)
    try:
        status = rundir.read_status(run_dir) or {}
    except RunStateError as e:  # this run's line says so; the others are unaffected
        status = {"state": FAILED, "error": str(e)}
    lock = run_dir / locks.RUN_LOCK
    if status.get("state") == FINISHED:
        state, job = FINISHED, ""
    elif locks.is_held(lock):
        state, job = RUNNING, locks.owner(lock)
    elif key in live:
        state, job = QUEUED, live[key]
    elif not status:
        state, job = PENDING, ""
    else:
        state, job = (FAILED if status["state"] == FAILED else STOPPED), ""
    game, seed = split_key(key)
    return RunView(key, game, seed, state, status.get("epoch", 0), status.get("epochs", campaign.epochs),
                   status.get("env_steps", 0),
                   status.get("last_test_return"), job, status.get("heartbeat"), status.get("error"))


def survey(runs_root: Path, name: str | None) -> tuple[list[tuple[Campaign, list[RunView]]], list[str]]:
    """The named campaign's runs, or every campaign's under runs_root; there, a campaign whose campaign.json or
    jobs.json is damaged is left out with the one-line reason (naming the file), so it hides no other campaign."""
    if name is not None:
        (campaign,) = find(runs_root, name)
        return [(campaign, views(campaign))], []
    found, damaged = [], []
    for other in existing(runs_root):
        try:
            campaign = load(Path(runs_root) / other)
            found.append((campaign, views(campaign)))
        except RunStateError as e:
            damaged.append(str(e))
    return found, damaged


def views(campaign: Campaign) -> list[RunView]:
    live = jobs.live_assignment(campaign.root)
    return [view(campaign, key, live) for key in campaign.runs]


def totals(runs: list[RunView]) -> dict:
    counts = Counter(r.state for r in runs)
    return {"runs": len(runs), **{s: counts.get(s, 0) for s in CAMPAIGN_STATES},
            "epochs_done": sum(r.epoch for r in runs), "epochs": sum(r.epochs for r in runs),
            "env_steps": sum(r.env_steps for r in runs)}


def as_json(campaign: Campaign, runs: list[RunView]) -> dict:
    return {"campaign": campaign.name, "root": str(campaign.root), "config_hash": campaign.config_hash,
            "runs": [asdict(r) for r in runs], "totals": totals(runs)}


def print_table(campaign: Campaign, runs: list[RunView]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"campaign {campaign.name} ({campaign.preset}, config {campaign.config_hash})")
    for column in ("run", "state", "epoch", "env steps", "last test return", "job", "heartbeat"):
        table.add_column(column, justify="right" if column in ("epoch", "env steps", "last test return") else "left")
    now = time.time()
    for r in runs:
        ret = "" if r.last_test_return is None else f"{r.last_test_return:.2f}"
        beat = "" if r.heartbeat is None else f"{_age(now - r.heartbeat)} ago"
        table.add_row(r.key, r.told, f"{r.epoch}/{r.epochs}", f"{r.env_steps:,}", ret, r.job, beat)
    Console().print(table)
    t = totals(runs)
    counts = ", ".join(f"{t[s]} {s}" for s in CAMPAIGN_STATES if t[s])
    percent = 100 * t["epochs_done"] / t["epochs"] if t["epochs"] else 0.0
    print(f"{t['runs']} runs: {counts}; epochs {t['epochs_done']}/{t['epochs']} ({percent:.0f}%), "
          f"env steps {t['env_steps']:,}")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"
