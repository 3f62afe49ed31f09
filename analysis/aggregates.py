"""Aggregate metrics of human-normalised scores (runs x games): mean, median, IQM and optimality gap with 95%
stratified bootstrap intervals, and the number of games at or above human level.

Point estimates are rliable's own functions. A stratified resample only re-weights each game's runs by how often
it was drawn, so every repetition's statistic is computed from those draw counts (analysis/bootstrap.py's
`run_counts`) without materialising the resampled scores: the mean and optimality gap are dot products, the median
a median of per-game weighted means, and the IQM (rliable's 25% trimmed mean over all runs and games) the sum of
the middle half of the multiset {value: count}: cumulative counts over the values sorted once locate each
resample's two cuts, the values between them are a dot product, and only the few values near a cut are weighed copy
by copy. That replaces a sort of runs x games values per repetition by a few passes over them (checked against
rliable on the same resamples in tests/test_analysis_bootstrap.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from rliable import metrics

from analysis.bootstrap import enough_runs, percentile_interval, run_counts, run_indices
from analysis.timing import Timings

HUMAN_LEVEL = 1 - 1e-9  # IRIS's Pong is exactly human: rounding in the normalisation must not decide it


def flat(x: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, games * runs) counts and (games * runs,) values, both in (game, run) order."""
    return counts.reshape(len(counts), -1), x.T.ravel()


def resampled_mean(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    c, v = flat(x, counts)
    return c @ v / v.size


def resampled_median(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    # One matrix-vector product per game (BLAS): ~2-3x faster than summing counts * x.T over the runs here
    per_game = counts.transpose(1, 0, 2).astype(float) @ x.T[:, :, None]  # (games, chunk, 1)
    return np.median(per_game[:, :, 0] / len(x), axis=0)


def resampled_iqm(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    c, v = flat(x, counts)
    order = np.argsort(v, kind="stable")
    v, c = v[order], c.take(order, axis=1)  # ~1.5x faster than c[:, order] here
    # Each row holds v.size draws, so the flat cumulative count of row r is its own plus r * v.size: non-decreasing,
    # one search finds every row's cut. Integers: a float cumulative sum is ~8x slower here (a chain of additions).
    cumulative = np.cumsum(c.ravel()).reshape(c.shape)
    cut = int(0.25 * v.size)
    low, start = smallest_from(c, v, cumulative, cut)
    high, end = smallest_from(c, v, cumulative, v.size - cut)
    # The middle half: the size - cut smallest less the cut smallest. Every copy before `end` is among the former and
    # every copy before `start` among the latter, so up to `end` their difference is a dot product from start to end.
    return (c[:, start:end] @ v[start:end] + high - low) / (v.size - 2 * cut)


def smallest_from(c: np.ndarray, v: np.ndarray, cumulative: np.ndarray, t: int) -> tuple[np.ndarray, int]:
    """Of each resample's t smallest values, the sum of those at sorted positions `start` and after, and `start`: the
    values before it are all among them in every resample of the chunk. The rows' cuts lie close together (~50 of
    2,600 positions apart for 100 runs x 26 games), so only that window is weighed copy by copy."""
    rows = np.arange(len(c)) * v.size
    holder = np.searchsorted(cumulative.ravel(), rows + t, side="right") - rows  # per row: where rank t (from 0) is
    start, stop = holder.min(), holder.max() + 1
    before = cumulative[:, start:stop] - c[:, start:stop] - rows[:, None]  # resampled copies at earlier positions
    copies = np.clip(t - before, 0, c[:, start:stop])  # of each value, those among the t smallest
    return copies @ v[start:stop], start


def resampled_optimality_gap(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    c, v = flat(x, counts)
    return 1 - c @ np.minimum(v, 1) / v.size


class Metric(NamedTuple):
    """One aggregate metric, all a report needs of it: a new metric is one entry of METRICS."""

    title: str  # in tables and figures
    point: Callable[[np.ndarray], float]  # rliable's point estimate on (runs, games)
    resampled: Callable[[np.ndarray, np.ndarray], np.ndarray]  # the same on each resample, from draw counts
    lower_is_better: bool = False


# In the order tables and figures show them.
METRICS = {
    "mean": Metric("Mean", metrics.aggregate_mean, resampled_mean),
    "median": Metric("Median", metrics.aggregate_median, resampled_median),
    "iqm": Metric("IQM", metrics.aggregate_iqm, resampled_iqm),
    "optimality_gap": Metric("Optimality gap", metrics.aggregate_optimality_gap, resampled_optimality_gap,
                             lower_is_better=True),
}


def aggregate(normalised: np.ndarray, reps: int, rng: np.random.Generator, timings: Timings) -> dict:
    """{metric: {point, low, high}, superhuman, runs} for one method's (runs, games) normalised scores.
    Too few runs per game (bootstrap.enough_runs) give point estimates only (low and high None)."""
    result = {name: {"point": float(metric.point(normalised)), "low": None, "high": None}
              for name, metric in METRICS.items()}
    if enough_runs(len(normalised)):
        replicates = {name: [] for name in METRICS}
        runs, games = normalised.shape
        draws = run_indices(rng, reps, runs, games, per_rep=4 * normalised.size)
        for indices in timings.timed("bootstrap: resampling", draws):
            counts = run_counts(indices)
            for name, metric in METRICS.items():
                with timings.phase(f"bootstrap: {name}"):
                    replicates[name].append(metric.resampled(normalised, counts))
        for name, values in replicates.items():
            low, high = percentile_interval(np.concatenate(values))
            result[name].update(low=float(low), high=float(high))
    result["superhuman"] = int((normalised.mean(axis=0) >= HUMAN_LEVEL).sum())
    result["runs"] = len(normalised)
    return result
