"""Group Whisper segments into windows that fit a text encoder's token budget."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..extract.base import TimedSegment

TokenCounter = Callable[[str], int]


def _join(segments: list[TimedSegment]) -> str:
    return " ".join(s.text for s in segments)


def _merge(segments: list[TimedSegment]) -> TimedSegment:
    return TimedSegment(segments[0].start, segments[-1].end, _join(segments))


def _split_text(text: str, max_tokens: int, count_tokens: TokenCounter) -> list[str]:
    """Greedy pieces of at most max_tokens: whole words, else characters of a huge word."""
    pieces: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if count_tokens(candidate) <= max_tokens:
            current = candidate
            continue
        if current:
            pieces.append(current)
            current = ""
        if count_tokens(word) <= max_tokens:
            current = word
            continue
        for char in word:  # one word over budget on its own
            if current and count_tokens(current + char) > max_tokens:
                pieces.append(current)
                current = ""
            current += char
    if current:
        pieces.append(current)
    return pieces


def _fit(segment: TimedSegment, max_tokens: int, count_tokens: TokenCounter) -> list[TimedSegment]:
    """The segment itself, or its text split to fit, with times shared out by characters."""
    text = segment.text.strip()
    if count_tokens(text) <= max_tokens:
        return [TimedSegment(segment.start, segment.end, text)]
    pieces = _split_text(text, max_tokens, count_tokens)
    total = sum(len(p) for p in pieces)
    span = segment.end - segment.start
    out: list[TimedSegment] = []
    done = 0
    for piece in pieces:
        start = segment.start + span * done / total
        done += len(piece)
        out.append(TimedSegment(start, segment.start + span * done / total, piece))
    return out


def group_segments(
    segments: Iterable[TimedSegment],
    max_tokens: int,
    count_tokens: TokenCounter,
    overlap_segments: int = 1,
) -> list[TimedSegment]:
    """Consecutive segments joined into windows of at most max_tokens (by count_tokens on
    the joined text). Each window spans from its first segment's start to its last one's
    end; the last overlap_segments segments of a window open the next one when they fit.
    A segment over budget on its own is split, its time shared out by characters."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if overlap_segments < 0:
        raise ValueError("overlap_segments must not be negative")
    pieces = [p for s in segments if s.text.strip() for p in _fit(s, max_tokens, count_tokens)]
    windows: list[TimedSegment] = []
    start = 0
    while start < len(pieces):
        end = start + 1
        while end < len(pieces) and count_tokens(_join(pieces[start : end + 1])) <= max_tokens:
            end += 1
        windows.append(_merge(pieces[start:end]))
        if end == len(pieces):
            break
        # Overlap only as far as it still leaves room for the next new segment.
        start = max(end - overlap_segments, start + 1)
        while start < end and count_tokens(_join(pieces[start : end + 1])) > max_tokens:
            start += 1
    return windows
