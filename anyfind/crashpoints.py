"""Named crash points: where the reliability tests kill the process on purpose.

Off (one dictionary lookup) unless ANYFIND_CRASH_AT is set:

    ANYFIND_CRASH_AT=7                     SIGKILL at the 7th crash point reached
    ANYFIND_CRASH_AT=store.write.uncommitted:2   ... at the 2nd time that one is reached

ANYFIND_CRASH_ONCE=FILE makes the kill happen once across processes: only where FILE
could be created (a worker restarted by Ray after the kill passes the point).

ANYFIND_CRASH_LOG=FILE appends the name of every point reached (one a line), which is how
the tests enumerate the points of a run before killing it at each in turn. The kill is a
real SIGKILL, as from `kill -9`: no finally blocks, no atexit, no flush.
"""

from __future__ import annotations

import os
import signal
import threading

CRASH_AT = "ANYFIND_CRASH_AT"
CRASH_LOG = "ANYFIND_CRASH_LOG"
CRASH_ONCE = "ANYFIND_CRASH_ONCE"

_lock = threading.Lock()
_total = 0
_by_name: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here if the test asked for it (see module docstring)."""
    spec = os.environ.get(CRASH_AT)
    log = os.environ.get(CRASH_LOG)
    if not spec and not log:
        return
    global _total
    with _lock:
        _total += 1
        nth = _by_name[name] = _by_name.get(name, 0) + 1
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(name + "\n")
        if spec and _matches(spec, name, nth, _total) and _first(os.environ.get(CRASH_ONCE)):
            os.kill(os.getpid(), signal.SIGKILL)


def _first(marker: str | None) -> bool:
    """True without a marker; with one, only for the first process to create it."""
    if not marker:
        return True
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _matches(spec: str, name: str, nth: int, total: int) -> bool:
    if spec.isdigit():
        return int(spec) == total
    wanted, _, count = spec.partition(":")
    return wanted == name and (int(count) if count else 1) == nth
