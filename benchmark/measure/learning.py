"""How fast a preset learns a game: for each seed, the minutes of training (wall time from the run's start,
periodic evaluations included) and the env steps until a periodic test return first reaches the threshold, then
that checkpoint's mean return over a larger evaluation on fresh test episodes, so one lucky evaluation does not
count (`iris-bench perf --learn GAME --seeds 0-4`)."""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmark.measure.rows import Row
from iris import api
from iris.collect import evaluate
from iris.config import resolve
from iris.errors import ConfigError
from iris.trainer import Trainer
from iris.vocabulary import ENV_STEPS, TEST_RETURN

CONFIRM_SEED = 10**6  # test episodes no periodic evaluation of a run of seed < 10**6 plays


def parse_seeds(text: str) -> list[int]:
    """`0-4` or `0,2,5`."""
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: a range like 0-4 or a comma list like 0,2,5, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds: one or more seeds of 0 or more, got {text!r}")
    return seeds


def learn(run_dir: Path, threshold: float, confirm_episodes: int) -> dict:
    """Train until a periodic test return reaches `threshold` (or the schedule ends); what it took."""
    start = time.perf_counter()
    trainer = Trainer(run_dir)
    epochs, rows = trainer.cfg.training.epochs, []
    while trainer.epoch < epochs:
        trainer.train(on_epoch=rows.append, max_epochs=1)  # the epoch's metrics row, as the trainer logs it
        row = rows[-1]
        if row.get(TEST_RETURN, -math.inf) >= threshold:
            minutes = (time.perf_counter() - start) / 60
            returns, _ = evaluate(trainer.agent.eval(), trainer.cfg.env, confirm_episodes,
                                  trainer.cfg.training.eval_temperature, CONFIRM_SEED + trainer.seed, trainer.device)
            return {"minutes": minutes, "env_steps": row[ENV_STEPS], "epoch": row["epoch"],
                    "confirmed": float(np.mean(returns))}
    return {"minutes": math.nan, "env_steps": math.nan, "epoch": epochs, "confirmed": math.nan}


def time_to_threshold(preset: str, game: str | None, overrides: list[str], seeds: list[int], threshold: float,
                      confirm_episodes: int) -> tuple[list[Row], str]:
    if confirm_episodes < 1:
        raise ConfigError(f"--confirm must be 1 or more episodes, got {confirm_episodes}")
    cfg = resolve(preset, overrides, game)
    api.check_runnable(cfg)
    rows: list[Row] = []
    results = []
    with tempfile.TemporaryDirectory(prefix="iris-learn-") as tmp:
        for seed in seeds:
            run_dir = Path(tmp) / f"s{seed}"
            api.create_run(run_dir, cfg, seed, preset, overrides)
            with contextlib.redirect_stdout(sys.stderr):  # the epochs' progress; stdout is the figures (--json)
                result = learn(run_dir, threshold, confirm_episodes)
            results.append(result)
            rows += [(f"seed {seed}: minutes to {threshold:g}", result["minutes"], "min"),
                     (f"seed {seed}: env steps to {threshold:g}", result["env_steps"], "env steps"),
                     (f"seed {seed}: that checkpoint over {confirm_episodes} fresh test episodes", result["confirmed"],
                      "mean return")]
    reached = [r for r in results if math.isfinite(r["minutes"])]
    rows.append(("seeds that reached it", len(reached), f"of {len(seeds)}"))
    if reached:
        rows.append(("slowest seed that reached it", max(r["minutes"] for r in reached), "min"))
        rows.append(("median over the seeds that reached it", float(np.median([r["minutes"] for r in reached])), "min"))
    setting = (f"preset {preset}, game {cfg.env.game}, threshold {threshold:g} (a periodic test return: every "
               f"{cfg.training.eval_every} epochs over {cfg.training.eval_episodes} episodes), "
               f"{torch.get_num_threads()} torch threads")
    return rows, setting
