"""The report's tables: built once as cells, rendered as Markdown (tables.md, report.md) and LaTeX (tables.tex,
booktabs). Best entries are bold: per game the highest raw mean, per metric the best point estimate."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.aggregates import METRICS
from analysis.method import Method
from analysis.normalise import has_reference, normalise, references

POINT_ONLY = "†"  # marks methods with a single value per game: point estimates, no interval
METRIC_TITLES = {"mean": "Mean", "median": "Median", "iqm": "IQM", "optimality_gap": "Optimality gap"}
LOWER_IS_BETTER = {"optimality_gap"}


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]]  # (row, column) of cells to set in bold


def per_game_rows(methods: list[Method], games: list[str]) -> list[dict]:
    """One row per method and game: runs, raw mean and sample standard deviation, normalised mean."""
    rows = []
    for method in methods:
        for game in games:
            scores = method.scores[game]
            rows.append({
                "method": method.name,
                "game": game,
                "runs": len(scores),
                "raw_mean": float(scores.mean()),
                "raw_std": float(scores.std(ddof=1)) if len(scores) > 1 else None,
                "normalised_mean": float(normalise(game, scores).mean()) if has_reference(game) else None,
            })
    return rows


def write_per_game_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def display_name(name: str, runs: int) -> str:
    return name + POINT_ONLY if runs == 1 else name


def estimate(entry: dict) -> str:
    if entry["low"] is None:
        return f"{entry['point']:.3f}"
    return f"{entry['point']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def aggregates_table(aggregates: dict) -> Table:
    names = list(aggregates)
    rows = [[display_name(name, aggregates[name]["runs"]), str(aggregates[name]["runs"]),
             *(estimate(aggregates[name][metric]) for metric in METRICS), str(aggregates[name]["superhuman"])]
            for name in names]
    bold = set()
    for column, metric in enumerate(METRICS, start=2):
        points = [aggregates[name][metric]["point"] for name in names]
        best = min(points) if metric in LOWER_IS_BETTER else max(points)
        bold |= {(row, column) for row, point in enumerate(points) if point == best}
    superhuman = [aggregates[name]["superhuman"] for name in names]
    bold |= {(row, len(METRICS) + 2) for row, n in enumerate(superhuman) if n == max(superhuman)}
    return Table("Aggregate human-normalised scores, point estimate [95% stratified bootstrap interval]",
                 ["Method", "Runs", *METRIC_TITLES.values(), "Games >= human"], rows, bold)


def improvement_table(focus: str, improvements: dict) -> Table:
    rows = [[focus, other, estimate(entry)] for other, entry in improvements.items()]
    return Table(f"Probability of improvement P({focus} > Y) [95% interval]", ["X", "Y", "P(X > Y)"], rows, set())


def per_game_table(methods: list[Method], games: list[str]) -> Table:
    rows, bold = [], set()
    for row, game in enumerate(games):
        random, human = references().get(game, (None, None))
        means = [float(method.scores[game].mean()) for method in methods]
        cells = [raw_cell(method.scores[game]) for method in methods]
        rows.append([game, number(random), number(human), *cells])
        bold |= {(row, 3 + i) for i, mean in enumerate(means) if mean == max(means)}
    header = ["Game", "Random", "Human", *(display_name(m.name, len(m.scores[games[0]])) for m in methods)]
    return Table("Raw score per game: mean ± sample standard deviation over runs (best in bold)", header, rows, bold)


def raw_cell(scores: np.ndarray) -> str:
    return f"{scores.mean():.1f} ± {scores.std(ddof=1):.1f}" if len(scores) > 1 else f"{scores.mean():.1f}"


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def to_markdown(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    rows = [[f"**{cell}**" if (r, c) in table.bold else cell for c, cell in enumerate(row)]
            for r, row in enumerate(table.rows)]
    aligns = ["---"] + ["---:"] * (len(table.header) - 1)
    return "\n".join([f"**{table.caption}**", "", line(table.header), line(aligns), *map(line, rows)])


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 POINT_ONLY: r"$^\dagger$", "±": r"$\pm$", "–": "--", ">=": r"$\geq$", ">": "$>$", "<": "$<$"}


LATEX_PATTERN = re.compile("|".join(map(re.escape, sorted(LATEX_SPECIAL, key=len, reverse=True))))


def latex_escape(text: str) -> str:
    """One pass, so a replacement is never escaped again."""
    return LATEX_PATTERN.sub(lambda match: LATEX_SPECIAL[match.group()], text)


def to_latex(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return " & ".join(cells) + r" \\"

    rows = [[rf"\textbf{{{latex_escape(cell)}}}" if (r, c) in table.bold else latex_escape(cell)
             for c, cell in enumerate(row)] for r, row in enumerate(table.rows)]
    return "\n".join([
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\caption{{{latex_escape(table.caption)}}}",
        r"\begin{tabular}{l" + "r" * (len(table.header) - 1) + "}",
        r"\toprule", line([latex_escape(cell) for cell in table.header]), r"\midrule",
        *map(line, rows),
        r"\bottomrule", r"\end{tabular}", r"\end{table}",
    ])
