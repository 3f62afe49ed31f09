"""Performance profiles: the fraction of runs (over all games) with a normalised score above each threshold tau,
with 95% stratified bootstrap bands. The profile is rliable's score distribution (`library.score_distributions`,
checked against it in tests; not imported here: rliable.library imports arch and with it ~0.4 s of a report); a
resample only re-weights the runs, so each repetition is run counts @ (score > tau).
"""

from __future__ import annotations

import numpy as np

from analysis.bootstrap import enough_runs, percentile_interval, run_counts, run_indices

TAUS = np.linspace(0.0, 8.0, 81)  # the range rliable's Atari 100k profiles use
PROFILE_REPS = 2_000  # rliable's default for profiles: a band in a figure needs no more (and costs reps x runs x taus)


def profile(normalised: np.ndarray, reps: int, rng: np.random.Generator, taus: np.ndarray = TAUS) -> dict:
    """{point, low, high}: arrays over `taus` for one method's (runs, games) normalised scores, bands from at most
    PROFILE_REPS repetitions; too few runs per game (bootstrap.enough_runs) give the profile only (low and high
    None)."""
    runs, games = normalised.shape
    above = (normalised.T[:, :, None] > taus).reshape(games * runs, len(taus)).astype(float)  # (game, run) rows
    result = {"point": above.mean(axis=0), "low": None, "high": None}
    if enough_runs(runs):
        draws = run_indices(rng, min(reps, PROFILE_REPS), runs, games, per_rep=games * (runs + len(taus)))
        replicates = np.concatenate([resampled_profile(above, indices) for indices in draws])
        result["low"], result["high"] = percentile_interval(replicates)
    return result


def resampled_profile(above: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(chunk, taus) fraction of resampled runs above each tau, from `above` ((game, run) rows x taus, 0/1) and
    the runs drawn (chunk, runs, games)."""
    chunk, runs, games = indices.shape
    return run_counts(indices).reshape(chunk, games * runs) @ above / (runs * games)
