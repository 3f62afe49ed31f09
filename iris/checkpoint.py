"""The epoch checkpoint: everything a run needs to continue bit for bit, in one file written atomically.

    checkpoint.pt = {agent, optimizers, collector (envs, frames, episodes in progress), rng (python, numpy, torch,
                     cuda), epoch, env_steps, elapsed, episodes (how many stored episodes it counts), last_test_return}
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from iris import rundir
from iris.errors import RunStateError

CHECKPOINT = "checkpoint.pt"


def write(run_dir: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    rundir.atomic_write_bytes(Path(run_dir) / CHECKPOINT, buffer.getvalue())


def read(run_dir: Path, device: torch.device) -> dict | None:
    """The checkpoint, None if there is none yet, a RunStateError naming the file if it is damaged."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # a truncated or overwritten file: zip, pickle or storage errors
        raise RunStateError(f"{path} is damaged ({type(e).__name__}): restore it from a copy, or move it away to "
                            "train the run again from its start") from None


def disk_bytes(parameters: int, in_progress_frame_bytes: int) -> int:
    """About what checkpoint.pt takes, erring high: each parameter's float32 weight and Adam's two float32 moments,
    and the collector's episodes in progress, whose frames torch.save pickles as latin-1 text (a byte of 128 or more
    takes two: Boxing's frames took 1.35 bytes a byte)."""
    return 3 * 4 * parameters + 2 * in_progress_frame_bytes


def remove_partial_writes(run_dir: Path) -> None:
    """A checkpoint write cut off by a kill leaves a hidden temporary file; the next start removes it."""
    for partial in Path(run_dir).glob(f".{CHECKPOINT}.*.tmp"):
        partial.unlink()


def rng_state(numpy_rng: np.random.Generator) -> dict:
    return {"python": random.getstate(), "numpy": numpy_rng.bit_generator.state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict, numpy_rng: np.random.Generator) -> None:
    random.setstate(state["python"])
    numpy_rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
