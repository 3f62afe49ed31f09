"""One method's results, whatever their source: raw final scores per game, and what its runs measured besides
(seeds, training histories, the random policy's return, the cost of each run) when known."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from iris.errors import ConfigError

History = dict[int, float]  # env steps -> test return (or training seconds) of one run


@dataclass
class RunCost:
    """What one run cost: its wall time and where it ran ('unknown' where the run did not record it)."""
    hours: float
    device: str = "unknown"  # cpu or cuda
    device_name: str = "unknown"
    precision: str = "unknown"


@dataclass
class Method:
    name: str
    scores: dict[str, np.ndarray]  # game -> raw final score of each run
    source: str  # where the scores came from, as the report names it
    histories: dict[str, list[History]] = field(default_factory=dict)  # game -> one history per run
    seeds: dict[str, list[str]] = field(default_factory=dict)  # game -> each run's seed (default: its index)
    clocks: dict[str, list[History]] = field(default_factory=dict)  # game -> per run, env steps -> training seconds
    random: dict[str, float] = field(default_factory=dict)  # game -> a random policy's return, measured by the runs
    costs: list[RunCost] = field(default_factory=list)
    published: bool = False  # a shipped baseline, not one of the methods under study

    def runs(self, games: list[str]) -> int:
        """Runs per game over `games`; the stratified bootstrap needs the same number on each."""
        counts = {game: len(self.scores[game]) for game in games}
        if len(set(counts.values())) > 1:
            listing = ", ".join(f"{game} {n}" for game, n in counts.items())
            raise ConfigError(f"{self.name} has unequal runs per game ({listing}); the statistics need the same "
                              f"number on every game: finish the runs or choose games with --games")
        return next(iter(counts.values()))

    def run_seeds(self, game: str) -> list[str]:
        return self.seeds.get(game) or [str(i) for i in range(len(self.scores[game]))]


def as_scores(values: list, where: str) -> np.ndarray:
    """Validate one game's scores: a non-empty list of finite numbers (numbers in text are accepted)."""
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: expected a non-empty list of scores, got {values!r}")
    scores = []
    for value in values:
        try:
            if isinstance(value, bool):
                raise ValueError
            score = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: score {value!r} is not a number") from None
        if not math.isfinite(score):
            raise ConfigError(f"{where}: score {value!r} is not finite")
        scores.append(score)
    return np.asarray(scores)
