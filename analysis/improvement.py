"""Probability of improvement P(X > Y): the chance that a run of X beats a run of Y on a game (ties count
half; the Mann-Whitney U statistic over n x m), averaged over games, with a 95% interval from resampling
X's and Y's runs independently within each game (rliable's StratifiedIndependentBootstrap).

A resample of X only re-weights the rows of the n x m win matrix by how often each run was drawn, so each
repetition is a matrix product (X's draw counts @ wins) summed over Y's drawn columns instead of a rank test.
"""

from __future__ import annotations

import numpy as np
from rliable import metrics

from analysis.bootstrap import enough_runs, percentile_interval, run_counts, run_indices


def improvement(x: np.ndarray, y: np.ndarray, reps: int, rng: np.random.Generator) -> dict:
    """{point, low, high} of P(X > Y) from (runs, games) scores of X and Y; too few runs on either side
    (bootstrap.enough_runs) give a point estimate only."""
    result = {"point": float(metrics.probability_of_improvement(x, y)), "low": None, "high": None}
    if enough_runs(len(x), len(y)):
        low, high = percentile_interval(improvement_replicates(x, y, reps, rng))
        result.update(low=float(low), high=float(high))
    return result


def improvement_replicates(x: np.ndarray, y: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    (n, games), m = x.shape, len(y)
    # (games, n, m), in float32: see resampled_improvement
    wins = ((x.T[:, :, None] > y.T[:, None, :]) + 0.5 * (x.T[:, :, None] == y.T[:, None, :])).astype(np.float32)
    per_rep = games * (n + 2 * m)  # X's counts, Y's indices and the (games, chunk, m) product
    draws = zip(run_indices(rng, reps, n, games, per_rep), run_indices(rng, reps, m, games, per_rep))
    return np.concatenate([resampled_improvement(wins, x_indices, y_indices) for x_indices, y_indices in draws])


def resampled_improvement(wins: np.ndarray, x_indices: np.ndarray, y_indices: np.ndarray) -> np.ndarray:
    """P(X > Y) of each resample, from the win matrix (games, n, m) and the runs drawn for X (chunk, n, games)
    and for Y (chunk, m, games)."""
    games, n, m = wins.shape
    chunk = len(x_indices)
    # Wins are halves of small integers, exact in float32 as in float64 (up to 2**23 runs): float32 wins give the
    # same sums with half the memory for the (games, chunk, m) product, whose flat take is most of the time here.
    x_counts = run_counts(x_indices).transpose(1, 0, 2).astype(wins.dtype)  # (games, chunk, n)
    wins_of_drawn_x = x_counts @ wins  # (games, chunk, m): wins of the resampled X runs over each run of Y
    rows = np.arange(games * chunk).reshape(games, chunk, 1) * m  # a flat take: ~2x faster than take_along_axis
    drawn = wins_of_drawn_x.ravel().take(y_indices.transpose(2, 0, 1) + rows)  # (games, chunk, m) drawn Y runs
    return (drawn.sum(axis=2, dtype=float) / (n * m)).mean(axis=0)
