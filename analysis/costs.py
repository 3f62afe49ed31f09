"""What the compared methods cost: measured hours per run for campaigns (each run's wall time and device, see
analysis/rundir_source.py), and for published baselines the cost their papers state (data/atari100k/COSTS.json,
quoted with its source). Hours on a GPU are GPU-hours, on a CPU CPU-hours (one run, however many threads)."""

from __future__ import annotations

import functools
import json
import math

import numpy as np

from analysis.method import Method
from analysis.normalise import ATARI100K_DIR
from analysis.tables import Table

UNITS = {"cuda": "GPU-hours", "cpu": "CPU-hours"}
# A paper-preset run measured 99 s an epoch on an H200 (`iris-bench perf --preset paper --device cuda`), plus ~4
# minutes of compiling once: 16.6 GPU-hours for 600 epochs. Estimates scale this by the epochs (smaller presets have
# far smaller networks: an upper bound there).
PAPER_RUN_GPU_HOURS = 16.6
PAPER_EPOCHS = 600


@functools.cache
def quoted_costs() -> dict[str, dict]:
    return json.loads((ATARI100K_DIR / "COSTS.json").read_text())


def devices(method: Method) -> str:
    """'NVIDIA H200 (cuda, bf16)', several joined by '; ', or 'unknown' where the runs did not record it."""
    seen = dict.fromkeys(f"{c.device_name} ({c.device}, {c.precision})" if c.device != "unknown" else "unknown"
                         for c in method.costs)
    return "; ".join(seen)


def unit(method: Method) -> str:
    kinds = {cost.device for cost in method.costs}
    return UNITS[kinds.pop()] if len(kinds) == 1 and kinds <= UNITS.keys() else "hours"


def cost_rows(methods: list[Method]) -> list[dict]:
    """One row per method whose cost is known: measured (campaigns) or quoted (published)."""
    rows = []
    for method in methods:
        hours = [cost.hours for cost in method.costs if math.isfinite(cost.hours)]
        if hours:
            rows.append({"method": method.name, "runs": len(method.costs), "hours_per_run": float(np.mean(hours)),
                         "total_hours": float(np.sum(hours)), "unit": unit(method), "device": devices(method),
                         "source": "measured" + (f" ({len(hours)} of {len(method.costs)} runs timed)"
                                                 if len(hours) < len(method.costs) else "")})
        elif method.published and method.name in quoted_costs():
            quote = quoted_costs()[method.name]
            rows.append({"method": method.name, "runs": None, "hours_per_run": quote["hours_per_run"],
                         "total_hours": None, "unit": "GPU-hours", "device": quote["device"],
                         "source": f"quoted: {quote['quote']}; {quote['source']}"})
    return rows


def cost_table(rows: list[dict]) -> Table:
    def hours(value: float | None) -> str:
        return "–" if value is None else f"{value:.3g}"

    body = [[r["method"], "–" if r["runs"] is None else str(r["runs"]), f"{hours(r['hours_per_run'])} {r['unit']}",
             hours(r["total_hours"]), r["device"], r["source"]] for r in rows]
    return Table("Cost per method: hours per run (mean over runs) and in all, measured from each run's wall time, "
                 "or quoted from the method's paper", ["Method", "Runs", "Per run", "Total", "Device", "Source"],
                 body, set())


def hours_per_run(pilot: Method, epochs: int, preset: str) -> tuple[float, str, str]:
    """(hours, unit, how they were found) for one run: measured on the pilot's timed runs, else `epochs` of `preset`
    at the paper preset's measured rate."""
    timed = [c.hours for c in pilot.costs if math.isfinite(c.hours)]
    if timed:
        hours = sum(timed) / len(timed)
        return hours, unit(pilot), f"{hours:.3g} {unit(pilot)} per run, measured on the pilot's {len(timed)} runs"
    hours = PAPER_RUN_GPU_HOURS * epochs / PAPER_EPOCHS
    return hours, "GPU-hours", (f"{hours:.3g} GPU-hours per run: {epochs} epochs of preset {preset} at the paper "
                                f"preset's measured {PAPER_RUN_GPU_HOURS} h per {PAPER_EPOCHS} epochs on an H200")
