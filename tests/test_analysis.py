"""analysis/: published aggregates reproduced, a report from a campaign's run directories, and bad input."""

import csv
import json
import re

import numpy as np
import pytest

from analysis.aggregates import aggregate
from analysis.rundir_source import read_campaign
from analysis.curves import method_curves
from analysis.normalise import normalise, normalised_matrix, references
from analysis.published import BASELINES, baseline_names, load_baseline
from analysis.report import write_report
from analysis.scorefiles import read_score_file
from analysis.sources import load_methods
from analysis.timing import Timings
from benchmark.cli import main
from iris.errors import ConfigError
from iris.config import resolve
from iris.rundir import append_metrics, atomic_write_json, read_json, write_eval, write_spec

ATARI = sorted(references())

# From data/atari100k/SOURCES.md: mean, median, IQM, optimality gap, games at or above human (None: not given).
PUBLISHED = {
    "IRIS": (1.046, 0.289, 0.501, 0.512, 10),
    "DIAMOND": (1.459, 0.373, 0.641, 0.480, 11),
    "SimPLe": (0.332, 0.134, 0.130, 0.729, 1),
    "SPR": (0.616, 0.396, 0.337, 0.577, None),
    "DrQ(eps)": (0.465, 0.313, 0.280, 0.631, None),
    "DER": (0.350, 0.189, 0.183, 0.698, None),
    "BBF": (2.236, 0.879, 1.033, 0.340, 12),  # computed from its first 52 runs per game (SOURCES.md)
    "Simulus": (1.645, 0.982, 0.990, 0.412, 13),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_aggregates_are_reproduced(name):
    method = load_baseline(name)
    result = aggregate(normalised_matrix(method.scores, ATARI), 100, np.random.default_rng(0), Timings())
    mean, median, iqm, gap, superhuman = PUBLISHED[name]
    points = [round(result[m]["point"], 3) for m in ("mean", "median", "iqm", "optimality_gap")]
    assert points == [mean, median, iqm, gap]
    if superhuman is not None:
        assert result["superhuman"] == superhuman
    assert all(result[m]["low"] <= result[m]["point"] <= result[m]["high"] for m in ("mean", "iqm"))


def test_every_shipped_baseline_loads_with_all_26_games():
    for name in BASELINES:
        method = load_baseline(name)
        assert sorted(method.scores) == ATARI, name
        assert len({len(s) for s in method.scores.values()}) == 1, name


def test_curl_s_normalised_records_come_back_as_raw_scores():
    curl = load_baseline("CURL")
    assert len(curl.scores["Pong"]) == 100
    assert normalise("Pong", curl.scores["Pong"])[0] == pytest.approx(0.0849858357)  # its first record's HNS
    assert normalised_matrix(curl.scores, ATARI).mean() == pytest.approx(0.261, abs=5e-4)  # rliable's CURL mean


def test_baseline_names_ignore_case_and_punctuation():
    assert baseline_names("iris,delta-iris,drq_eps,DRQ(EPS)") == ["IRIS", "Delta-IRIS", "DrQ(eps)", "DrQ(eps)"]
    assert baseline_names("none") == [] and baseline_names("all") == list(BASELINES)


# A small campaign: 3 seeds on Pong, Breakout and Catch (no human reference), one run unfinished.
GAMES = ("Pong", "Breakout", "Catch")
SEEDS = (0, 1, 2)


def final_score(game, seed):
    return {"Pong": -10.0 + 5 * seed, "Breakout": 20.0 + 3 * seed, "Catch": 0.5 + 0.2 * seed}[game]


def make_run(root, game, seed, finished=True):
    run_dir = root / "camp" / game / f"s{seed}"
    write_spec(run_dir, resolve("tiny", [], game), seed, "tiny", [])
    plan = read_json(root / "camp" / "campaign.json") or {"runs": []}
    atomic_write_json(root / "camp" / "campaign.json", {"runs": [*plan["runs"], f"{game}/s{seed}"]})
    for epoch in (1, 2, 3, 4):
        row = {"epoch": epoch, "env_steps": 100 * epoch}
        if epoch % 2 == 0:  # evaluation epochs
            row["test/return_mean"] = final_score(game, seed) * epoch / 4
        append_metrics(run_dir, row)
    if finished:
        write_eval(run_dir, [final_score(game, seed) - 1, final_score(game, seed) + 1], [10, 10], 400)


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    for game in GAMES:
        for seed in SEEDS:
            make_run(root, game, seed)
    make_run(root, "Pong", 9, finished=False)
    return root


@pytest.fixture
def other_csv(tmp_path):
    """A second method on the same games, as a long CSV, with 2 runs each."""
    path = tmp_path / "other.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "game", "seed", "score"])
        for game in GAMES:
            for seed in (0, 1):
                writer.writerow(["Other", game, seed, final_score(game, seed) + 2])
    return path


def test_campaign_reads_finished_runs_with_their_histories(runs_root):
    method = read_campaign(runs_root, "camp")
    assert method.name == "camp"
    assert sorted(method.scores) == sorted(GAMES)
    assert sorted(method.scores["Pong"]) == [final_score("Pong", s) for s in SEEDS]  # s9 is unfinished
    assert sorted(h[400] for h in method.histories["Breakout"]) == [final_score("Breakout", s) for s in SEEDS]
    assert all(set(h) == {200, 400} for h in method.histories["Catch"])


def test_curves_aggregate_normalised_games_and_keep_raw_games_apart(runs_root):
    method = read_campaign(runs_root, "camp")
    curves = method_curves(method, list(GAMES), 200, np.random.default_rng(0))
    iqm, catch = curves
    assert iqm.label == "IQM of 2 games (human-normalised)" and list(iqm.steps) == [200, 400]
    final = normalised_matrix({g: method.scores[g] for g in ("Pong", "Breakout")}, ["Pong", "Breakout"])
    assert iqm.point[1] == pytest.approx(np.sort(final.ravel())[1:5].mean())  # 6 values: trim 1 each side
    assert catch.label == "Catch (raw return)"
    assert list(catch.point) == pytest.approx([np.mean([final_score("Catch", s) / 2 for s in SEEDS]),
                                               np.mean([final_score("Catch", s) for s in SEEDS])])
    assert np.all(catch.low <= catch.point) and np.all(catch.point <= catch.high)


def test_report_from_a_campaign_and_a_score_file(runs_root, other_csv, tmp_path):
    out = tmp_path / "report"
    methods = load_methods(["camp"], runs_root, score_files=[other_csv], baselines="none")
    write_report(out, methods, reps=300, seed=0)

    aggregates = json.loads((out / "aggregates.json").read_text())
    assert list(aggregates) == ["camp", "Other"]
    camp = aggregates["camp"]
    expected = normalised_matrix({g: np.array([final_score(g, s) for s in SEEDS]) for g in GAMES[:2]}, list(GAMES[:2]))
    assert camp["mean"]["point"] == pytest.approx(expected.mean())
    assert camp["runs"] == 3 and aggregates["Other"]["runs"] == 2
    assert camp["superhuman"] == int((expected.mean(axis=0) >= 1).sum())
    for metric in ("mean", "median", "iqm", "optimality_gap"):
        assert camp[metric]["low"] <= camp[metric]["point"] <= camp[metric]["high"]

    with open(out / "per_game.csv") as f:
        rows = {(r["method"], r["game"]): r for r in csv.DictReader(f)}
    assert len(rows) == 6
    assert float(rows["camp", "Catch"]["raw_mean"]) == pytest.approx(np.mean([final_score("Catch", s) for s in SEEDS]))
    assert rows["camp", "Catch"]["normalised_mean"] == ""  # no human reference: raw only
    assert float(rows["camp", "Pong"]["normalised_mean"]) == pytest.approx(expected[:, 0].mean())

    (pair,) = json.loads((out / "improvement.json").read_text())["pairs"]
    assert (pair["x"], pair["y"]) == ("camp", "Other") and pair["point"] < 0.5  # Other scores 2 more everywhere
    assert pair["low"] is None  # Other has 2 runs: too few for an interval

    for figure in ("aggregates", "probability_of_improvement", "performance_profiles", "per_game", "sample_efficiency"):
        assert (out / f"{figure}.png").read_bytes().startswith(b"\x89PNG"), figure
        assert (out / f"{figure}.pdf").read_bytes().startswith(b"%PDF"), figure

    report = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert len(links) >= 12 and all((out / link).exists() for link in links)
    assert "reported as raw scores only" in report and "Catch" in report
    assert all(block in report for block in (out / "tables.md").read_text().strip().split("\n\n"))
    check_latex(out / "tables.tex")


def check_latex(path):
    """Well-formed booktabs tables: balanced environments, every row as wide as its column spec, bold best."""
    tex = path.read_text()
    for env in ("table", "tabular"):
        assert tex.count(rf"\begin{{{env}}}") == tex.count(rf"\end{{{env}}}") == 3
    for spec, body in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", tex, re.S):
        assert [line for line in body.splitlines() if "rule" in line] == [r"\toprule", r"\midrule", r"\bottomrule"]
        rows = [line for line in body.splitlines() if line.endswith(r"\\")]
        assert rows and all(row.count("&") == len(spec) - 1 for row in rows)
    assert r"\textbf{" in tex and "_" not in tex.replace(r"\_", "")


def test_missing_games_are_an_error_unless_dropped(runs_root, tmp_path):
    methods = load_methods(["camp"], runs_root, baselines="IRIS")
    with pytest.raises(ConfigError, match="IRIS lacks Catch.*--drop-missing"):
        write_report(tmp_path / "out", methods, reps=10)
    methods = load_methods(["camp"], runs_root, baselines="IRIS")
    aggregates = write_report(tmp_path / "out", methods, drop_missing=True, reps=50)
    assert set(aggregates) == {"camp", "IRIS"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Games compared (2): Breakout, Pong." in report
    assert "dropped because some method lacks them (--drop-missing): Alien, Amidar," in report and "Catch" in report


def test_only_raw_games_give_raw_tables_and_no_aggregates(runs_root, tmp_path):
    methods = load_methods(["camp"], runs_root, baselines="none")
    aggregates = write_report(tmp_path / "out", methods, games="Catch", reps=50)
    assert aggregates == {"camp": {"runs": 3}}
    assert "no human-normalised aggregates" in (tmp_path / "out" / "report.md").read_text()
    assert (tmp_path / "out" / "sample_efficiency.png").exists() and not (tmp_path / "out" / "aggregates.png").exists()


def write_json(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_json_score_file_is_one_method_named_after_the_file(tmp_path):
    (method,) = read_score_file(write_json(tmp_path / "Mine.json", {"Pong": [1, 2.5], "Breakout": [3, 4]}))
    assert method.name == "Mine" and method.runs(["Pong", "Breakout"]) == 2
    assert list(method.scores["Pong"]) == [1.0, 2.5]


@pytest.mark.parametrize("scores, message", [
    ({"Pong": [1.0, float("nan")]}, r"Pong: score nan is not finite"),
    ({"Pong": [1.0, "abc"]}, r"Pong: score 'abc' is not a number"),
    ({"Pong": []}, r"Pong: expected a non-empty list of scores"),
    ({"Pong": [True]}, r"Pong: score True is not a number"),
])
def test_bad_scores_in_a_json_file(tmp_path, scores, message):
    with pytest.raises(ConfigError, match=message):
        read_score_file(write_json(tmp_path / "bad.json", scores))


def test_bad_csv_score_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("method,game,seed,score\nA,Pong,0,1.5\nA,Pong,1,oops\n")
    with pytest.raises(ConfigError, match=r"bad.csv:3: score 'oops' is not a number"):
        read_score_file(path)
    path.write_text("method,game,score\nA,Pong,1\n")
    with pytest.raises(ConfigError, match="columns method,game,seed,score"):
        read_score_file(path)


@pytest.mark.parametrize("rows, message", [
    ("A,Pong,0,1\nA,Pong,00,2\n", r"bad.csv:3: A Pong seed 0 appears twice"),
    ("A,Pong,-1,1\n", r"bad.csv:2: bad seed '-1': expected a non-negative integer"),
    ("A,Pong,x,1\n", r"bad.csv:2: bad seed 'x'"),
    ("A,Pongg,0,1\n", r"bad.csv:2: unknown game 'Pongg'; did you mean Pong"),
])
def test_csv_seeds_and_games_are_checked(tmp_path, rows, message):
    path = tmp_path / "bad.csv"
    path.write_text("method,game,seed,score\n" + rows)
    with pytest.raises(ConfigError, match=message):
        read_score_file(path)
    with pytest.raises(ConfigError, match=r"bad.json: unknown game 'Pongg'"):
        read_score_file(write_json(tmp_path / "bad.json", {"Pongg": [1.0]}))


def test_unknown_baseline_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown baseline 'Dreamer'; choose from IRIS, DIAMOND, .*, all, or none"):
        load_methods(baselines="IRIS,Dreamer")


def test_empty_and_unknown_campaigns(tmp_path):
    make_run(tmp_path / "runs", "Pong", 0, finished=False)
    with pytest.raises(ConfigError, match="campaign 'camp' has no finished runs"):
        read_campaign(tmp_path / "runs", "camp")
    with pytest.raises(ConfigError, match="no campaign 'other' under .*; found: camp"):
        read_campaign(tmp_path / "runs", "other")


def test_unknown_game_and_unequal_runs(runs_root, tmp_path):
    methods = load_methods(["camp"], runs_root, baselines="none")
    with pytest.raises(ConfigError, match="unknown game.*Pongg.*the methods have: Breakout, Catch, Pong"):
        write_report(tmp_path / "out", methods, games="Pong,Pongg")
    (runs_root / "camp" / "Pong" / "s2" / "eval.json").unlink()
    methods = load_methods(["camp"], runs_root, baselines="none")
    with pytest.raises(ConfigError, match=r"camp has unequal runs per game \(Breakout 3, Catch 3, Pong 2\)"):
        write_report(tmp_path / "out", methods)


def test_cli_report_and_its_one_line_errors(runs_root, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["report", "--campaign", "camp", "--runs-root", str(runs_root), "--baselines", "IRIS,DIAMOND",
            "--games", "Pong,Breakout", "--reps", "50", "--seed", "3", "--timing", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "bootstrap: iqm" in printed and "figures: performance profiles" in printed and "total" in printed
    assert list(json.loads((out / "aggregates.json").read_text())) == ["camp", "IRIS", "DIAMOND"]

    assert main(["report", "--campaign", "camp", "--runs-root", str(runs_root), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("iris-bench: error: games missing for some methods")
