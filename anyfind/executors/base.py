"""The executor contract: tag images, and encode chunks into every space that takes them."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Progress = Callable[[int, int], None]


@dataclass
class ChunkJob:
    """One chunk to encode: what a space needs to embed it, nothing of the store."""

    modality: str  # text | image | audio (a transcript window)
    text: str  # the chunk's text (an image's: its tags, joined)
    image: Any = None  # an image chunk's pixels, prepared for the image models
    tags: list[dict] | None = None  # an image's tags [{label, prob}]: a text space's view
    have: frozenset[str] = frozenset()  # spaces that hold its vector already


@dataclass
class Stage:
    """One step of a distributed item pipeline, given by the layer above as picklable
    callables: `make()` runs once per worker (loads what the step needs: a view of the
    index, a model) and returns the batch function: rows in, rows out, as many. Rows are
    any picklable objects; the executor carries them and never looks inside.
    """

    name: str
    make: Callable[[], Callable[[list[Any]], list[Any]]]
    model: bool = False  # holds a model: a pool of stateful actors; else stateless tasks
    gpu: bool = False  # runs on a GPU where the cluster has one


class EncodingExecutor(ABC):
    """Runs the models of indexing. Implementations: local (this process), ray (a Ray
    cluster: the items themselves are read and encoded on its workers)."""

    name = ""
    workers = 1  # encoding workers (reported in a sync's summary)
    distributed = False  # True: the pipeline hands over whole items (run_items)

    def run_items(self, rows: Sequence[Any], stages: Sequence[Stage]) -> Iterator[Any]:
        """Each row through every stage, on the executor's workers; the rows that come out,
        as they come (in no particular order). Only where `distributed`."""
        raise NotImplementedError(f"the {self.name} executor runs in this process")

    def native_output_kept(self) -> contextlib.AbstractContextManager:
        """While a run's items go through it: what native code of the executor writes to
        the terminal is kept off it (Ray's core worker lines); nothing here."""
        return contextlib.nullcontext()

    def shares_files(self) -> bool:
        """Whether its workers see this machine's files (all of them run on it)."""
        return True

    @property
    @abstractmethod
    def tags_images(self) -> bool:
        """Whether `tag` has a tagger to run."""

    @abstractmethod
    def tag(self, images: Sequence[Any]) -> list[list[tuple[str, float]]]:
        """(label, probability) pairs for each image."""

    @abstractmethod
    def encode(self, jobs: Sequence[ChunkJob], progress: Progress | None = None
               ) -> list[dict[str, np.ndarray]]:
        """For each job, {space name: unit vector} for every space that embeds it and
        does not have it yet (an empty dict for none). `progress(done, total)` is told
        as the work goes."""

    def close(self) -> None:
        return None
