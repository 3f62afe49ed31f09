"""The paper's tables and figures from any set of methods (a campaign, score files, published baselines).

    write_report(out, methods, games="all", drop_missing=False, reps=50_000, seed=0)

writes aggregates.json, improvement.json, per_game.csv, tables.md, tables.tex, figures (PNG + PDF) and
report.md, which shows them all. The first method is the one the probability of improvement is about.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from analysis.aggregates import aggregate
from analysis.bootstrap import rng_for
from analysis.curves import method_curves
from analysis.improvement import improvement
from analysis.method import Method
from analysis.normalise import has_reference, normalised_matrix
from analysis.profiles import PROFILE_REPS, profile
from analysis.selection import select_games
from analysis.tables import (POINT_ONLY, aggregates_table, improvement_table, per_game_rows, per_game_table,
                             to_latex, to_markdown, write_per_game_csv)
from analysis.timing import Timings
from iris.errors import ConfigError

SECTIONS = (AGGREGATES, IMPROVEMENT, PROFILES, PER_GAME, CURVES) = (
    "Aggregate metrics", "Probability of improvement", "Performance profiles", "Per-game scores", "Sample efficiency")
LATEX_PREAMBLE = ("% needs \\usepackage{booktabs}; "
                  "wrap a wide tabular in \\resizebox{\\textwidth}{!}{...} (graphicx)\n\n")


def write_report(out: Path, methods: list[Method], games: str = "all", drop_missing: bool = False,
                 reps: int = 50_000, seed: int = 0, timings: Timings | None = None) -> dict:
    """Write the report into `out`; returns the aggregates (also in aggregates.json)."""
    timings = timings or Timings()
    if not methods:
        raise ConfigError("nothing to report: give a campaign, score files or baselines")
    names = [method.name for method in methods]
    shared = sorted({name for name in names if names.count(name) > 1})
    if shared:
        raise ConfigError(f"several methods are named {', '.join(shared)}; rename the campaign or score file, "
                          f"or leave that baseline out")
    if reps < 1:
        raise ConfigError(f"bootstrap repetitions must be at least 1, got {reps}")
    games, dropped = select_games(methods, games, drop_missing)
    runs = {method.name: method.runs(games) for method in methods}
    normalisable = [game for game in games if has_reference(game)]
    normalised = {m.name: normalised_matrix(m.scores, normalisable) for m in methods} if normalisable else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    aggregates = {name: {"runs": runs[name]} for name in names}
    for name in tqdm(normalised, desc="bootstrap: aggregates", unit="method"):
        aggregates[name] = aggregate(normalised[name], reps, rng_for(seed, name), timings)
    focus, others = methods[0], methods[1:]
    with timings.phase("bootstrap: probability of improvement"):
        # A rank statistic per game: raw scores serve, so games without a human reference count too.
        raw = {m.name: np.stack([m.scores[g] for g in games], axis=1) for m in methods}
        improvements = {
            other.name: improvement(raw[focus.name], raw[other.name], reps, rng_for(seed, focus.name, other.name))
            for other in tqdm(others, desc="bootstrap: improvement", unit="pair")}
    with timings.phase("bootstrap: performance profiles"):
        profiles = {name: profile(normalised[name], reps, rng_for(seed, name, "profile")) for name in normalised}
    with timings.phase("bootstrap: sample-efficiency curves"):
        curves = [c for m in methods for c in method_curves(m, games, reps, rng_for(seed, m.name, "curves"))]

    with timings.phase("tables"):
        rows = per_game_rows(methods, games)
        write_per_game_csv(out / "per_game.csv", rows)
        json_dump(out / "aggregates.json", aggregates)
        json_dump(out / "improvement.json", {"x": focus.name, "y": improvements})
        tables = {AGGREGATES: aggregates_table(aggregates) if normalised else None,
                  IMPROVEMENT: improvement_table(focus.name, improvements) if improvements else None,
                  PER_GAME: per_game_table(methods, games)}
        tables = {title: table for title, table in tables.items() if table is not None}
        (out / "tables.md").write_text("\n\n".join(map(to_markdown, tables.values())) + "\n")
        (out / "tables.tex").write_text(LATEX_PREAMBLE + "\n\n".join(map(to_latex, tables.values())) + "\n")
    figures = write_figures(out, names, aggregates if normalised else {}, improvements, focus.name, profiles, rows,
                            curves, timings)
    with timings.phase("report.md"):
        (out / "report.md").write_text(report_markdown(methods, runs, games, dropped, normalisable, reps, seed,
                                                       tables, figures))
    return aggregates


def write_figures(out: Path, names: list[str], aggregates: dict, improvements: dict, focus: str, profiles: dict,
                  rows: list[dict], curves: list, timings: Timings) -> dict[str, str]:
    """{section: PNG file} of the figures the inputs allow (normalised ones need a game with a reference)."""
    with timings.phase("figures: import matplotlib"):
        import seaborn as sns

        from analysis import figures
    colors = figures.method_colors(names)
    plots = {
        AGGREGATES: (bool(aggregates), lambda: figures.plot_aggregates(aggregates, colors, out)),
        IMPROVEMENT: (bool(improvements), lambda: figures.plot_improvement(focus, improvements, out)),
        PROFILES: (bool(profiles), lambda: figures.plot_profiles(profiles, colors, out)),
        PER_GAME: (bool(profiles), lambda: figures.plot_per_game(rows, out)),
        CURVES: (bool(curves), lambda: figures.plot_curves(curves, colors, out)),
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


def report_markdown(methods: list[Method], runs: dict, games: list[str], dropped: list[str], normalisable: list[str],
                    reps: int, seed: int, tables: dict, figures: dict[str, str]) -> str:
    raw_only = [game for game in games if game not in normalisable]
    lines = ["# Atari 100k report", "", "| Method | Runs per game | Source |", "| --- | ---: | --- |"]
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
        f"(performance-profile bands: {min(reps, PROFILE_REPS):,}), seed {seed}. IQM: 25% trimmed mean over all runs "
        f"and games; optimality gap: threshold 1 (human). {POINT_ONLY}: a single value per game was published, "
        f"so point estimates only." + (f" Probability of improvement: P({methods[0].name} > Y) over the games "
                                        f"compared." if len(methods) > 1 else ""),
    ]
    for section in SECTIONS:
        if section in figures or section in tables:
            lines += ["", f"## {section}"]
        if section in figures:
            png = figures[section]
            lines += ["", f"![{section}]({png}) ([PDF]({png.removesuffix('.png')}.pdf))"]
        if section in tables:
            lines += ["", to_markdown(tables[section])]
    lines += ["", "Per method and game: [per_game.csv](per_game.csv); LaTeX tables: [tables.tex](tables.tex)."]
    return "\n".join(lines) + "\n"
