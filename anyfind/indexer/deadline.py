"""Reads with a deadline: a file whose read never returns (a hung network mount, a device
that stopped answering) costs its item an error, never the run.

A blocked read cannot be interrupted from Python, so each read runs on a daemon thread;
one that misses its deadline is left behind (it ends with the process) and its item gets
an error. ThreadPoolExecutor's threads would be joined at exit, hanging it anyway."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

BASE_SECONDS = 120.0  # any read gets this long ...
SECONDS_PER_MB = 1.0  # ... plus this much per MB: 1 MB/s is slower than any working disk


def read_deadline(size: int | None) -> float:
    return BASE_SECONDS + SECONDS_PER_MB * (size or 0) / 1e6


class DeadlineExceeded(TimeoutError):
    pass


def map_with_deadlines(fn: Callable[[Any], Any], items: Sequence[Any], workers: int,
                       deadline: Callable[[Any], float]) -> list[Any]:
    """[fn(item)] in order, on `workers` daemon threads; an item that is not done within
    deadline(item) seconds of its start gets a DeadlineExceeded in place of its result
    (an exception fn raises is returned the same way)."""
    results: list[Any] = [None] * len(items)
    started: dict[int, float] = {}
    done = threading.Event()
    todo: queue.Queue = queue.Queue()
    for i in range(len(items)):
        todo.put(i)
    finished: queue.Queue = queue.Queue()

    def work() -> None:
        while not done.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            started[i] = time.monotonic()
            try:
                value = fn(items[i])
            except Exception as exc:  # noqa: BLE001 (the item's, returned in its place)
                value = exc
            finished.put((i, value))

    def spawn() -> None:
        threading.Thread(target=work, name="anyfind-read", daemon=True).start()

    for _ in range(max(1, min(workers, len(items)))):
        spawn()
    pending = set(range(len(items)))
    while pending:
        try:
            i, value = finished.get(timeout=1.0)
        except queue.Empty:
            now = time.monotonic()
            for i in [i for i in pending if i in started
                      and now - started[i] > deadline(items[i])]:
                pending.discard(i)
                results[i] = DeadlineExceeded(
                    f"reading it took over {deadline(items[i]):.0f} s (a hung disk or mount?)")
                spawn()  # the stuck thread is left behind: another takes its place
            continue
        if i in pending:
            pending.discard(i)
            results[i] = value
    done.set()
    return results
