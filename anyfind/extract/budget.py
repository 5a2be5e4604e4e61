"""What one item's extraction may spend: wall time and text.

A small file can hold unbounded work: a 320 KB PDF whose 2,000 pages share one content
stream of 200,000 operators parses for hours, an 11 KB PDF of 30 pages sharing a text
stream yields 19.5 million characters. Pure-Python parsers cannot be interrupted from
outside, so the extractors charge the budget as they go (per page, chapter, paragraph,
slide) and it raises ExtractionError when spent: the item gets a clear error, and the run
commits everything else.

The budget is per thread (each extraction thread reads one item at a time), set by
`extract()` around the extractor and read by the extractors with `charge`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import ExtractionError

SECONDS = 120.0  # any item: PDF pages, chapters ... (a 1,000-page book takes ~30 s here)
MAX_CHARS = 20_000_000  # any item's text (the longest real books hold ~5 million)


@dataclass
class Budget:
    seconds: float = SECONDS
    max_chars: int = MAX_CHARS
    started: float = field(default_factory=time.monotonic)
    chars: int = 0

    def count(self, chars: int, where: str = "") -> None:
        """Count `chars` more characters of text; raise past the limit."""
        self.chars += chars
        if self.chars > self.max_chars:
            at = f" ({where})" if where else ""
            raise ExtractionError(f"stopped reading{at}: over {self.max_chars:,} characters "
                                  "of text from one item (a file built to expand?)")

    def extend(self, seconds: float) -> None:
        """Allow `seconds` more (a video's frame work, bounded by its own deadline)."""
        self.seconds += seconds

    def charge(self, chars: int = 0, where: str = "") -> None:
        """Count `chars` more characters of text; raise once either limit is passed."""
        self.count(chars, where)
        at = f" ({where})" if where else ""
        spent = time.monotonic() - self.started
        if spent > self.seconds:
            raise ExtractionError(f"stopped reading{at}: over {self.seconds:g} s for one "
                                  "item (a file built to be slow to parse?)")


_current = threading.local()


def current() -> Budget:
    """The running extraction's budget (an unlimited-in-practice default outside one)."""
    budget = getattr(_current, "budget", None)
    return budget if budget is not None else Budget(seconds=float("inf"),
                                                    max_chars=MAX_CHARS)


def charge(chars: int = 0, where: str = "") -> None:
    """Count text and check the time: before or after each unit of work."""
    current().charge(chars, where)


def count(chars: int, where: str = "") -> None:
    """Count text only."""
    current().count(chars, where)


@contextlib.contextmanager
def spending(budget: Budget) -> Iterator[Budget]:
    """Make `budget` the current thread's for the extraction inside (nesting keeps the
    outer one: an e-mail's attachments share their message's)."""
    outer = getattr(_current, "budget", None)
    if outer is not None:
        yield outer
        return
    _current.budget = budget
    try:
        yield budget
    finally:
        _current.budget = None
