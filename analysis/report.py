"""The paper's tables and figures from any set of methods (campaigns, score files, published baselines).

    write_report(out, methods, games="all", drop_missing=False, reps=50_000, seed=0)

writes aggregates.json, improvement.json, per_game.csv, runs.csv (one row per run; `--scores` reads it back),
costs.json, tables.md, tables.tex, figures (PNG + PDF) and report.md, which shows them all. The probability of
improvement is computed for every pair of methods in which the first is one under study (a campaign or score
file; with none, the first method) and the second comes after it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from analysis.aggregates import aggregate
from analysis.bootstrap import MIN_RUNS, keep_freed_memory, rng_for, too_few_runs
from analysis.cache import cached
from analysis.costs import cost_rows, cost_table
from analysis.curves import method_curves
from analysis.improvement import improvement
from analysis.method import Method
from analysis.normalise import has_reference, normalised_matrix, references
from analysis.profiles import PROFILE_REPS, profile
from analysis.scorefiles import write_runs_csv
from analysis.selection import select_games
from analysis.tables import (POINT_ONLY, aggregates_table, improvement_table, per_game_rows, per_game_table,
                             to_latex, to_markdown, write_per_game_csv)
from analysis.timing import Timings
from iris.errors import ConfigError

SECTIONS = (AGGREGATES, IMPROVEMENT, PROFILES, PER_GAME, CURVES, WALL_CLOCK, COSTS) = (
    "Aggregate metrics", "Probability of improvement", "Performance profiles", "Per-game scores", "Sample efficiency",
    "Wall-clock efficiency", "Costs")
LATEX_PREAMBLE = ("% needs \\usepackage{booktabs}; "
                  "wrap a wide tabular in \\resizebox{\\textwidth}{!}{...} (graphicx)\n\n")


def in_parallel(work: Callable, items: list, cost: Callable, desc: str, unit: str) -> list:
    """[work(item) for item in items] on one thread per CPU core this process may use (NumPy releases the GIL;
    each item has its own random stream, so the results do not depend on the threads), with a progress bar on a
    terminal, never for zero items. The costliest items go first, so that no core is left idle at the end while
    another finishes a large one."""
    order = sorted(range(len(items)), key=lambda i: -cost(items[i]))
    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        done = dict(zip(order, tqdm(pool.map(lambda i: work(items[i]), order), total=len(items), desc=desc,
                                    unit=unit, disable=None if items else True)))
    return [done[i] for i in range(len(items))]


def compared_pairs(methods: list[Method]) -> list[tuple[Method, Method]]:
    studied = [m for m in methods if not m.published] or methods[:1]
    return [(x, y) for i, x in enumerate(methods) if x in studied for y in methods[i + 1:]]


def write_report(out: Path, methods: list[Method], games: str = "all", drop_missing: bool = False,
                 reps: int = 50_000, seed: int = 0, timings: Timings | None = None) -> dict:
    """Write the report into `out`; returns the aggregates (also in aggregates.json)."""
    timings = timings or Timings()
    if not methods:
        raise ConfigError("nothing to report: give a campaign, score files or baselines")
    names = [method.name for method in methods]
    shared = sorted({name for name in names if names.count(name) > 1})
    if shared:
        raise ConfigError(f"several methods are named {', '.join(shared)}; label a campaign (--campaign NAME=LABEL), "
                          f"rename the score file, or leave that baseline out")
    if reps < 1:
        raise ConfigError(f"bootstrap repetitions must be at least 1, got {reps}")
    games, dropped = select_games(methods, games, drop_missing)
    runs = {method.name: method.runs(games) for method in methods}
    normalisable = [game for game in games if has_reference(game)]
    normalised = {m.name: normalised_matrix(m.scores, normalisable) for m in methods} if normalisable else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()

    aggregates = {name: {"runs": runs[name]} for name in names}
    aggregates |= dict(zip(normalised, in_parallel(
        lambda name: cached("aggregates", (name, normalised[name], normalisable, reps, seed),
                            lambda: aggregate(normalised[name], reps, rng_for(seed, name), timings)),
        list(normalised), lambda name: normalised[name].size, "bootstrap: aggregates", "method")))
    with timings.phase("bootstrap: probability of improvement"):
        # A rank statistic per game: raw scores serve, so games without a human reference count too.
        raw = {m.name: np.stack([m.scores[g] for g in games], axis=1) for m in methods}
        compared = [(x.name, y.name) for x, y in compared_pairs(methods)]
        results = in_parallel(
            lambda pair: cached("improvement", (pair, raw[pair[0]], raw[pair[1]], games, reps, seed),
                                lambda: improvement(raw[pair[0]], raw[pair[1]], reps, rng_for(seed, *pair))),
            compared, lambda pair: raw[pair[0]].size + raw[pair[1]].size, "bootstrap: improvement", "pair")
        pairs = [{"x": x, "y": y, **result} for (x, y), result in zip(compared, results)]
    with timings.phase("bootstrap: performance profiles"):
        profiles = dict(zip(normalised, in_parallel(
            lambda name: profile(normalised[name], reps, rng_for(seed, name, "profile")), list(normalised),
            lambda name: normalised[name].size, "bootstrap: profiles", "method")))
    with timings.phase("bootstrap: sample-efficiency curves"):
        curves = [c for m in methods for c in method_curves(m, games, reps, rng_for(seed, m.name, "curves"))]

    with timings.phase("tables"):
        rows = per_game_rows(methods, games)
        write_per_game_csv(out / "per_game.csv", rows)
        write_runs_csv(out / "runs.csv", methods, games)
        costs = cost_rows(methods)
        json_dump(out / "aggregates.json", aggregates)
        json_dump(out / "improvement.json", {"pairs": pairs})
        json_dump(out / "costs.json", costs)
        tables = {AGGREGATES: aggregates_table(aggregates) if normalised else None,
                  IMPROVEMENT: improvement_table(pairs, runs) if pairs else None,
                  PER_GAME: per_game_table(methods, games),
                  COSTS: cost_table(costs) if costs else None}
        tables = {title: table for title, table in tables.items() if table is not None}
        (out / "tables.md").write_text("\n\n".join(map(to_markdown, tables.values())) + "\n")
        (out / "tables.tex").write_text(LATEX_PREAMBLE + "\n\n".join(map(to_latex, tables.values())) + "\n")
    figures = write_figures(out, names, aggregates if normalised else {}, pairs, profiles, rows, curves, timings)
    with timings.phase("report.md"):
        (out / "report.md").write_text(report_markdown(methods, runs, games, dropped, normalisable, reps, seed,
                                                       tables, figures, curves))
    return aggregates


def write_figures(out: Path, names: list[str], aggregates: dict, pairs: list[dict], profiles: dict,
                  rows: list[dict], curves: list, timings: Timings) -> dict[str, str]:
    """{section: PNG file} of the figures the inputs allow (normalised ones need a game with a reference)."""
    with timings.phase("figures: import matplotlib"):
        import seaborn as sns

        from analysis import figures
    colors = figures.method_colors(names)
    timed = [c for c in curves if c.hours is not None]
    plots = {
        AGGREGATES: (bool(aggregates), lambda: figures.plot_aggregates(aggregates, colors, out)),
        IMPROVEMENT: (bool(pairs), lambda: figures.plot_improvement(pairs, out)),
        PROFILES: (bool(profiles), lambda: figures.plot_profiles(profiles, colors, out)),
        PER_GAME: (bool(profiles), lambda: figures.plot_per_game(rows, out)),
        CURVES: (bool(curves), lambda: figures.plot_curves(curves, colors, out)),
        WALL_CLOCK: (bool(timed), lambda: figures.plot_curves(timed, colors, out, wall_clock=True)),
    }
    drawn = {}
    with sns.axes_style("whitegrid"):
        for section, (possible, plot) in plots.items():
            if possible:
                with timings.phase(f"figures: {section.lower()}"):
                    drawn[section] = plot()
    return drawn


def json_dump(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def report_title(games: list[str]) -> str:
    if set(games) == set(references()):
        return "Atari 100k report"
    if set(games) <= set(references()):
        return f"Atari 100k report: {len(games)} of its {len(references())} games"
    return f"Report: {', '.join(games)}" if len(games) <= 4 else f"Report: {len(games)} games"


def curves_caption(curves: list, reps: int) -> str:
    """What the lines and bands of the curves are, over how many runs."""
    parts = []
    for c in curves:
        what = "IQM" if c.label.startswith("IQM") else "mean"
        band = (f"band: 95% stratified bootstrap interval ({reps:,} repetitions) over its {c.runs} runs per game"
                if c.low is not None else f"no band: {too_few_runs(c.runs)}")
        random = f"; dashed: a random policy's return ({c.random:.3g}), measured by the runs" if c.random is not None \
            else ""
        parts.append(f"{c.method}, {c.label}: line, the {what} over {c.runs} runs per game at each evaluation; "
                     f"{band}{random}.")
    return " ".join(parts)


def report_markdown(methods: list[Method], runs: dict, games: list[str], dropped: list[str], normalisable: list[str],
                    reps: int, seed: int, tables: dict, figures: dict[str, str], curves: list) -> str:
    raw_only = [game for game in games if game not in normalisable]
    lines = [f"# {report_title(games)}", "", "| Method | Runs per game | Source |", "| --- | ---: | --- |"]
    lines += [f"| {m.name} | {runs[m.name]} | {m.source} |" for m in methods]
    lines += ["", f"Games compared ({len(games)}): {', '.join(games)}."]
    if dropped:
        lines.append(f"Games dropped because some method lacks them (--drop-missing): {', '.join(dropped)}.")
    if raw_only:
        lines.append(f"Games without a human reference, reported as raw scores only (not in the human-normalised "
                     f"aggregates, profiles and per-game figure): {', '.join(raw_only)}.")
    if not normalisable:
        lines.append("No compared game has a human reference: there are no human-normalised aggregates.")
    lines += [
        "",
        f"Intervals: 95% stratified percentile bootstrap over the runs of each game, {reps:,} repetitions "
        f"(performance-profile bands: {min(reps, PROFILE_REPS):,}), seed {seed}, for methods with at least "
        f"{MIN_RUNS} runs per game; fewer give point estimates only (marked {POINT_ONLY}). IQM: 25% trimmed mean "
        f"over all runs and games; optimality gap: threshold 1 (human)."
        + (" Probability of improvement P(X > Y): over the games compared, for each pair whose X is a method under "
           "study." if len(methods) > 1 else ""),
    ]
    captions = {CURVES: curves_caption(curves, reps),
                WALL_CLOCK: "The same curves against the mean training hours the runs took to reach each point "
                            "(metrics.jsonl `time`)."}
    for section in SECTIONS:
        if section in figures or section in tables:
            lines += ["", f"## {section}"]
        if section in figures:
            png = figures[section]
            lines += ["", f"![{section}]({png}) ([PDF]({png.removesuffix('.png')}.pdf))"]
            if section in captions:
                lines += ["", captions[section]]
        if section in tables:
            lines += ["", to_markdown(tables[section])]
    lines += ["", "Per method and game: [per_game.csv](per_game.csv); per run: [runs.csv](runs.csv) "
                  "(`iris-bench report --scores runs.csv` reads it back); LaTeX tables: [tables.tex](tables.tex)."]
    return "\n".join(lines) + "\n"
