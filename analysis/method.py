"""One method's results, whatever their source: raw final scores per game, and training histories when known."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from iris.errors import ConfigError

History = dict[int, float]  # env steps -> test return of one run


@dataclass
class Method:
    name: str
    scores: dict[str, np.ndarray]  # game -> raw final score of each run
    source: str  # where the scores came from, as the report names it
    histories: dict[str, list[History]] = field(default_factory=dict)  # game -> one history per run

    def runs(self, games: list[str]) -> int:
        """Runs per game over `games`; the stratified bootstrap needs the same number on each."""
        counts = {game: len(self.scores[game]) for game in games}
        if len(set(counts.values())) > 1:
            listing = ", ".join(f"{game} {n}" for game, n in counts.items())
            raise ConfigError(f"{self.name} has unequal runs per game ({listing}); the statistics need the same "
                              f"number on every game: finish the runs or choose games with --games")
        return next(iter(counts.values()))


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
