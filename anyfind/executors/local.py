"""Encoding in this process: per space, text sorted by length over the whole call and
encoded in slices (little padding; progress after each slice), images in model batches,
and a text space's view of an image through its tags."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import ChunkJob, EncodingExecutor, Progress

if TYPE_CHECKING:
    from ..encoders.space import Space
    from ..encoders.tag_vectors import TagVectors

EMBED_SLICE = 256  # texts per encoder call inside a sorted window (progress granularity)


class LocalExecutor(EncodingExecutor):
    name = "local"

    def __init__(self, *, spaces: dict[str, Space], tagger: Callable[[], Any],
                 tag_vectors: TagVectors, **options: Any):
        self.spaces = spaces
        self._tagger = tagger  # built on first need: most syncs hold no image
        self.tag_vectors = tag_vectors

    @property
    def tags_images(self) -> bool:
        return self._tagger() is not None

    def tag(self, images: Sequence[Any]) -> list[list[tuple[str, float]]]:
        tagger = self._tagger()
        if tagger is None or not images:
            return [[] for _ in images]
        return tagger.tag(list(images))

    def encode(self, jobs: Sequence[ChunkJob], progress: Progress | None = None
               ) -> list[dict[str, np.ndarray]]:
        out: list[dict[str, np.ndarray]] = [{} for _ in jobs]
        for name, space in self.spaces.items():
            todo = [i for i, job in enumerate(jobs) if name not in job.have
                    and space.embeds(job.modality, job.text, job.tags)]
            if not todo:
                continue
            enc = space.document_encoder
            reads = space.modalities
            groups: dict[str, list[tuple[int, Any]]] = {}
            for i in todo:
                job = jobs[i]
                if job.modality == "image" and "image" in reads:
                    if job.image is not None:
                        groups.setdefault("image", []).append((i, job.image))
                elif job.modality == "image":
                    vec = self.tag_vectors.vector(enc, job.tags or [])
                    if vec is not None:
                        out[i][name] = vec
                else:
                    groups.setdefault("text", []).append((i, job.text))
            total = sum(len(g) for g in groups.values())
            done = 0
            for modality, pairs in groups.items():
                if modality == "text":
                    pairs.sort(key=lambda pair: len(pair[1]), reverse=True)
                for start in range(0, len(pairs), EMBED_SLICE):
                    part = pairs[start:start + EMBED_SLICE]
                    vecs = enc.encode_documents([x for _, x in part], modality)
                    for (i, _), vec in zip(part, vecs, strict=True):
                        out[i][name] = vec
                    done += len(part)
                    if progress is not None:
                        progress(done, total)
        return out
