"""The report's figures, each saved as PNG and PDF. rliable draws the interval plots, profiles, probability of
improvement and sample-efficiency curves; seaborn the per-game heatmap. Headless: matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from rliable import plot_utils  # noqa: E402

from analysis.aggregates import METRICS  # noqa: E402
from analysis.curves import Curve  # noqa: E402
from analysis.profiles import TAUS  # noqa: E402

NORMALISED = "Human-normalised score"


def method_colors(names: list[str]) -> dict:
    palette = sns.color_palette("colorblind" if len(names) <= 10 else "tab20", len(names))
    return dict(zip(names, palette))


def save(fig: plt.Figure, out: Path, name: str) -> str:
    for suffix in (".png", ".pdf"):
        fig.savefig(out / f"{name}{suffix}", bbox_inches="tight", dpi=150)
    plt.close(fig)
    return f"{name}.png"


def bounds(entry: dict) -> list:
    """[low, high], or the point twice where there is no interval (drawn as a line)."""
    return [entry["point"], entry["point"]] if entry["low"] is None else [entry["low"], entry["high"]]


def plot_aggregates(aggregates: dict, colors: dict, out: Path) -> str:
    points = {name: np.array([result[m]["point"] for m in METRICS]) for name, result in aggregates.items()}
    intervals = {name: np.array([bounds(result[m]) for m in METRICS]).T for name, result in aggregates.items()}
    row_height = max(0.37, 2.0 / len(aggregates))
    fig, axes = plot_utils.plot_interval_estimates(
        points, intervals, [m.title for m in METRICS.values()], algorithms=list(reversed(aggregates)), colors=colors,
        row_height=row_height, xlabel=NORMALISED, xlabel_y_coordinate=-0.6 / (row_height * len(aggregates)))
    for ax in axes:
        ax.use_sticky_edges = False  # bars' edges would pin a point estimate without an interval to the frame
        ax.margins(x=0.08)
        ax.grid(False, axis="y")
    return save(fig, out, "aggregates")


def plot_profiles(profiles: dict, colors: dict, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bands = {name: (p["low"], p["high"]) for name, p in profiles.items() if p["low"] is not None}
    plot_utils.plot_performance_profiles({name: p["point"] for name, p in profiles.items()}, TAUS,
                                         performance_profile_cis=bands, colors=colors, ax=ax,
                                         xlabel=r"Human-normalised score ($\tau$)", labelsize="large",
                                         ticklabelsize="large")
    ax.legend(loc="upper right", fontsize="small", ncol=2)
    return save(fig, out, "performance_profiles")


def plot_improvement(pairs: list[dict], out: Path) -> str:
    fig, ax = plt.subplots(figsize=(4, 0.4 * len(pairs) + 1))
    entries = {f"{e['x']},{e['y']}": e for e in reversed(pairs)}  # first on top
    plot_utils.plot_probability_of_improvement({pair: e["point"] for pair, e in entries.items()},
                                               {pair: bounds(e) for pair, e in entries.items()}, ax=ax)
    ax.set_xlim(0, 1)
    return save(fig, out, "probability_of_improvement")


def plot_per_game(rows: list[dict], out: Path) -> str:
    """Heatmap of each method's mean normalised score per game; 1 (human) is the neutral colour."""
    frame = pd.DataFrame([r for r in rows if r["normalised_mean"] is not None])
    table = frame.pivot(index="game", columns="method", values="normalised_mean")[frame["method"].unique()]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * table.shape[1], 1.0 + 0.35 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt=".2f", cmap="vlag", center=1.0, vmin=0.0, vmax=2.0, ax=ax,
                annot_kws={"fontsize": 7}, cbar_kws={"label": f"{NORMALISED} (clipped at 2)"})
    ax.set(xlabel="", ylabel="")
    return save(fig, out, "per_game")


def plot_curves(curves: list[Curve], colors: dict, out: Path, wall_clock: bool = False) -> str:
    """Each aggregate against env steps (or, `wall_clock`, against the runs' mean training hours): a line, its
    bootstrap band where there is one, and a dashed random-policy line where the runs measured it."""
    labels = list(dict.fromkeys(c.label for c in curves))
    fig, axes = plt.subplots(1, len(labels), figsize=(6 * len(labels), 4.5), squeeze=False)
    for ax, label in zip(axes[0], labels):
        for c in (c for c in curves if c.label == label):
            band = (c.point, c.point) if c.low is None else (c.low, c.high)
            plot_utils.plot_sample_efficiency_curve(c.hours if wall_clock else c.steps, {c.method: c.point},
                                                    {c.method: band}, colors=colors, ax=ax,
                                                    xlabel="Training hours" if wall_clock else "Env steps",
                                                    ylabel=label, labelsize="large", ticklabelsize="large")
            if c.random is not None:
                ax.axhline(c.random, color=colors[c.method], linestyle="--", linewidth=1,
                           label=f"{c.method}: random policy")
        ax.legend(fontsize="small")
    return save(fig, out, "wall_clock" if wall_clock else "sample_efficiency")


def plot_plan(rows: list, unit: str, out: Path) -> str:
    """Expected 95% interval widths (left axis) and the campaign's hours (right axis) against seeds."""
    fig, ax = plt.subplots(figsize=(6, 4))
    seeds = [row.seeds for row in rows]
    for metric, entry in METRICS.items():
        widths = [row.widths[metric] for row in rows]
        if any(w is not None for w in widths):
            ax.plot(seeds, [np.nan if w is None else w for w in widths], marker="o", label=f"{entry.title} interval width")
    ax.set(xlabel="Seeds per game", ylabel="Expected 95% interval width", xticks=seeds)
    hours = ax.twinx()
    hours.plot(seeds, [row.hours for row in rows], color="black", linestyle="--", marker="s", label=unit)
    hours.set_ylabel(unit)
    hours.grid(False)
    lines = ax.get_legend_handles_labels()[0] + hours.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize="small", loc="upper left",
              bbox_to_anchor=(1.15, 1))
    return save(fig, out, "plan")
