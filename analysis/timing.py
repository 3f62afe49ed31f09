"""Where a report's time goes: wall-clock seconds summed per named phase (`iris-bench report --timing`); phases
timed in parallel threads add up, so their sum can exceed the total."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

_END = object()


class Timings:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.lock = threading.Lock()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self.lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def timed(self, name: str, items: Iterable) -> Iterator:
        """Yield from `items`, counting the time spent producing each item (a generator's work) under `name`."""
        iterator = iter(items)
        while True:
            with self.phase(name):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item

    def table(self) -> str:
        width = max(map(len, self.seconds), default=0)
        lines = [f"{name:{width}s} {seconds:8.2f} s" for name, seconds in self.seconds.items()]
        return "\n".join(lines)
