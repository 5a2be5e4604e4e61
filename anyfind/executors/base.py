"""The executor contract: tag images, and encode chunks into every space that takes them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
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


class EncodingExecutor(ABC):
    """Runs the models of indexing. Implementations: local (this process); Ray next."""

    name = ""
    workers = 1  # encoding workers (reported in a sync's summary)

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
