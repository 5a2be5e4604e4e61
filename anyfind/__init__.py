"""anyfind: one query, text, image or speech, over everything you have indexed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

__all__ = ["Embedder", "Index", "Result", "SyncReport", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .embedder import Embedder
    from .index import Index
    from .indexer.report import SyncReport
    from .search.results import Result


def __getattr__(name: str):
    # Lazy: `import anyfind` stays instant; the engine loads on first use.
    if name == "Index":
        from .index import Index

        return Index
    if name == "Embedder":
        from .embedder import Embedder

        return Embedder
    if name == "Result":
        from .search.results import Result

        return Result
    if name == "SyncReport":
        from .indexer.report import SyncReport

        return SyncReport
    raise AttributeError(f"module 'anyfind' has no attribute {name!r}")
