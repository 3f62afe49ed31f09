"""Following long work (a campaign's runs, a study's trials) wherever the output goes: a bar on a terminal; in a
log file or a pipe, a line whenever something changes and at least every `line_every_s`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

POLL_SECONDS = 2.0


@dataclass
class Snapshot:
    done: int  # units done (epochs, trials)
    total: int
    summary: str  # beside the bar: "2 running, 1 queued"
    line: str  # the whole state in one line, for logs
    finished: bool  # nothing left to wait for


def follow(name: str, unit: str, poll: Callable[[], Snapshot], line_every_s: float = 30.0) -> Snapshot:
    """Poll until a snapshot says finished; returns that last snapshot."""
    from tqdm import tqdm

    terminal = sys.stderr.isatty()
    last_line, last_time = "", 0.0
    snapshot = poll()
    with tqdm(total=snapshot.total, unit=unit, desc=name, disable=not terminal) as bar:
        while True:
            bar.n = min(snapshot.done, snapshot.total)
            bar.set_postfix_str(snapshot.summary)
            if not terminal and (snapshot.line != last_line or time.monotonic() - last_time >= line_every_s
                                 or snapshot.finished):
                print(f"{time.strftime('%H:%M:%S')} {snapshot.line}", file=sys.stderr, flush=True)
                last_line, last_time = snapshot.line, time.monotonic()
            if snapshot.finished:
                return snapshot
            time.sleep(POLL_SECONDS)
            snapshot = poll()
