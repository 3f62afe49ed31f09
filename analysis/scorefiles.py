"""Score files: the published JSON `{game: [score per run]}` (the method is the file's name) and a long CSV
`method,game,seed,score` (any number of methods; other columns are ignored, so a report's runs.csv, which adds
`normalised`, reads back). Also rliable's human-normalised records `[{game, seed, HNS}, ...]` (CURL is published
that way), turned back into raw scores with the same references.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from analysis.method import Method, as_scores
from analysis.normalise import denormalise, has_reference, normalise, references
from iris.errors import ConfigError

CSV_COLUMNS = ("method", "game", "seed", "score")


def read_score_file(path: Path, name: str | None = None) -> list[Method]:
    """The methods in one score file; a JSON file's method is `name`, or else the file's stem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"score file {path} does not exist")
    if path.suffix == ".json":
        return [read_score_json(path, name or path.stem)]
    if path.suffix == ".csv":
        return read_score_csv(path)
    raise ConfigError(f"score file {path}: unknown format {path.suffix!r}; use .json ({{game: [scores]}}) "
                      f"or .csv ({','.join(CSV_COLUMNS)})")


def read_score_json(path: Path, name: str) -> Method:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"score file {path}: not valid JSON ({e})") from None
    if isinstance(data, list):
        return Method(name, read_normalised_records(path, data), str(path))
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"score file {path}: expected {{game: [score per run]}}")
    return Method(name, {check_game(game, str(path)): as_scores(values, f"{path}: {game}") for game, values in data.items()},
                  str(path))


def read_normalised_records(path: Path, records: list) -> dict[str, np.ndarray]:
    by_game = defaultdict(list)
    for record in records:
        if not isinstance(record, dict) or not {"game", "HNS"} <= record.keys():
            raise ConfigError(f"score file {path}: expected {{game: [score per run]}} or records with game and HNS, "
                              f"got {record!r}")
        by_game[record["game"]].append(record["HNS"])
    for game in by_game:
        if not has_reference(game):
            raise ConfigError(f"score file {path}: {game} has normalised scores but no human reference to undo them")
    return {game: denormalise(game, as_scores(values, f"{path}: {game}")) for game, values in by_game.items()}


def read_score_csv(path: Path) -> list[Method]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(CSV_COLUMNS) <= set(reader.fieldnames):
            raise ConfigError(f"score file {path}: the header must hold the columns {','.join(CSV_COLUMNS)}, "
                              f"got {','.join(reader.fieldnames or [])}")
        scores = defaultdict(lambda: defaultdict(dict))  # method -> game -> seed -> score
        for row in reader:
            where = f"{path}:{reader.line_num}"
            game, seed = check_game(row["game"], where), parse_seed(row["seed"], where)
            seeds = scores[row["method"]][game]
            if seed in seeds:
                raise ConfigError(f"{where}: {row['method']} {game} seed {seed} appears twice")
            seeds[seed] = as_scores([row["score"]], where)[0]
    if not scores:
        raise ConfigError(f"score file {path}: no scores")
    return [Method(method, {game: np.asarray(list(seeds.values())) for game, seeds in games.items()}, str(path),
                   seeds={game: list(seeds) for game, seeds in games.items()})
            for method, games in scores.items()]


def check_game(game: str, where: str) -> str:
    """An Atari 100k game (one with published references) or the suite's Catch, else a one-line error."""
    if game in references() or game == "Catch":
        return game
    valid = [*references(), "Catch"]
    close = difflib.get_close_matches(game, valid, n=3, cutoff=0.5) or [g for g in valid if g.lower() == game.lower()]
    raise ConfigError(f"{where}: unknown game {game!r}; "
                      + (f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(valid)}"))


def parse_seed(text: str, where: str) -> str:
    """A seed as its canonical non-negative integer ("00" and "0" are one seed)."""
    try:
        seed = int(text)
    except (TypeError, ValueError):
        seed = -1
    if seed < 0:
        raise ConfigError(f"{where}: bad seed {text!r}: expected a non-negative integer")
    return str(seed)


def write_runs_csv(path: Path, methods: list[Method], games: list[str]) -> None:
    """One row per run: method, game, seed, raw score and human-normalised score (empty without a reference)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*CSV_COLUMNS, "normalised"])
        for method in methods:
            for game in games:
                scores = method.scores[game]
                normalised = normalise(game, scores) if has_reference(game) else [None] * len(scores)
                for seed, score, value in zip(method.run_seeds(game), scores, normalised):
                    normalised_cell = "" if value is None else repr(float(value))
                    writer.writerow([method.name, game, seed, repr(float(score)), normalised_cell])
