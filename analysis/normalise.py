"""Human-normalised scores: (score - random) / (human - random), with the references the published results used.

Games without a human reference (the suite's toy game Catch, say) cannot be normalised: they are reported raw.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

ATARI100K_DIR = Path(__file__).parent / "data" / "atari100k"


@functools.cache
def references() -> dict[str, tuple[float, float]]:
    """game -> (random score, human score)."""
    human = json.loads((ATARI100K_DIR / "HUMAN.json").read_text())
    random = json.loads((ATARI100K_DIR / "RANDOM.json").read_text())
    return {game: (random[game][0], human[game][0]) for game in human}


def has_reference(game: str) -> bool:
    return game in references()


def normalise(game: str, scores: np.ndarray) -> np.ndarray:
    random, human = references()[game]
    return (scores - random) / (human - random)


def score(game: str, returns: np.ndarray) -> np.ndarray:
    """The score a report aggregates: human-normalised where the game has a reference, else the raw return."""
    return normalise(game, returns) if has_reference(game) else returns


def denormalise(game: str, normalised: np.ndarray) -> np.ndarray:
    random, human = references()[game]
    return normalised * (human - random) + random


def normalised_matrix(scores: dict[str, np.ndarray], games: list[str]) -> np.ndarray:
    """(runs, games) human-normalised scores of one method, from its raw scores per game."""
    return np.stack([normalise(game, scores[game]) for game in games], axis=1)
