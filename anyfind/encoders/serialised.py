"""Model calls from many threads (a server): one at a time, on one dedicated thread.

One at a time: Hugging Face tokenizers are not re-entrant and lazily built models race.
One thread: torch keeps an OpenMP team per calling thread, so inference hopping across a
pool of request threads would build (and spin) a team in each of them. Encoders are
cached per process (encoders.get_encoder), so there is one ModelThread per process too.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

MODEL_METHODS = frozenset({"encode_query", "encode_documents", "tag", "transcribe"})


class ModelThread:
    """Runs model calls one at a time on one dedicated thread."""

    NAME = "anyfind-models"

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=self.NAME)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if threading.current_thread().name.startswith(self.NAME):
            return fn(*args, **kwargs)  # a model call made by a model call
        return self._executor.submit(fn, *args, **kwargs).result()


MODELS = ModelThread()


class Serialised:
    """A model proxy whose inference methods run on the model thread."""

    def __init__(self, target: Any, models: ModelThread = MODELS):
        self._target = target
        self._models = models

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in MODEL_METHODS or not callable(attr):
            return attr
        return functools.partial(self._models.run, attr)
