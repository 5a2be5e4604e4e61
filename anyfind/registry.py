"""Named plugin registries (a dict plus an entry-point group), shared by connectors and encoders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a factory. Built-ins register lazily by dotted path so that
    importing the registry imports no heavy backend; third-party packages add
    entries through the entry-point group."""

    def __init__(self, what: str, group: str):
        self.what = what
        self.group = group
        self._entries: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: T | str) -> None:
        """Register a class/factory, or a 'module:attr' string imported on first use."""
        self._entries[name] = target

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            self.register(name, obj)
            return obj

        return wrap

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib import metadata  # ~50 ms: only when a registry is first asked

        for ep in metadata.entry_points(group=self.group):
            self._entries.setdefault(ep.name, f"{ep.module}:{ep.attr}")

    def rescan(self) -> None:
        """Look at the entry points again (a plugin installed while this process runs)."""
        self._entry_points_loaded = False

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        self._load_entry_points()
        try:
            target = self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown {self.what} '{name}' (known: {known})") from None
        if isinstance(target, str):
            import importlib

            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target
