"""Reports for papers: several campaigns side by side, every studied pair, runs.csv round trips, honest small
reports (titles, intervals or why not, digits, the measured random policy, captions), costs, and `plan`."""

import csv
import json

import numpy as np
import pytest

from analysis.aggregates import aggregate
from analysis.method import Method
from analysis.plan import expected_widths, plan, power
from analysis.report import write_report
from analysis.scorefiles import read_score_file
from analysis.sources import load_methods
from analysis.timing import Timings
from benchmark.cli import main
from iris.config import resolve
from iris.rundir import append_metrics, atomic_write_json, read_json, write_eval, write_spec, write_status

CPU = {"device": "cpu", "device_name": "Test CPU", "precision": "fp32", "torch_threads": 2}


def make_campaign(root, name, games, seeds, score, runtime=CPU, random=None, epochs=3):
    """Finished runs: test returns at each epoch, `time` = 600 s an epoch, eval.json with the runtime fields."""
    for game in games:
        for seed in seeds:
            run_dir = root / name / game / f"s{seed}"
            write_spec(run_dir, resolve("tiny", [], game), seed, "tiny", [])
            for epoch in range(1, epochs + 1):
                append_metrics(run_dir, {"epoch": epoch, "env_steps": 100 * epoch, "time": 600.0 * epoch,
                                         "test/return_mean": score(game, seed) * epoch / epochs})
            extra = {"runtime": runtime} if runtime else {}
            if random is not None:
                extra["random_policy"] = {"episodes": 256, "mean": random}
            final = score(game, seed)
            write_eval(run_dir, [final - 0.01, final + 0.01], [7, 7], 100 * epochs, **extra)
            write_status(run_dir, state="finished", **extra)
    planned = read_json(root / name / "campaign.json") or {"runs": []}  # the plan `run` writes: its runs
    atomic_write_json(root / name / "campaign.json",
                      {"runs": [*planned["runs"], *(f"{g}/s{s}" for g in games for s in seeds)]})


def score_a(game, seed):
    return {"Pong": -10.0 + 5 * seed, "Breakout": 20.0 + 3 * seed}[game]


def score_b(game, seed):
    return score_a(game, seed) + 20


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    make_campaign(root, "a", ("Pong", "Breakout"), (0, 1, 2), score_a)
    make_campaign(root, "b", ("Pong", "Breakout"), (0, 1, 2), score_b, runtime=None)
    return root


def test_repeated_options_accumulate(root, tmp_path):
    scores = [tmp_path / "X.json", tmp_path / "Y.json"]
    for i, path in enumerate(scores):
        path.write_text(json.dumps({"Pong": [1.0 + i, 2.0, 3.0], "Breakout": [5.0, 6.0 + i, 7.0]}))
    out = tmp_path / "out"
    assert main(["report", "--campaign", "a", "--campaign", "b=IRIS-ours", "--runs-root", str(root),
                 "--scores", str(scores[0]), "--scores", str(scores[1]), "--baselines", "IRIS",
                 "--baselines", "DIAMOND", "--games", "Pong", "--games", "Breakout", "--reps", "50",
                 "--out", str(out)]) == 0
    assert list(json.loads((out / "aggregates.json").read_text())) == ["a", "IRIS-ours", "X", "Y", "IRIS", "DIAMOND"]
    assert main(["report", "--campaign", "a,b=B", "--runs-root", str(root), "--baselines", "none", "--reps", "50",
                 "--out", str(out)]) == 0
    assert list(json.loads((out / "aggregates.json").read_text())) == ["a", "B"]


def test_every_pair_with_a_studied_method_is_compared(root, tmp_path):
    methods = load_methods(["a", "b"], root, baselines="IRIS,DIAMOND")
    write_report(tmp_path / "out", methods, drop_missing=True, reps=200)
    pairs = json.loads((tmp_path / "out" / "improvement.json").read_text())["pairs"]
    assert [(p["x"], p["y"]) for p in pairs] == [("a", "b"), ("a", "IRIS"), ("a", "DIAMOND"), ("b", "IRIS"),
                                                 ("b", "DIAMOND")]  # not IRIS vs DIAMOND: both published
    a_vs_b = pairs[0]
    assert a_vs_b["point"] < 0.5 and a_vs_b["high"] < 0.5  # b is 20 points better on every run
    tables = (tmp_path / "out" / "tables.md").read_text()
    assert "| a | b |" in tables and "| b | DIAMOND |" in tables
    assert "| Game | Random | Human | a | b | IRIS | DIAMOND |" in tables


def test_runs_csv_reads_back_as_the_same_methods(root, tmp_path):
    methods = load_methods(["a", "b=B"], root, baselines="STORM", score_files=[])
    write_report(tmp_path / "out", methods, drop_missing=True, reps=50)
    with open(tmp_path / "out" / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (3 + 3 + 5) and set(rows[0]) == {"method", "game", "seed", "score", "normalised"}
    back = {m.name: m for m in read_score_file(tmp_path / "out" / "runs.csv")}
    assert list(back) == ["a", "B", "STORM"]
    for method in methods:
        for game in ("Pong", "Breakout"):
            assert list(back[method.name].scores[game]) == list(method.scores[game])
            assert back[method.name].run_seeds(game) == method.run_seeds(game)
    assert back["a"].run_seeds("Pong") == ["0", "1", "2"]
    again = tmp_path / "again"
    assert main(["report", "--scores", str(tmp_path / "out" / "runs.csv"), "--baselines", "none", "--reps", "50",
                 "--seed", "0", "--out", str(again)]) == 0
    assert (json.loads((again / "aggregates.json").read_text())["a"]["mean"]
            == json.loads((tmp_path / "out" / "aggregates.json").read_text())["a"]["mean"])


def test_campaigns_with_different_games(root, tmp_path):
    make_campaign(root, "c", ("Pong",), (0, 1, 2), score_a)
    with pytest.raises(Exception, match="c lacks Breakout.*--drop-missing"):
        write_report(tmp_path / "out", load_methods(["a", "c"], root, baselines="none"), reps=10)
    write_report(tmp_path / "out", load_methods(["a", "c"], root, baselines="none"), drop_missing=True, reps=10)
    assert "Games compared (1): Pong." in (tmp_path / "out" / "report.md").read_text()


def catch_score(game, seed):
    return [-0.8, -0.74][seed]


def test_a_two_seed_catch_report_is_honest(tmp_path, capsys):
    root = tmp_path / "runs"
    make_campaign(root, "demo", ("Catch",), (0, 1), catch_score, random=-0.75)
    out = tmp_path / "out"
    assert main(["report", "--campaign", "demo", "--runs-root", str(root), "--baselines", "none", "--reps", "100",
                 "--out", str(out)]) == 0
    assert "0/0" not in capsys.readouterr().err  # no progress bar for zero items
    report = (out / "report.md").read_text()
    assert report.startswith("# Report: Catch\n") and "Atari 100k" not in report
    assert "| Catch | -0.75 | – | -0.770 ± 0.042 |" in report  # the measured random policy; enough digits
    assert "Random for Catch: a uniformly random policy on the runs' own test episodes" in report
    assert "no band: 2 runs: too few for a bootstrap interval" in report
    assert "dashed: a random policy's return (-0.75), measured by the runs" in report
    with open(out / "per_game.csv") as f:
        (row,) = csv.DictReader(f)
    assert float(row["random"]) == -0.75


def test_intervals_and_band_captions_from_three_runs(root, tmp_path):
    write_report(tmp_path / "out", load_methods(["a"], root, baselines="none"), reps=200)
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.startswith("# Atari 100k report: 2 of its 26 games\n")
    assert "band: 95% stratified bootstrap interval (200 repetitions) over its 3 runs per game" in report
    assert "†" not in report.split("## Aggregate metrics")[1].split("## ")[0].replace("(marked †)", "")


def test_costs_measured_and_quoted(root, tmp_path):
    methods = load_methods(["a", "b"], root, baselines="IRIS,DIAMOND,STORM,SPR")
    write_report(tmp_path / "out", methods, drop_missing=True, reps=50)
    costs = {row["method"]: row for row in json.loads((tmp_path / "out" / "costs.json").read_text())}
    assert costs["a"]["runs"] == 6 and costs["a"]["hours_per_run"] == pytest.approx(0.5)  # 3 epochs x 600 s
    assert costs["a"]["total_hours"] == pytest.approx(3.0) and costs["a"]["unit"] == "CPU-hours"
    assert costs["a"]["device"] == "Test CPU (cpu, fp32)" and costs["a"]["source"] == "measured"
    assert costs["b"]["device"] == "unknown" and costs["b"]["unit"] == "hours"  # older runs: no runtime
    assert costs["IRIS"]["hours_per_run"] == 84.0 and costs["IRIS"]["source"].startswith("quoted: ")
    assert costs["STORM"]["hours_per_run"] == 4.3 and "SPR" not in costs  # no cost quoted for SPR here
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Costs" in report and "## Wall-clock efficiency" in report
    assert (tmp_path / "out" / "wall_clock.png").read_bytes().startswith(b"\x89PNG")


def synthetic(runs, games, rng, spread=0.3):
    """Human-normalised runs of known spread: game g's mean g / games, normal noise of `spread`."""
    return np.arange(games) / games + spread * rng.standard_normal((runs, games))


def test_predicted_width_matches_simulated_campaigns():
    rng = np.random.default_rng(0)
    pilot = synthetic(400, 8, rng)  # a large pilot: its spread is the true one
    predicted = expected_widths(pilot, 5, sims=100, reps=400, rng=rng)
    observed = {name: [] for name in predicted}
    for _ in range(150):  # campaigns drawn from the true distribution, bootstrapped as the report does
        result = aggregate(synthetic(5, 8, rng), 400, rng, Timings())
        for name in observed:
            observed[name].append(result[name]["high"] - result[name]["low"])
    for name, widths in observed.items():
        assert predicted[name] == pytest.approx(np.mean(widths), rel=0.1), name
    assert expected_widths(pilot, 10, 50, 400, rng)["iqm"] < 0.8 * predicted["iqm"]  # more seeds, narrower
    assert expected_widths(pilot, 2, 50, 400, rng)["iqm"] is None  # too few runs for an interval


def test_power_grows_with_the_effect_and_with_seeds():
    rng = np.random.default_rng(1)
    baseline = synthetic(5, 8, rng)
    assert power(baseline, baseline, 5, 100, 300, rng) <= 0.15  # no difference: rarely excluded
    better = baseline + 0.1
    assert power(better, baseline, 3, 100, 300, rng) < power(better, baseline, 10, 100, 300, rng)
    assert power(better, baseline, 10, 100, 300, rng) >= 0.9


def test_plan_with_a_stated_effect_and_measured_costs(root):
    pilot = load_methods(["a"], root, baselines="none")[0]
    baseline = Method("B", {g: s + 0.0 for g, s in pilot.scores.items()}, "test")
    rows = plan(pilot, ["Pong", "Breakout"], [3, 6], 0.5, baseline, effect=0.9, sims=40, reps=200)
    assert [r.seeds for r in rows] == [3, 6] and [r.hours for r in rows] == [3.0, 6.0]
    assert rows[1].power >= rows[0].power and rows[1].widths["iqm"] < rows[0].widths["iqm"]


def test_cli_plan(root, tmp_path, iris_bench):
    out = tmp_path / "plan"
    printed = iris_bench("plan", "--games", "Pong,Breakout", "--seeds", "2,3,5", "--pilot", "a", "--runs-root", root,
                         "--baseline", "IRIS", "--sims", "20", "--reps", "100", "--out", out).stdout
    assert "Cost: 0.5 CPU-hours per run, measured on the pilot's 6 runs." in printed
    assert "| 2 | – | – | – | – | – | 2.0 |" in printed  # 2 seeds: no interval, no power
    assert "2 runs: too few for a bootstrap interval" in printed
    assert (out / "plan.png").read_bytes().startswith(b"\x89PNG") and (out / "plan.pdf").exists()
    assert [row["seeds"] for row in json.loads((out / "plan.json").read_text())] == [2, 3, 5]
    bad = iris_bench("plan", "--games", "Pong", "--seeds", "3,x", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("iris-bench: error: --seeds: a comma list of numbers")
    bad = iris_bench("plan", "--games", "Pong", "--effect", "0.7", check=False)
    assert "--effect is the difference to detect against a --baseline" in bad.stderr
    bad = iris_bench("plan", "--games", "Pong", "--like", "all", check=False)
    assert bad.stderr == "iris-bench: error: --like names one published method, got 'all'\n"
