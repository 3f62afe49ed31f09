"""The report's tables: built once as cells, rendered as Markdown (tables.md, report.md) and LaTeX (tables.tex,
booktabs). Best entries are bold: per game the highest raw mean, per metric the best point estimate."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.aggregates import METRICS
from analysis.bootstrap import enough_runs, too_few_runs
from analysis.method import Method
from analysis.normalise import has_reference, normalise, references

POINT_ONLY = "†"  # marks methods with too few runs per game for an interval: point estimates only


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]]  # (row, column) of cells to set in bold


def per_game_rows(methods: list[Method], games: list[str]) -> list[dict]:
    """One row per method and game: runs, raw mean and sample standard deviation, normalised mean, and a random
    policy's score (the published reference, or the runs' own measurement for a game without one)."""
    rows = []
    for method in methods:
        for game in games:
            scores = method.scores[game]
            rows.append({
                "method": method.name,
                "game": game,
                "runs": len(scores),
                "random": random_return([method], game)[0],
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
    return name if enough_runs(runs) else name + POINT_ONLY


def point_only_note(runs: dict[str, int]) -> str:
    """Why the methods marked POINT_ONLY have no interval ('' when all have one)."""
    reasons = {}
    for name, n in runs.items():
        if not enough_runs(n):
            reasons.setdefault(too_few_runs(n), []).append(name)
    return " ".join(f"{POINT_ONLY} {', '.join(names)}: {reason}." for reason, names in reasons.items())


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
    for column, metric in enumerate(METRICS if len(names) > 1 else [], start=2):
        points = [aggregates[name][metric]["point"] for name in names]
        best = min(points) if METRICS[metric].lower_is_better else max(points)
        bold |= {(row, column) for row, point in enumerate(points) if point == best}
    superhuman = [aggregates[name]["superhuman"] for name in names]
    if len(names) > 1:
        bold |= {(row, len(METRICS) + 2) for row, n in enumerate(superhuman) if n == max(superhuman)}
    caption = "Aggregate human-normalised scores, point estimate [95% stratified bootstrap interval]"
    note = point_only_note({name: aggregates[name]["runs"] for name in names})
    return Table(f"{caption}. {note}" if note else caption,
                 ["Method", "Runs", *(m.title for m in METRICS.values()), "Games >= human"], rows, bold)


def improvement_table(pairs: list[dict], runs: dict[str, int]) -> Table:
    rows = [[pair["x"], pair["y"], estimate(pair)] for pair in pairs]
    note = point_only_note({name: runs[name] for pair in pairs for name in (pair["x"], pair["y"])})
    caption = "Probability of improvement P(X > Y) [95% stratified independent bootstrap interval]"
    return Table(f"{caption}. {note}" if note else caption, ["X", "Y", "P(X > Y)"], rows, set())


def random_return(methods: list[Method], game: str) -> tuple[float | None, bool]:
    """(a random policy's score on `game`, whether the runs measured it rather than the published reference)."""
    if has_reference(game):
        return references()[game][0], False
    measured = [method.random[game] for method in methods if game in method.random]
    return (float(np.mean(measured)), True) if measured else (None, False)


def per_game_table(methods: list[Method], games: list[str]) -> Table:
    rows, bold, measured = [], set(), []
    for row, game in enumerate(games):
        random, from_runs = random_return(methods, game)
        measured += [game] * from_runs
        human = references().get(game, (None, None))[1]
        means = [float(method.scores[game].mean()) for method in methods]
        cells = [raw_cell(method.scores[game]) for method in methods]
        rows.append([game, number(random), number(human), *cells])
        if len(methods) > 1:
            bold |= {(row, 3 + i) for i, mean in enumerate(means) if mean == max(means)}
    header = ["Game", "Random", "Human", *(m.name for m in methods)]
    caption = "Raw score per game: mean ± sample standard deviation over runs" + (" (best in bold)" if len(methods) > 1
                                                                                    else "")
    if measured:
        caption += (f". Random for {', '.join(measured)}: a uniformly random policy on the runs' own test episodes "
                    f"(eval.json random_policy, mean over runs)")
    return Table(caption, header, rows, bold)


def decimals(*values: float) -> int:
    """Decimals giving the smallest non-zero value two significant digits: at least 1, at most 4."""
    nonzero = [abs(v) for v in values if v]
    return min(4, max(1, 1 - math.floor(math.log10(min(nonzero))))) if nonzero else 1


def raw_cell(scores: np.ndarray) -> str:
    mean = float(scores.mean())
    if len(scores) == 1:
        return number(mean)
    std = float(scores.std(ddof=1))
    places = decimals(mean, std)
    return f"{mean:.{places}f} ± {std:.{places}f}"


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:.{decimals(value)}f}"


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
