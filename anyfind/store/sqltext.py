"""Text spliced into SQL patterns, escaped once for every query that builds one."""

from __future__ import annotations


def like_escape(text: str) -> str:
    """A literal for LIKE ... ESCAPE '\\': % and _ (and the backslash) are characters,
    not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
