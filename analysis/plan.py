"""Plan a campaign before spending: for each number of seeds, the expected width of the report's 95% intervals
(mean, median, IQM, optimality gap), the chance that the interval of the probability of improvement over a
baseline excludes 0.5, and the campaign's GPU-hours (`iris-bench plan`).

The estimator simulates the campaigns: each simulated campaign draws `seeds` runs per game with replacement from
a pilot's runs (a campaign of yours, or a published method's, IRIS's 5 by default), and is bootstrapped exactly as
the report does (analysis/aggregates.py, analysis/improvement.py); the expected width is the mean over the
simulated campaigns, the power the fraction whose interval excludes 0.5. The pilot's per-game spread stands for the
true one (the spread of k drawn runs is (k - 1) / k of it in variance: a 5-run pilot predicts widths ~10% narrow).
With `effect`, the pilot's runs are first shifted on each game by the same multiple of that game's spread (the
baseline's and pilot's runs pooled) so that the pilot's probability of improvement over the baseline equals it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rliable import metrics

from analysis.aggregates import METRICS, aggregate
from analysis.bootstrap import enough_runs, keep_freed_memory, too_few_runs
from analysis.improvement import improvement
from analysis.method import Method
from analysis.normalise import has_reference, normalise
from analysis.tables import Table
from analysis.timing import Timings
from iris.errors import ConfigError


@dataclass
class PlanRow:
    seeds: int
    widths: dict[str, float | None]  # metric -> expected 95% interval width (None: too few runs for one)
    power: float | None  # P(the interval of P(X > baseline) excludes 0.5); None without a baseline
    hours: float  # the campaign's: seeds x games x hours per run


def raw_matrix(method: Method, games: list[str]) -> np.ndarray:
    """(runs, games) raw scores; every game must be there, with as many runs as the others."""
    lacking = [game for game in games if game not in method.scores]
    if lacking:
        raise ConfigError(f"{method.name} lacks {', '.join(lacking)}; it has: {', '.join(sorted(method.scores))}")
    method.runs(games)
    return np.stack([method.scores[game] for game in games], axis=1)


def score_matrix(method: Method, games: list[str]) -> np.ndarray:
    """(runs, games) human-normalised scores, or raw ones when no game has a human reference."""
    raw = raw_matrix(method, games)
    normalisable = [has_reference(game) for game in games]
    if any(normalisable) and not all(normalisable):
        raise ConfigError(f"plan games with a human reference and games without one separately: "
                          f"{', '.join(g for g, n in zip(games, normalisable) if not n)} have none")
    return np.stack([normalise(g, raw[:, i]) for i, g in enumerate(games)], axis=1) if all(normalisable) else raw


def draw(pilot: np.ndarray, seeds: int, rng: np.random.Generator) -> np.ndarray:
    """One simulated campaign: `seeds` runs per game drawn with replacement from the pilot's runs."""
    return np.take_along_axis(pilot, rng.integers(len(pilot), size=(seeds, pilot.shape[1])), axis=0)


def expected_widths(pilot: np.ndarray, seeds: int, sims: int, reps: int, rng: np.random.Generator) -> dict:
    if not enough_runs(seeds):
        return dict.fromkeys(METRICS)
    widths = {name: [] for name in METRICS}
    for _ in range(sims):
        result = aggregate(draw(pilot, seeds, rng), reps, rng, Timings())
        for name in METRICS:
            widths[name].append(result[name]["high"] - result[name]["low"])
    return {name: float(np.mean(values)) for name, values in widths.items()}


def shifted(pilot: np.ndarray, baseline: np.ndarray, effect: float) -> np.ndarray:
    """The pilot's raw runs moved by delta x each game's spread, delta such that P(pilot > baseline) = effect."""
    if not 0 < effect < 1:
        raise ConfigError(f"--effect is a probability of improvement between 0 and 1 (exclusive), got {effect}")
    spread = np.concatenate([pilot, baseline]).std(axis=0)
    spread[spread == 0] = 1.0

    def p(delta: float) -> float:
        return metrics.probability_of_improvement(pilot + delta * spread, baseline)

    low, high = -1.0, 1.0
    while p(low) > effect:
        low *= 2
    while p(high) < effect:
        high *= 2
        if high > 1e6:
            raise ConfigError(f"--effect {effect}: no shift of the pilot reaches it against the baseline")
    for _ in range(60):  # bisection: P(X > Y) does not decrease as X moves up
        middle = (low + high) / 2
        low, high = (middle, high) if p(middle) < effect else (low, middle)
    return pilot + high * spread


def power(pilot: np.ndarray, baseline: np.ndarray, seeds: int, sims: int, reps: int,
          rng: np.random.Generator) -> float | None:
    """The fraction of simulated campaigns whose interval of P(campaign > baseline) excludes 0.5."""
    if not enough_runs(seeds, len(baseline)):
        return None
    excluded = 0
    for _ in range(sims):
        result = improvement(draw(pilot, seeds, rng), baseline, reps, rng)
        excluded += result["low"] > 0.5 or result["high"] < 0.5
    return excluded / sims


def plan(pilot: Method, games: list[str], seed_counts: list[int], hours_per_run: float, baseline: Method | None = None,
         effect: float | None = None, sims: int = 200, reps: int = 1000, seed: int = 0) -> list[PlanRow]:
    if not seed_counts or min(seed_counts) < 1:
        raise ConfigError(f"--seeds: numbers of seeds of 1 or more, got {','.join(map(str, seed_counts)) or 'none'}")
    if sims < 1 or reps < 1:
        raise ConfigError(f"--sims and --reps must be 1 or more, got {sims} and {reps}")
    rng = np.random.default_rng(seed)
    keep_freed_memory()
    scores = score_matrix(pilot, games)
    if baseline is not None:
        raw_pilot, raw_baseline = raw_matrix(pilot, games), raw_matrix(baseline, games)
        if effect is not None:
            raw_pilot = shifted(raw_pilot, raw_baseline, effect)
    rows = []
    for n in seed_counts:
        rows.append(PlanRow(n, expected_widths(scores, n, sims, reps, rng),
                            power(raw_pilot, raw_baseline, n, sims, reps, rng) if baseline is not None else None,
                            n * len(games) * hours_per_run))
    return rows


def plan_table(rows: list[PlanRow], unit: str, baseline: str | None) -> Table:
    def width(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    header = ["Seeds", *(f"{m.title} width" for m in METRICS.values()),
              *([f"P(interval excludes 0.5) vs {baseline}"] if baseline else []), unit]
    body = [[str(r.seeds), *(width(r.widths[m]) for m in METRICS), *([width(r.power)] if baseline else []),
             f"{r.hours:,.1f}"] for r in rows]
    notes = "; ".join(dict.fromkeys(too_few_runs(r.seeds) for r in rows if not enough_runs(r.seeds)))
    caption = "Expected width of the 95% stratified bootstrap intervals per number of seeds, and the campaign's cost"
    return Table(f"{caption}. –: {notes}" if notes else caption, header, body, set())


def write_plan(pilot: Method, games: list[str], seed_counts: list[int], epochs: int, preset: str,
               baseline: Method | None, effect: float | None, sims: int, reps: int, seed: int,
               out: Path | None) -> str:
    """`iris-bench plan`: the plan as markdown text (also plan.md, plan.json and the figure under `out`)."""
    from analysis.costs import hours_per_run
    from analysis.tables import to_markdown

    if effect is not None and baseline is None:
        raise ConfigError("--effect is the difference to detect against a --baseline: name one")
    hours, per_unit, basis = hours_per_run(pilot, epochs, preset)
    rows = plan(pilot, games, seed_counts, hours, baseline, effect, sims, reps, seed)
    lines = [f"Plan: {len(games)} games, runs like {pilot.name} ({pilot.source}), {sims} simulated campaigns "
             f"x {reps} bootstrap repetitions each, seed {seed}.", f"Cost: {basis}."]
    if baseline is not None:
        difference = f"P = {effect}" if effect is not None else "the pilot's own"
        lines.append(f"Power: against {baseline.name}'s published runs, true difference {difference}.")
    text = "\n".join(lines) + "\n\n" + to_markdown(plan_table(rows, per_unit, baseline and baseline.name)) + "\n"
    if out is not None:
        from analysis import figures

        out.mkdir(parents=True, exist_ok=True)
        png = figures.plot_plan(rows, per_unit, out)
        (out / "plan.md").write_text(f"# Plan\n\n{text}\n![plan]({png})\n")
        (out / "plan.json").write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2) + "\n")
    return text
