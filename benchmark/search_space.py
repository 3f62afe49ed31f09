"""Search spaces of `iris-bench tune`: a YAML mapping of config keys to a range or to choices.

    actor_critic.lr: {low: 1.0e-4, high: 1.0e-2, log: true}  # a float key: a float range, log-uniform
    world_model.embed_dim: {low: 64, high: 256, step: 64}    # an int key: an int range (step optional)
    world_model.num_layers: {choices: [1, 2, 4]}             # any key: one of these values

A range takes its type from the key (int or float); bool, str and tuple keys take choices (a tuple written
as a string, e.g. "16,16,32,32"). Every key, bound and choice is checked against the Config with the same
functions as --set, so a bad space fails before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from iris.config import Config, parse_value, set_value
from iris.errors import ConfigError

EXAMPLE = Path(__file__).parent / "spaces" / "example.yaml"  # shipped with the package; tune's default
RANGE_FIELDS = ("low", "high", "log", "step")
FIELDS = (*RANGE_FIELDS, "choices")


@dataclass(frozen=True)
class Param:
    key: str  # section.key, also the Optuna parameter's name
    kind: type | None  # int or float for a range; None for choices
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple = field(default=())

    def suggest(self, trial) -> object:
        """This parameter's value for an Optuna trial (the enqueued one for a retried trial)."""
        if self.kind is None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind is int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)


def read(path: str | Path) -> dict:
    """The YAML mapping of a search-space file, as written."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"search space file not found: {path} (example: {EXAMPLE})")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"search space {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"search space {path} must map config keys to ranges or choices, e.g. "
                          f"'actor_critic.lr: {{low: 1.0e-4, high: 1.0e-2, log: true}}'")
    return data


def parse(space: dict, source: str) -> list[Param]:
    """Validate every entry; `source` (the file) prefixes each error."""
    try:
        return [_param(str(key), spec) for key, spec in space.items()]
    except ConfigError as e:
        raise ConfigError(f"search space {source}: {e}") from None


def _param(key: str, spec: object) -> Param:
    defaults = Config().flat()
    if key not in defaults:
        parse_value(Config(), key, "")  # raises the config's own error: unknown key, with the close ones
    if key == "env.game":
        raise ConfigError("env.game cannot be searched: choose games with --games")
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected {{low: .., high: ..[, log: true][, step: ..]}} or {{choices: [..]}}, "
                          f"got {spec!r}")
    unknown = [str(f) for f in spec if f not in FIELDS]
    if unknown:
        raise ConfigError(f"{key}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(FIELDS)}")
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise ConfigError(f"{key}: give either choices or a range (low, high), not both")
        return Param(key, None, choices=_choices(key, spec["choices"]))
    kind = type(defaults[key])
    if kind not in (int, float):
        raise ConfigError(f"{key} is a {kind.__name__} key: a range needs an int or float key; give choices")
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{key}: a range needs both low and high")
    low, high = (_number(key, spec[f], f) for f in ("low", "high"))
    if low >= high:
        raise ConfigError(f"{key}: low ({low}) must be below high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{key}: a log range needs low > 0, got {low}")
    step = _number(key, spec["step"], "step") if "step" in spec else None
    if step is not None and (step <= 0 or log):
        raise ConfigError(f"{key}: step must be positive and cannot be combined with log, got step {step}")
    return Param(key, kind, low, high, log, step)


def _number(key: str, value: object, name: str) -> int | float:
    """A bound as the key's type; a string is parsed (YAML reads 1e-4, without a dot, as a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key}: {name} must be a number, got {value!r}")
    return parse_value(Config(), key, str(value))


def _choices(key: str, choices: object) -> tuple:
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{key}: choices must be a non-empty list, got {choices!r}")
    for choice in choices:
        if isinstance(choice, str):
            parse_value(Config(), key, choice)
        elif isinstance(choice, (bool, int, float)):
            set_value(Config(), key, choice)
        else:
            raise ConfigError(f"{key}: choice {choice!r} must be a number, a boolean or a string "
                              f"(a tuple as a string, e.g. \"16,16,32,32\")")
    return tuple(choices)
