"""SubRip (.srt) and WebVTT (.vtt) renderings of timed segments."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..extract.base import TimedSegment

_BLANK_LINES = re.compile(r"\n\s*\n")


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def _cue_text(text: str) -> str:
    # A blank line ends a cue in both formats; "-->" would read as a timing line.
    return _BLANK_LINES.sub("\n", text.strip()).replace("-->", "->")


def to_srt(segments: Iterable[TimedSegment]) -> str:
    """SubRip: numbered cues, HH:MM:SS,mmm timings, a blank line after each cue."""
    cues = []
    for i, s in enumerate((s for s in segments if s.text.strip()), start=1):
        timing = f"{_clock(s.start, ',')} --> {_clock(max(s.end, s.start), ',')}"
        cues.append(f"{i}\n{timing}\n{_cue_text(s.text)}\n")
    return "\n".join(cues)


def to_vtt(segments: Iterable[TimedSegment]) -> str:
    """WebVTT: a WEBVTT header, HH:MM:SS.mmm timings, text with &, < and > escaped."""
    out = ["WEBVTT\n"]
    for s in segments:
        if not s.text.strip():
            continue
        text = _cue_text(s.text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out.append(f"{_clock(s.start, '.')} --> {_clock(max(s.end, s.start), '.')}\n{text}\n")
    return "\n".join(out)
