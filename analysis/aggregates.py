"""Aggregate metrics of human-normalised scores (runs x games): mean, median, IQM and optimality gap with 95%
stratified bootstrap intervals, and the number of games at or above human level.

Point estimates are rliable's own functions; the bootstrap computes the same definitions over a leading
axis of repetitions (checked against rliable in tests/test_analysis_bootstrap.py).
"""

from __future__ import annotations

import numpy as np
from rliable import metrics

from analysis.bootstrap import percentile_interval, stratified_resamples
from analysis.timing import Timings

HUMAN_LEVEL = 1 - 1e-9  # IRIS's Pong is exactly human: rounding in the normalisation must not decide it


def batched_mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(1, 2))


def batched_median(x: np.ndarray) -> np.ndarray:
    return np.median(x.mean(axis=1), axis=1)


def batched_iqm(x: np.ndarray) -> np.ndarray:
    """25% trimmed mean over all runs and games (scipy's trim_mean; a full sort beats its partition here)."""
    pooled = np.sort(x.reshape(len(x), -1), axis=1)
    cut = int(0.25 * pooled.shape[1])
    return pooled[:, cut:pooled.shape[1] - cut].mean(axis=1)


def batched_optimality_gap(x: np.ndarray) -> np.ndarray:
    return 1 - np.minimum(x, 1).mean(axis=(1, 2))


# name -> (rliable's point estimate on (runs, games), the same over (reps, runs, games))
METRICS = {
    "mean": (metrics.aggregate_mean, batched_mean),
    "median": (metrics.aggregate_median, batched_median),
    "iqm": (metrics.aggregate_iqm, batched_iqm),
    "optimality_gap": (metrics.aggregate_optimality_gap, batched_optimality_gap),
}


def aggregate(normalised: np.ndarray, reps: int, rng: np.random.Generator, timings: Timings) -> dict:
    """{metric: {point, low, high}, superhuman, runs} for one method's (runs, games) normalised scores.
    A single run per game gives point estimates only (low and high None)."""
    result = {name: {"point": float(point(normalised)), "low": None, "high": None}
              for name, (point, _) in METRICS.items()}
    if len(normalised) > 1:
        replicates = {name: [] for name in METRICS}
        for sample in timings.timed("bootstrap: resampling", stratified_resamples(normalised, reps, rng)):
            for name, (_, batched) in METRICS.items():
                with timings.phase(f"bootstrap: {name}"):
                    replicates[name].append(batched(sample))
        for name, values in replicates.items():
            low, high = percentile_interval(np.concatenate(values))
            result[name].update(low=float(low), high=float(high))
    result["superhuman"] = int((normalised.mean(axis=0) >= HUMAN_LEVEL).sum())
    result["runs"] = len(normalised)
    return result
