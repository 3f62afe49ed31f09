"""A campaign's results from its run directories: the runs its campaign.json plans, `<runs_root>/<campaign>/<game>/
s<seed>/` (see iris/rundir.py).

A run counts once it is finished (eval.json present): its score is eval.json's mean, its history the
`test/return_mean` of its evaluation epochs in metrics.jsonl, its clock their cumulative training seconds
(`time`), its random-policy return eval.json's `random_policy`, and its cost its wall time (eval.json's
`wall_seconds`, else the last metrics row's `time`) on the device of `runtime` (eval.json, else status.json;
older runs lack it: 'unknown').
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from analysis.method import Method, RunCost, as_scores
from iris.errors import ConfigError
from iris.rundir import read_eval, read_json, read_metrics, read_spec, read_status
from iris.vocabulary import CAMPAIGN_FILE, ENV_STEPS, TEST_RETURN


def read_campaign(runs_root: Path, campaign: str, name: str | None = None) -> Method:
    """The campaign's finished runs as a method named `name` (default: the campaign's name)."""
    campaign_dir = Path(runs_root) / campaign
    if not campaign_dir.is_dir():
        found = sorted(p.name for p in Path(runs_root).iterdir() if p.is_dir()) if Path(runs_root).is_dir() else []
        raise ConfigError(f"no campaign {campaign!r} under {runs_root}; found: {', '.join(found) or 'none'}")
    plan = read_json(campaign_dir / CAMPAIGN_FILE)
    if plan is None:
        raise ConfigError(f"{campaign_dir} is not a campaign: it has no {CAMPAIGN_FILE} (`iris-bench run` writes it)")
    finals, seeds, histories, clocks, randoms = (defaultdict(list) for _ in range(5))
    costs = []
    for key in sorted(plan["runs"]):
        run_dir = campaign_dir / key
        if not (run_dir / "eval.json").exists():  # not finished
            continue
        spec = read_spec(run_dir)
        if spec is None:
            raise ConfigError(f"{run_dir} has eval.json but no spec.json: not a run directory")
        game, result, rows = spec["game"], read_eval(run_dir), read_metrics(run_dir)
        finals[game].append(result["mean"])
        seeds[game].append(str(spec["seed"]))
        histories[game].append({r[ENV_STEPS]: r[TEST_RETURN] for r in rows if r.get(TEST_RETURN) is not None})
        clocks[game].append({r[ENV_STEPS]: r["time"] for r in rows if r.get(TEST_RETURN) is not None and "time" in r})
        if "random_policy" in result:
            randoms[game].append(result["random_policy"]["mean"])
        costs.append(run_cost(run_dir, result, rows))
    if not finals:
        raise ConfigError(f"campaign {campaign!r} has no finished runs "
                          f"(no eval.json under {campaign_dir}/<game>/s<seed>/)")
    scores = {game: as_scores(values, f"{campaign_dir / game}: eval.json mean") for game, values in finals.items()}
    return Method(name or campaign, scores, f"run directories {campaign_dir}", dict(histories), dict(seeds),
                  dict(clocks), {game: float(np.mean(values)) for game, values in randoms.items()}, costs)


def run_cost(run_dir: Path, result: dict, rows: list[dict]) -> RunCost:
    seconds = result.get("wall_seconds", rows[-1].get("time", float("nan")) if rows else float("nan"))
    runtime = result.get("runtime") or (read_status(run_dir) or {}).get("runtime") or {}
    return RunCost(seconds / 3600, *(str(runtime.get(key, "unknown")) for key in ("device", "device_name",
                                                                                   "precision")))
