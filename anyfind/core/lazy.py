"""`built_once`: a resource of an open index, built on first use, once, whatever the threads.

A server shares one OpenIndex between request threads, so each lazy resource (a model,
the lexical search, the OCR engine) must be built by one thread while the others wait
for it: the double-checked pattern, written here once instead of per resource. The
owner holds the lock (`_open_lock`, re-entrant: one resource may build another);
`forget(owner, name)` drops what was built so that the next use builds it again (a
setting changed). A value of None is a built value too (no tagger, no OCR engine).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_MISSING = object()


class built_once(Generic[T]):  # noqa: N801 (used as a decorator, like cached_property)
    def __init__(self, build: Callable[[Any], T]):
        self.build = build
        self.__doc__ = build.__doc__
        self.slot = _slot(build.__name__)

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = _slot(name)

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        value = obj.__dict__.get(self.slot, _MISSING)
        if value is _MISSING:
            with obj._open_lock:
                value = obj.__dict__.get(self.slot, _MISSING)
                if value is _MISSING:
                    value = self.build(obj)
                    obj.__dict__[self.slot] = value
        return value  # type: ignore[return-value]


def built(obj: Any, name: str) -> Any:
    """What `name` holds if it was built, else None (closing without building)."""
    return obj.__dict__.get(_slot(name))


def forget(obj: Any, name: str) -> None:
    """Drop what `name` built: the next use builds it again."""
    obj.__dict__.pop(_slot(name), None)


def _slot(name: str) -> str:
    """Where the owner keeps what `name` built (its instance dict, like cached_property)."""
    return f"_built_{name}"
