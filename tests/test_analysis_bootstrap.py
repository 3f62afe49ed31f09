"""The vectorised bootstrap against rliable: the same statistic on the same resamples, and intervals that agree
with rliable's own bootstrap (different random draws, so within Monte Carlo error)."""

import numpy as np
import pytest
from rliable import library, metrics

from analysis.aggregates import METRICS, aggregate, resampled_iqm
from analysis.bootstrap import MIN_RUNS, rng_for, run_counts, run_indices
from analysis.improvement import improvement, resampled_improvement
from analysis.profiles import TAUS, profile, resampled_profile
from analysis.timing import Timings

RUNS, GAMES = 5, 6


@pytest.fixture
def scores():
    """Skewed like human-normalised scores, with ties (a game of zeros, as in PrivateEye)."""
    x = np.random.default_rng(1).lognormal(-1, 1, size=(RUNS, GAMES))
    x[:, 0] = 0.0
    return x


def test_counts_are_the_draws_of_each_game_s_runs():
    indices = np.random.default_rng(0).integers(RUNS, size=(50, RUNS, GAMES))
    counts = run_counts(indices)  # (chunk, games, runs)
    assert counts.shape == (50, GAMES, RUNS) and (counts.sum(axis=2) == RUNS).all()
    assert counts[7, 2, 3] == (indices[7, :, 2] == 3).sum()


@pytest.mark.parametrize("name", list(METRICS))
def test_metrics_from_counts_equal_rliable_on_each_resample(scores, name):
    point, resampled = METRICS[name].point, METRICS[name].resampled
    indices = np.random.default_rng(0).integers(RUNS, size=(40, RUNS, GAMES))
    samples = [np.take_along_axis(scores, i, axis=0) for i in indices]
    assert resampled(scores, run_counts(indices)) == pytest.approx([point(s) for s in samples], abs=1e-12)


def test_iqm_from_counts_on_many_runs_with_ties():
    x = np.round(np.random.default_rng(3).normal(size=(100, 26)), 1)  # 2,600 values, many equal
    indices = np.random.default_rng(4).integers(100, size=(8, 100, 26))
    resampled = METRICS["iqm"].resampled
    expected = [metrics.aggregate_iqm(np.take_along_axis(x, i, axis=0)) for i in indices]
    assert resampled(x, run_counts(indices)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("runs, games", [(3, 1), (4, 1), (100, 26)])
def test_iqm_from_counts_on_a_long_chunk(runs, games):
    """Many repetitions at once, so that their cuts spread over many sorted positions; 3 values trim none."""
    x = np.random.default_rng(5).lognormal(size=(runs, games))
    indices = np.random.default_rng(6).integers(runs, size=(300, runs, games))
    expected = [metrics.aggregate_iqm(np.take_along_axis(x, i, axis=0)) for i in indices]
    assert resampled_iqm(x, run_counts(indices)) == pytest.approx(expected, abs=1e-12)


def test_iqm_from_counts_where_a_resample_s_cuts_lie_far_from_the_others():
    """A resample that draws each game's lowest run 100 times has its cuts near sorted position 0, one of the highest
    near 2,600, where the others' lie near 650 and 1,950: the values weighed copy by copy span nearly all positions."""
    x = np.random.default_rng(7).lognormal(size=(100, 26))
    indices = np.random.default_rng(8).integers(100, size=(20, 100, 26))
    indices[3] = x.argmin(axis=0)  # per game, its lowest run, 100 times
    indices[11] = x.argmax(axis=0)
    expected = [metrics.aggregate_iqm(np.take_along_axis(x, i, axis=0)) for i in indices]
    assert resampled_iqm(x, run_counts(indices)) == pytest.approx(expected, abs=1e-12)


def test_aggregate_intervals_match_rliable(scores):
    reps = 3000
    np.random.seed(0)  # rliable draws from NumPy's global generator, whatever random_state says
    _, intervals = library.get_interval_estimates(
        {"x": scores}, lambda s: np.array([m.point(s) for m in METRICS.values()]), reps=reps)
    ours = aggregate(scores, reps, np.random.default_rng(0), Timings())
    for i, name in enumerate(METRICS):
        low, high = intervals["x"][:, i]
        tolerance = 0.1 * (high - low)  # Monte Carlo error of a 2.5% percentile at 3,000 repetitions
        assert ours[name]["low"] == pytest.approx(low, abs=tolerance), name
        assert ours[name]["high"] == pytest.approx(high, abs=tolerance), name
        assert ours[name]["point"] == pytest.approx(METRICS[name].point(scores))


@pytest.fixture
def drawn_pair(scores):
    """Another method's runs, tied with `scores` on a game of zeros; draws of both methods' runs; the win matrix."""
    other = np.random.default_rng(2).lognormal(-1.2, 1, size=(4, GAMES))
    other[:, 0] = 0.0  # ties with `scores` count half
    rng = np.random.default_rng(0)
    x_indices, y_indices = rng.integers(RUNS, size=(30, RUNS, GAMES)), rng.integers(4, size=(30, 4, GAMES))
    wins = (scores.T[:, :, None] > other.T[:, None, :]) + 0.5 * (scores.T[:, :, None] == other.T[:, None, :])
    return other, x_indices, y_indices, wins


def test_improvement_of_each_resample_equals_rliable(scores, drawn_pair):
    other, x_indices, y_indices, wins = drawn_pair
    expected = [metrics.probability_of_improvement(np.take_along_axis(scores, xi, 0), np.take_along_axis(other, yi, 0))
                for xi, yi in zip(x_indices, y_indices)]
    assert resampled_improvement(wins, x_indices, y_indices) == pytest.approx(expected, abs=1e-12)


def test_improvement_in_float32_is_exact(drawn_pair):
    """The report's float32 win matrix gives the very values of float64: halves of small integers."""
    _, x_indices, y_indices, wins = drawn_pair
    single = resampled_improvement(wins.astype(np.float32), x_indices, y_indices)
    assert single.dtype == np.float64 and (single == resampled_improvement(wins, x_indices, y_indices)).all()


def test_improvement_interval_matches_rliable(scores):
    other = np.random.default_rng(2).lognormal(-1.2, 1, size=(4, GAMES))
    np.random.seed(0)
    point, interval = library.get_interval_estimates({"p": [scores, other]}, metrics.probability_of_improvement,
                                                     reps=800)
    ours = improvement(scores, other, 800, np.random.default_rng(0))
    step = 1 / (RUNS * 4 * GAMES)  # the statistic moves in steps of one pair of runs on one game
    assert ours["point"] == pytest.approx(point["p"])
    assert ours["low"] == pytest.approx(interval["p"][0][0], abs=2 * step)
    assert ours["high"] == pytest.approx(interval["p"][1][0], abs=2 * step)


def test_profile_of_each_resample_equals_rliable(scores):
    indices = np.random.default_rng(0).integers(RUNS, size=(20, RUNS, GAMES))
    above = (scores.T[:, :, None] > TAUS).reshape(GAMES * RUNS, len(TAUS)).astype(float)
    expected = [library.score_distributions(np.take_along_axis(scores, i, 0), TAUS) for i in indices]
    assert resampled_profile(above, indices) == pytest.approx(np.array(expected), abs=1e-12)


def test_profile_bands_match_rliable(scores):
    np.random.seed(0)
    points, bands = library.create_performance_profile({"x": scores}, TAUS, reps=2000)
    ours = profile(scores, 2000, np.random.default_rng(0))
    step = 1 / (RUNS * GAMES)
    assert ours["point"] == pytest.approx(points["x"])
    for mine, theirs in ((ours["low"], bands["x"][0]), (ours["high"], bands["x"][1])):
        assert np.abs(mine - theirs).max() <= step + 1e-9
        assert np.mean(np.isclose(mine, theirs)) >= 0.9
    few = profile(scores[:2], 2000, np.random.default_rng(0))  # point only
    assert few["low"] is None and few["point"] == pytest.approx(library.score_distributions(scores[:2], TAUS))


def test_same_seed_same_intervals_other_seed_other_intervals(scores):
    other = scores[::-1] + 0.1
    for estimate in (lambda rng: aggregate(scores, 500, rng, Timings())["iqm"],
                     lambda rng: improvement(scores, other, 500, rng),
                     lambda rng: profile(scores, 500, rng)["low"]):
        first, again, reseeded = (estimate(rng_for(seed, "x")) for seed in (7, 7, 8))
        assert repr(first) == repr(again) and repr(first) != repr(reseeded)


def test_a_method_s_stream_depends_on_its_name_not_on_the_others():
    assert rng_for(0, "IRIS").integers(1 << 30) == rng_for(0, "IRIS").integers(1 << 30)
    assert rng_for(0, "IRIS").integers(1 << 30) != rng_for(0, "DIAMOND").integers(1 << 30)


def test_chunks_cover_exactly_the_repetitions():
    chunks = list(run_indices(np.random.default_rng(0), 1001, 5, 26, per_rep=1 << 18))  # 4 repetitions per chunk
    assert sum(len(c) for c in chunks) == 1001 and len(chunks) == 251


@pytest.mark.parametrize("runs", range(1, MIN_RUNS))
def test_too_few_runs_per_game_give_points_only(scores, runs):
    result = aggregate(scores[:runs], 100, np.random.default_rng(0), Timings())
    assert result["mean"] == {"point": pytest.approx(scores[:runs].mean()), "low": None, "high": None}
    assert result["runs"] == runs
    assert improvement(scores[:runs], scores, 100, np.random.default_rng(0))["low"] is None
    assert profile(scores[:runs], 100, np.random.default_rng(0))["low"] is None
    assert aggregate(scores[:MIN_RUNS], 100, np.random.default_rng(0), Timings())["mean"]["low"] is not None
