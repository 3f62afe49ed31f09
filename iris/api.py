"""The agent's public API: what the infrastructure (benchmark/) calls to describe a config, create a run, train it,
evaluate it and dream with it. Everything else about a run is in its directory (iris/rundir.py), whose spec names
the agent (rundir.AGENT), so that a variant or another agent can stand behind the same calls later."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from iris import rundir
from iris.config import Config
from iris.errors import ConfigError


def describe(cfg: Config) -> dict:
    """The config, its hash and each component's parameter count."""
    from iris.agent import parameter_counts

    return {"config": cfg.to_dict(), "config_hash": cfg.hash(), "parameters": parameter_counts(cfg)}


def check_runnable(cfg: Config, device: bool = True) -> None:
    """What a run of `cfg` needs beyond a valid config (its device on this machine unless device=False, the LPIPS
    weights file where the perceptual term is on): a one-line ConfigError otherwise, before anything is written."""
    from iris.trainer import check_runnable as check

    check(cfg, device)


def disk_needed(cfg: Config) -> rundir.DiskNeed:
    """The most a run of `cfg` writes: its episodes, its checkpoint, the rest."""
    from iris.trainer import disk_needed as needed

    return needed(cfg)


def default_run_dir(root: Path, cfg: Config, preset: str, seed: int) -> Path:
    """runs/GAME-PRESET-seedS: a preset file is named by its stem."""
    return Path(root) / f"{cfg.env.game}-{Path(preset).stem}-seed{seed}"


def create_run(run_dir: Path, cfg: Config, seed: int, preset: str, overrides: list[str],
               extend: bool = False) -> dict:
    """Write (or check) the run's spec.json; returns the spec. extend: allow more training.epochs for an existing
    run (rundir.write_spec). Where it trains, check_runnable first."""
    return rundir.write_spec(run_dir, cfg, seed, preset, overrides, extend)


def train_run(run_dir: Path, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume) the run to its end; returns its final evaluation (eval.json)."""
    from iris.trainer import train

    return train(run_dir, on_epoch)


def evaluate_run(run_dir: Path, episodes: int, seed: int, device: str = "auto") -> dict:
    """`episodes` test episodes of the run's latest checkpoint: returns, lengths and their summary."""
    import numpy as np

    from iris.collect import evaluate
    from iris.trainer import load_agent

    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    agent, cfg, info = load_agent(run_dir, device)
    returns, lengths = evaluate(agent, cfg.env, episodes, cfg.training.eval_temperature, seed, info["device"])
    return {"game": cfg.env.game, "epoch": info["epoch"], "length_mean": float(np.mean(lengths)),
            **rundir.summarize_eval(returns, lengths, info["env_steps"])}


def dream_run(run_dir: Path, gif: Path, episode: int = -1, steps: int = 40, seed: int = 0) -> Path:
    """A GIF of stored episode `episode` (default: the latest) beside the world model's imagined continuation, and
    a PNG of reconstructed frames beside it; returns the PNG's path."""
    from iris.dream import write_dream
    from iris.episodes import EpisodeStore
    from iris.trainer import load_agent

    agent, _, info = load_agent(run_dir)
    episodes = EpisodeStore(Path(run_dir) / "episodes").episodes + info["in_progress"]  # finished ones first
    if not -len(episodes) <= episode < len(episodes):
        raise ConfigError(f"--episode {episode} is out of range: the run has {len(episodes)} episodes")
    png = gif.with_name(gif.stem + "_reconstructions.png")
    write_dream(agent, episodes[episode], gif, png, steps=steps, seed=seed)
    return png
