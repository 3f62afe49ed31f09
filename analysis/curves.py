"""Sample-efficiency curves from training histories: the IQM of human-normalised test returns against env
steps, with 95% stratified bootstrap bands; games without a human reference get their own raw mean curve, with
the random policy's return where the runs measured it. Where every run recorded its training seconds, each point
also has the mean hours the runs took to reach it (the wall-clock efficiency curve).

Only the env steps at which every run was evaluated are used, so each point aggregates the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.aggregates import METRICS
from analysis.bootstrap import enough_runs, percentile_interval, run_counts, run_indices
from analysis.method import Method
from analysis.normalise import has_reference, score


@dataclass
class Curve:
    method: str
    label: str  # what is aggregated: "IQM of N games" or one raw game
    runs: int  # per game
    steps: np.ndarray
    point: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    hours: np.ndarray | None = None  # mean training hours of the runs at each step
    random: float | None = None  # a random policy's return (raw curves), where the runs measured it


def method_curves(method: Method, games: list[str], reps: int, rng: np.random.Generator) -> list[Curve]:
    """The method's curves over `games`: none when some run has no history or the runs share no env step."""
    if not all(method.histories.get(game) and all(method.histories[game]) for game in games):
        return []
    normalisable = [game for game in games if has_reference(game)]
    groups = [(normalisable, "iqm", f"IQM of {len(normalisable)} games (human-normalised)")] if normalisable else []
    groups += [([game], "mean", f"{game} (raw return)") for game in games if not has_reference(game)]
    curves = []
    for group, metric, label in groups:
        steps = sorted(set.intersection(*(set(h) for game in group for h in method.histories[game])))
        if steps:
            values = np.stack([history_matrix(method, game, steps) for game in group], axis=1)  # (runs, games, steps)
            c = curve(method.name, label, np.asarray(steps), values, metric, reps, rng)
            c.hours = mean_hours(method, group, steps)
            c.random = method.random.get(group[0]) if len(group) == 1 else None
            curves.append(c)
    return curves


def history_matrix(method: Method, game: str, steps: list[int]) -> np.ndarray:
    """(runs, steps) test returns, human-normalised where the game has a reference."""
    returns = np.array([[history[step] for step in steps] for history in method.histories[game]], dtype=float)
    return score(game, returns)


def mean_hours(method: Method, games: list[str], steps: list[int]) -> np.ndarray | None:
    clocks = [clock for game in games for clock in method.clocks.get(game, [])]
    if len(clocks) < sum(len(method.histories[game]) for game in games) or not all(
            step in clock for clock in clocks for step in steps):
        return None
    return np.array([[clock[step] for step in steps] for clock in clocks]).mean(axis=0) / 3600


def curve(method: str, label: str, steps: np.ndarray, values: np.ndarray, metric: str, reps: int,
          rng: np.random.Generator) -> Curve:
    point, resampled = METRICS[metric].point, METRICS[metric].resampled
    points = np.array([point(values[:, :, t]) for t in range(len(steps))])
    runs, games = values.shape[:2]
    if not enough_runs(runs):
        return Curve(method, label, runs, steps, points, None, None)
    replicates = []
    for indices in run_indices(rng, reps, runs, games, per_rep=4 * values.size):
        counts = run_counts(indices)  # one resample of the runs serves every step
        replicates.append(np.stack([resampled(values[:, :, t], counts) for t in range(len(steps))], axis=1))
    low, high = percentile_interval(np.concatenate(replicates))
    return Curve(method, label, runs, steps, points, low, high)
