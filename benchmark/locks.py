"""Advisory file locks (fcntl.flock): one process trains a run, one process submits to a campaign.

The kernel drops a flock when its holder dies, however it dies, so a held lock means "someone is at
work right now" and a free one never needs cleaning up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from iris import rundir

RUN_LOCK = "run.lock"  # in the run directory, held by the job training it
SUBMIT_LOCK = ".submit.lock"  # in a campaign or study folder: one command at a time creates it and submits
_TRIES = 5  # is_held() holds a lock for microseconds: a few quick retries ride over such a probe


@contextlib.contextmanager
def hold(path: Path, owner: str = "", wait: bool = False):
    """Yield True while holding the lock on `path`, or False if another process holds it (at once,
    unless wait=True). `owner` is written into the file for `iris-bench status` to show."""
    with rundir.room_for(path, len(owner)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _acquire(fd, wait):
            yield False
            return
        with rundir.room_for(path, len(owner)):
            os.ftruncate(fd, 0)
            os.pwrite(fd, owner.encode(), 0)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _acquire(fd: int, wait: bool) -> bool:
    if wait:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    for attempt in range(_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.02 * (attempt + 1))
    return False


def is_held(path: Path) -> bool:
    """Whether a process holds the lock now (probes with a shared lock, writes nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def owner(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
