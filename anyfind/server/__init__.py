"""HTTP API and web page (`anyfind serve`): FastAPI over one shared, warm Index."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package must not import FastAPI.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .run import serve

        return serve
    raise AttributeError(f"module 'anyfind.server' has no attribute {name!r}")
