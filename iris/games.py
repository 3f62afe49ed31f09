"""Game names: the 26 Atari 100k games and the built-in Catch, spelled one way (no emulator needed to check them)."""

from __future__ import annotations

import difflib

from iris.errors import ConfigError

ATARI_100K = [
    "Alien", "Amidar", "Assault", "Asterix", "BankHeist", "BattleZone", "Boxing", "Breakout", "ChopperCommand",
    "CrazyClimber", "DemonAttack", "Freeway", "Frostbite", "Gopher", "Hero", "Jamesbond", "Kangaroo", "Krull",
    "KungFuMaster", "MsPacman", "Pong", "PrivateEye", "Qbert", "RoadRunner", "Seaquest", "UpNDown",
]
GAMES = [*ATARI_100K, "Catch"]
_CANONICAL = {g.lower(): g for g in GAMES}


def check_game(name: str) -> str:
    """The canonical spelling of a known game (case-insensitive), or a ConfigError with close names."""
    if name.lower() in _CANONICAL:
        return _CANONICAL[name.lower()]
    close = difflib.get_close_matches(name, GAMES, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(GAMES)}"
    raise ConfigError(f"unknown game {name!r}; {hint}")


def resolve_games(spec: str) -> list[str]:
    """'all' (the 26 Atari 100k games) or a comma list of game names."""
    if spec.strip().lower() == "all":
        return list(ATARI_100K)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise ConfigError(f"no game in {spec!r}; give 'all' or a comma list such as Pong,Breakout")
    return [check_game(n) for n in names]
