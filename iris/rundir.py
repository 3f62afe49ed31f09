"""The run directory: everything one training run is, and the contract between iris/, benchmark/ and analysis/.

    <run_dir>/
      spec.json       what to run: agent (iris), game, seed, preset, overrides, resolved config, config hash
      status.json     where it is: state, epoch, env steps, last test return, heartbeat (unix time), error
      metrics.jsonl   one JSON object per finished epoch (step = env steps), appended
      checkpoint.pt   latest epoch checkpoint (atomic); episodes/ holds the collected episodes
      eval.json       final evaluation: returns, lengths, env steps, summary statistics
      dream.gif, reconstructions.png, train.log
      run.lock, mlflow.json, mlflow.lock   (benchmark/: who trains it now, its MLflow run and sync progress)

The trainer writes it; campaigns, tracking, tuning and analysis only read it. Every write is atomic
(temporary file + rename), so a reader never sees half a file and a killed writer loses nothing written; a write
that finds the disk full is a one-line DiskFull naming the file, and leaves the last version whole.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from iris.config import Config
from iris.errors import ConfigError, DiskFull, RunStateError
from iris.vocabulary import FINISHED, PENDING, RUN_STATES, STOPPED

AGENT = "iris"  # the agent a spec is for (iris/api.py); specs written before it was recorded are iris too



def size_text(n: int) -> str:
    """n bytes for a reader: 950 B, 12.3 kB, 4.1 MB, 1.2 GB (decimal units, as `df -H`)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def free_bytes(path: Path) -> int:
    """Free space on the file system that holds `path`, or will: a folder not made yet goes where its parent is."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def size_of(path: Path) -> int:
    """Bytes in the files under `path`, 0 where it is absent."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


@dataclass
class DiskNeed:
    """What a run's directory holds when the run ends, in bytes, erring high (iris.trainer.disk_needed). While the
    run trains, each new checkpoint is written beside the last: one checkpoint more."""
    episodes: int
    checkpoint: int
    other: int  # dream.gif, reconstructions.png, metrics and log rows

    @property
    def total(self) -> int:
        return self.episodes + self.checkpoint + self.other


@contextlib.contextmanager
def room_for(path: Path, size: int):
    """A write of `size` bytes to `path` that finds its disk (or quota) full raises a one-line DiskFull naming both."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull(f"{e.strerror.lower()} writing {path} ({size_text(size)} needed, {size_text(free_bytes(path))} "
                       "free): free space there and run the command again; what was written before is kept (a run "
                       "resumes from its last checkpoint)") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with room_for(path, len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:  # a full disk, an interrupt: the file keeps its last whole version, no temporary is left
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> dict | None:
    """The file's JSON object, None if it is absent, a RunStateError naming it if it is damaged."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunStateError(f"{path} is damaged ({e}): restore it from a copy, or move it away") from None
    if not isinstance(data, dict):
        raise RunStateError(f"{path} is damaged (a JSON {type(data).__name__}, not an object): restore it, or move it away")
    return data


def write_spec(run_dir: Path, config: Config, seed: int, preset: str, overrides: list[str], extend: bool = False) -> dict:
    """Create spec.json, or check that an existing one asks for the same run (never silently changed). extend: the
    one change allowed, more training.epochs for a run whose config is otherwise the same; the spec's history
    records it, the earlier final evaluation is kept as eval-epochN.json and the run resumes from its checkpoint."""
    spec = {
        "agent": AGENT,
        "game": config.env.game,
        "seed": seed,
        "preset": preset,
        "overrides": list(overrides),
        "config": config.to_dict(),
        "config_hash": config.hash(),
    }
    old = read_spec(run_dir)
    if old is None:
        atomic_write_json(run_dir / "spec.json", spec)
        return spec
    if (old["config_hash"], old["seed"]) == (spec["config_hash"], seed):
        return old
    more_epochs = old["seed"] == seed and extended_epochs(old["config"], spec["config"])
    if not (extend and more_epochs):
        hint = "; use a new run directory" + (", or add --extend to train it on to the new epoch count" if more_epochs else "")
        raise ConfigError(f"{run_dir} already holds a run with another config or seed "
                          f"(hash {old['config_hash']}, seed {old['seed']}){hint}")
    epochs = old["config"]["training"]["epochs"]
    spec["history"] = [*old.get("history", []), {"config_hash": old["config_hash"], "epochs": epochs,
                                                  "overrides": old["overrides"], "extended_at": time.time()}]
    if (Path(run_dir) / "eval.json").exists():
        os.replace(Path(run_dir) / "eval.json", Path(run_dir) / f"eval-epoch{epochs}.json")
    atomic_write_json(run_dir / "spec.json", spec)
    if (read_status(run_dir) or {}).get("state") == FINISHED:
        write_status(run_dir, state=STOPPED, epochs=spec["config"]["training"]["epochs"])
    return spec


def extended_epochs(old: dict, new: dict) -> bool:
    """Whether config dict `new` is `old` with a larger training.epochs and nothing else changed."""
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))  # tuples and lists alike
    same = {**new, "training": {**new["training"], "epochs": old["training"]["epochs"]}}
    return same == old and new["training"]["epochs"] > old["training"]["epochs"]


def read_spec(run_dir: Path) -> dict | None:
    return read_json(Path(run_dir) / "spec.json")


def spec_config(spec: dict) -> Config:
    return Config.from_dict(spec["config"])


def write_status(run_dir: Path, **fields: object) -> dict:
    """Merge fields into status.json and stamp the heartbeat."""
    status = read_status(run_dir) or {"state": PENDING, "epoch": 0, "env_steps": 0, "last_test_return": None}
    status.update(fields, heartbeat=time.time())
    assert status["state"] in RUN_STATES, status["state"]
    atomic_write_json(Path(run_dir) / "status.json", status)
    return status


def read_status(run_dir: Path) -> dict | None:
    return read_json(Path(run_dir) / "status.json")


def append_line(path: Path, line: str) -> None:
    """`line` at the end of a text file in one write() call, on disk when this returns. A line the disk has no room
    for is taken back; one cut off by a kill is a torn last line (read_metrics skips it, a resumed run rewrites it)."""
    data = (line + "\n").encode()
    with room_for(path, len(data)), open(path, "ab", buffering=0) as f:
        end = f.seek(0, os.SEEK_END)
        try:
            if f.write(data) < len(data):  # a short write to a file: the disk filled up mid-line
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(f.fileno())
        except OSError:
            f.truncate(end)
            raise


def append_metrics(run_dir: Path, row: dict) -> None:
    """One line per epoch (append_line)."""
    append_line(Path(run_dir) / "metrics.jsonl", json.dumps(row, sort_keys=True))


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # a write cut off by a kill: that epoch is trained again
                continue
            raise RunStateError(f"{path} line {number} is damaged: repair or delete that line (epoch "
                                f"{rows[-1]['epoch'] + 1 if rows else 1}); nothing was changed") from None
    return rows


def truncate_metrics(run_dir: Path, last_epoch: int) -> None:
    """Drop rows after `last_epoch` (written after the checkpoint a resumed run restarts from)."""
    rows = [r for r in read_metrics(run_dir) if r["epoch"] <= last_epoch]
    atomic_write_bytes(Path(run_dir) / "metrics.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())


def summarize_eval(returns: list[float], lengths: list[int], env_steps: int) -> dict:
    """What eval.json holds: every episode's return and length, and the summary statistics of the returns."""
    import numpy as np

    r = np.asarray(returns, dtype=float)
    return {
        "returns": [float(x) for x in returns],
        "lengths": [int(x) for x in lengths],
        "env_steps": int(env_steps),
        "episodes": len(returns),
        "mean": float(r.mean()),
        "std": float(r.std()),
        "min": float(r.min()),
        "max": float(r.max()),
    }


def write_eval(run_dir: Path, returns: list[float], lengths: list[int], env_steps: int, **extra) -> dict:
    result = {**summarize_eval(returns, lengths, env_steps), **extra}
    atomic_write_json(Path(run_dir) / "eval.json", result)
    return result


def read_eval(run_dir: Path) -> dict | None:
    return read_json(Path(run_dir) / "eval.json")
