"""Moments: where inside a recording or a video a hit is, not just which window of it.

A speech chunk is a window of transcript segments (~1-2 minutes of talk, sized for the
text encoder); the moment is the segment inside it that carries the query: the one with
the most query words (like text highlights), else the one closest to the query in the
text space, widened with its neighbours to at least `MIN_SECONDS` and never past
`MAX_SECONDS`. A frame chunk (or the words read in it) is the time that frame is shown,
from its start. Each moment carries its evidence: the words of the frame shown then
(`shown`) and what is said then (`said`), so a hit reads "12:31-12:58 slide: ... said:
...". An item shows up to `MAX_MOMENTS`: its matching chunks, best first, that do not
overlap a better one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MIN_SECONDS = 2.0  # a moment shorter than this takes in its neighbours (context to hear)
MAX_SECONDS = 30.0  # and is never longer than this
MAX_MOMENTS = 3
TIMED = ("audio", "video")


def _segments(meta: dict[str, Any], start: float, end: float) -> list[list]:
    return [s for s in meta.get("transcript") or () if s[1] > start and s[0] < end]


def _frame_at(meta: dict[str, Any], t: float) -> dict[str, Any] | None:
    shown = None
    for frame in meta.get("frames") or ():
        if frame["start"] <= t + 1e-6:
            shown = frame
        else:
            break
    return shown


def _read(frame: dict[str, Any] | None) -> str:
    return " ".join(line["text"] for line in ((frame or {}).get("ocr") or {}).get("lines", []))


def _widen(segments: list[list], best: int) -> tuple[int, int]:
    """The segment `best` with neighbours around it until MIN_SECONDS (within MAX)."""
    lo = hi = best
    while segments[hi][1] - segments[lo][0] < MIN_SECONDS:
        grow_right = hi + 1 < len(segments)
        grow_left = lo > 0
        if grow_right and segments[hi + 1][1] - segments[lo][0] <= MAX_SECONDS:
            hi += 1
        elif grow_left and segments[hi][1] - segments[lo - 1][0] <= MAX_SECONDS:
            lo -= 1
        else:
            break
    return lo, hi


class MomentFinder:
    """Moments of one result page: `words(texts)` counts the query words in each text
    (the page's highlighter), `near(texts)` their closeness to the query (None: words
    only)."""

    def __init__(self, words: Callable[[Sequence[str]], list[int]],
                 near: Callable[[Sequence[str]], np.ndarray] | None = None):
        self.words = words
        self.near = near

    def speech(self, meta: dict[str, Any], start: float, end: float
               ) -> tuple[float, float, str] | None:
        """(start, end, said) of the best stretch of speech in [start, end]."""
        segments = _segments(meta, start, end)
        if not segments:
            return None
        texts = [s[2] for s in segments]
        counts = np.asarray(self.words(texts), dtype=float)
        if counts.max(initial=0) <= 0 and self.near is not None and len(texts) > 1:
            counts = np.asarray(self.near(texts), dtype=float)
        best = int(np.argmax(counts)) if len(counts) else 0
        lo, hi = _widen(segments, best)
        said = " ".join(s[2] for s in segments[lo:hi + 1])
        return float(segments[lo][0]), float(segments[hi][1]), said

    def moment(self, chunk: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any] | None:
        """The moment of one timed chunk of an item (a speech window, a frame, or the
        words read in a frame)."""
        start, end = chunk.get("start_s"), chunk.get("end_s")
        if start is None or end is None:
            return None
        if chunk.get("chunk_modality") == "audio":
            found = self.speech(meta, start, end)
            if found is None:
                return None
            start, end, said = found
            frame = _frame_at(meta, start)
            return {"start": round(start, 2), "end": round(end, 2), "kind": "speech",
                    "said": said, "shown": _read(frame),
                    "frame": frame["ordinal"] if frame else None}
        frame = _frame_at(meta, start)
        end = min(end, start + MAX_SECONDS)
        said = self.speech(meta, start, end)
        return {"start": round(start, 2), "end": round(end, 2), "kind": "frame",
                "said": said[2] if said else "", "shown": _read(frame),
                "frame": frame["ordinal"] if frame else None}

    def moments(self, chunks: Sequence[dict[str, Any]], meta: dict[str, Any]
                ) -> list[dict[str, Any]]:
        """Up to MAX_MOMENTS of an item's matching chunks, none overlapping a better one:
        the ones whose own evidence (a frame's words, a stretch's speech) holds the most
        query words first, then in the order the signals ranked them."""
        found = [m for m in (self.moment(c, meta) for c in chunks) if m is not None]
        if not found:
            return []
        own = self.words([m["shown"] if m["kind"] == "frame" else m["said"] for m in found])
        other = self.words([m["said"] if m["kind"] == "frame" else m["shown"] for m in found])
        order = sorted(range(len(found)), key=lambda i: (-(2 * own[i] + other[i]), i))
        out: list[dict[str, Any]] = []
        for m in (found[i] for i in order):
            if any(m["start"] < o["end"] and o["start"] < m["end"] for o in out):
                continue
            out.append(m)
            if len(out) == MAX_MOMENTS:
                break
        return out
