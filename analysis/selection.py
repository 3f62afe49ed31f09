"""Which games the report compares: every method must have every game, or the game is dropped on request."""

from __future__ import annotations

from analysis.method import Method
from iris.errors import ConfigError


def select_games(methods: list[Method], games: str = "all", drop_missing: bool = False) -> tuple[list[str], list[str]]:
    """(games compared, games dropped because some method lacks them). `games` is `all` (every game any method
    has) or a comma list."""
    known = sorted({game for method in methods for game in method.scores})
    if games == "all":
        wanted = known
    else:
        wanted = [game.strip() for game in games.split(",") if game.strip()]
        unknown = [game for game in wanted if game not in known]
        if unknown or not wanted:
            raise ConfigError(f"unknown game(s) {', '.join(unknown) or '(none given)'}; "
                              f"the methods have: {', '.join(known)}")
    missing = {method.name: [game for game in wanted if game not in method.scores] for method in methods}
    missing = {name: lacking for name, lacking in missing.items() if lacking}
    if missing and not drop_missing:
        listing = "; ".join(f"{name} lacks {', '.join(lacking)}" for name, lacking in missing.items())
        raise ConfigError(f"games missing for some methods: {listing}; pass --drop-missing to leave those games out, "
                          f"or choose methods (--baselines) and games (--games)")
    dropped = sorted({game for lacking in missing.values() for game in lacking})
    kept = [game for game in wanted if game not in dropped]
    if not kept:
        raise ConfigError(f"no game is shared by all methods ({', '.join(m.name for m in methods)}): "
                          f"nothing to compare")
    return kept, dropped
