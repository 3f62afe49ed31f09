"""bf16 autocast against fp32, for each component: the loss on the same batches from the same weights, then `steps`
training steps from the same weights on the same batches in each precision (the loss curves side by side).

A temporary run is filled with episodes of the untrained policy. Before each component's run in each precision the
weights, optimisers, random generators and token cache are put back to one snapshot, so the two precisions see the
same batches and the same imagination draws until their numbers part."""

from __future__ import annotations

import copy
import io
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from benchmark.measure.rows import Row
from iris import rundir
from iris.config import resolve
from iris.trainer import Trainer

PRECISIONS = ("fp32", "bf16")


def loss_curves(preset: str, game: str | None, overrides: list[str], steps: int) -> dict[str, dict[str, list[float]]]:
    """{component: {precision: [loss of training step 1..steps]}}; step 1's loss is the loss of the shared weights."""
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [*overrides, "training.precision=fp32"]
        cfg = resolve(preset, overrides, game)
        rundir.write_spec(Path(tmp), cfg, seed=0, preset=preset, overrides=overrides)
        with redirect_stdout(io.StringIO()):
            trainer = Trainer(Path(tmp))
            trainer.collect(max(cfg.training.collect_steps, 4 * cfg.world_model.max_blocks, 4 * cfg.actor_critic.burn_in))
        start = copy.deepcopy(trainer.state_dict())
        curves: dict[str, dict[str, list[float]]] = {}
        for component in trainer.components:
            curves[component.name] = {}
            for precision in PRECISIONS:
                trainer.load_state_dict(copy.deepcopy(start))  # weights, optimisers, generators, store: as at the start
                trainer.use_precision(precision == "bf16")
                curves[component.name][precision] = [trainer.update(component, 1)[f"{component.name}/loss"]
                                                     for _ in range(steps)]
        return curves


def precision_rows(curves: dict[str, dict[str, list[float]]]) -> list[Row]:
    rows: list[Row] = []
    for name, by in curves.items():
        fp32, bf16 = (np.asarray(by[p]) for p in PRECISIONS)
        tail = max(1, len(fp32) // 10)
        rows += [(f"{name}: first loss fp32", fp32[0], ""), (f"{name}: first loss bf16", bf16[0], ""),
                 (f"{name}: first loss, bf16 vs fp32", 100 * (bf16[0] / fp32[0] - 1), "%"),
                 (f"{name}: mean of the last {tail} losses fp32", fp32[-tail:].mean(), ""),
                 (f"{name}: mean of the last {tail} losses bf16", bf16[-tail:].mean(), ""),
                 (f"{name}: last losses, bf16 vs fp32", 100 * (bf16[-tail:].mean() / fp32[-tail:].mean() - 1), "%")]
    return rows


def plot_curves(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2))
    for ax, (name, by) in zip(axes, curves.items()):
        for precision in PRECISIONS:
            ax.plot(np.arange(1, len(by[precision]) + 1), by[precision], label=precision, lw=1)
        ax.set(title=name.replace("_", " "), xlabel="training step", ylabel="loss")
        ax.legend(frameon=False)
    fig.suptitle("the same weights and batches, fp32 against bf16 autocast")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
