"""SLURM profiles: a cluster's job settings in a YAML file under slurm/profiles/ (see example.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from iris.errors import ConfigError

# key: (type, what it is). Everything but max_requeues goes to submitit's SlurmExecutor as is.
KEYS = {
    "time": ((str, int), "time limit per job, as SLURM writes it: M, H:M:S, D-H:M:S ... (required)"),
    "partition": (str, "partition"),
    "account": (str, "account"),
    "qos": (str, "quality of service"),
    "cpus_per_task": (int, "CPUs per run"),
    "mem": (str, "memory per run, e.g. 32G"),
    "gpus_per_node": (int, "GPUs per run"),
    "constraint": (str, "node features, e.g. a100"),
    "array_parallelism": (int, "runs of the array running at once (--max-parallel overrides it)"),
    "signal_delay_s": (int, "seconds before the time limit at which the job checkpoints and requeues"),
    "setup": (list, "shell lines run before the job, e.g. module load"),
    "max_requeues": (int, "time-limit requeues allowed per job (default 100)"),
}


@dataclass
class Profile:
    path: Path
    params: dict  # SlurmExecutor.update_parameters(**params)
    max_requeues: int


def load(path: str) -> Profile:
    file = Path(path)
    if not file.is_file():
        shipped = sorted(str(p) for p in Path("slurm/profiles").glob("*.yaml"))
        available = ", ".join(shipped) or "none in slurm/profiles/"
        raise ConfigError(f"SLURM profile not found: {path}; available: {available}")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"SLURM profile {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"SLURM profile {path} must be a mapping of keys to values; valid keys: {', '.join(KEYS)}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in SLURM profile {path}; valid: {', '.join(KEYS)}")
    for key, value in data.items():
        kind, _ = KEYS[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(f"bad value {value!r} for {key} in SLURM profile {path}: expected {_type_name(kind)}")
    if "time" not in data:
        raise ConfigError(f"SLURM profile {path} must set time (the jobs' time limit, e.g. time: \"04:00:00\")")
    params = dict(data)
    max_requeues = params.pop("max_requeues", 100)
    params["time"] = minutes(params["time"], path)
    return Profile(file, params, max_requeues)


def minutes(value: str | int, path: str) -> int:
    """A SLURM time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or an int of minutes) -> whole minutes, rounded up."""
    text = str(value).strip()
    days, dash, rest = text.rpartition("-")
    parts = rest.split(":")
    if not all(p.isdigit() for p in parts + ([days] if dash else [])) or len(parts) > 3:
        raise ConfigError(f"bad time {value!r} in SLURM profile {path}: use M, M:S, H:M:S, D-H, D-H:M or D-H:M:S")
    numbers = [int(p) for p in parts]
    if dash:
        hours, mins, secs = (numbers + [0, 0])[:3]
        seconds = int(days) * 86400 + hours * 3600 + mins * 60 + secs
    else:
        seconds = sum(n * f for n, f in zip(reversed(numbers), (1, 60, 3600))) if len(numbers) > 1 else numbers[0] * 60
    if seconds < 60:
        raise ConfigError(f"bad time {value!r} in SLURM profile {path}: at least one minute")
    return -(-seconds // 60)


def _type_name(kind) -> str:
    names = [k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,))]
    return " or ".join({"str": "text", "int": "a whole number", "list": "a list"}[n] for n in names)
