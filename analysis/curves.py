"""Sample-efficiency curves from training histories: the IQM of human-normalised test returns against env
steps, with 95% stratified bootstrap bands; games without a human reference get their own raw mean curve.

Only the env steps at which every run was evaluated are used, so each point aggregates the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.aggregates import METRICS
from analysis.bootstrap import percentile_interval, stratified_resamples
from analysis.method import Method
from analysis.normalise import has_reference, normalise


@dataclass
class Curve:
    method: str
    label: str  # what is aggregated: "IQM of N games" or one raw game
    steps: np.ndarray
    point: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None


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
            curves.append(curve(method.name, label, np.asarray(steps), values, metric, reps, rng))
    return curves


def history_matrix(method: Method, game: str, steps: list[int]) -> np.ndarray:
    """(runs, steps) test returns, human-normalised where the game has a reference."""
    returns = np.array([[history[step] for step in steps] for history in method.histories[game]], dtype=float)
    return normalise(game, returns) if has_reference(game) else returns


def curve(method: str, label: str, steps: np.ndarray, values: np.ndarray, metric: str, reps: int,
          rng: np.random.Generator) -> Curve:
    point, batched = METRICS[metric]
    points = np.array([point(values[:, :, t]) for t in range(len(steps))])
    if len(values) == 1:
        return Curve(method, label, steps, points, None, None)
    replicates = []
    for sample in stratified_resamples(values, reps, rng):  # (chunk, runs, games, steps)
        per_step = sample.transpose(0, 3, 1, 2).reshape(-1, *values.shape[:2])  # (chunk * steps, runs, games)
        replicates.append(batched(per_step).reshape(len(sample), len(steps)))
    low, high = percentile_interval(np.concatenate(replicates))
    return Curve(method, label, steps, points, low, high)
