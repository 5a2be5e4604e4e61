"""The open-index object (OpenIndex) and what reads through it: one index directory,
opened, below the verbs of anyfind.Index and above store/, encoders/ and audio/."""

from __future__ import annotations

from .open_index import OpenIndex

__all__ = ["OpenIndex"]
