"""Prepared items -> their chunks' vectors, through an encoding executor: tags for new
images first (a text space sees an image through its tags), then every space's vectors.
The pipeline calls it in this process; a distributed executor's actors call the two
halves on their workers (indexer/distributed.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..executors import ChunkJob, EncodingExecutor

if TYPE_CHECKING:
    from ..executors.base import Progress
    from .prepare import Prepared


def tag_images(items: Sequence[Prepared], executor: EncodingExecutor) -> None:
    """Tags on every image chunk not tagged yet (its text: the labels, joined)."""
    pairs = [(item, chunk) for item in items for chunk in item.chunks
             if chunk.modality == "image" and not chunk.text and chunk.ordinal in item.images]
    if pairs and executor.tags_images:
        found = executor.tag([item.images[c.ordinal] for item, c in pairs])
        for (item, chunk), tags in zip(pairs, found, strict=True):
            labels = [{"label": label, "prob": prob} for label, prob in tags]
            frame = _frame_of(item, chunk.ordinal)
            if frame is not None:  # a video's frame: its own tags
                frame["tags"] = labels
            else:
                item.meta["tags"] = labels
            chunk.text = ", ".join(label for label, _ in tags)


def _frame_of(item: Prepared, ordinal: int) -> dict | None:
    return next((f for f in item.meta.get("frames") or () if f["ordinal"] == ordinal), None)


def _tags_of(item: Prepared, ordinal: int) -> list[dict] | None:
    frame = _frame_of(item, ordinal)
    return frame.get("tags") if frame is not None else item.meta.get("tags")


def embed_chunks(items: Sequence[Prepared], executor: EncodingExecutor,
                 progress: Progress | None = None) -> None:
    """Each chunk's vectors from the executor, for the spaces that lack them."""
    chunks = [(item, chunk) for item in items for chunk in item.chunks]
    jobs = [ChunkJob(chunk.modality, chunk.text, item.images.get(chunk.ordinal),
                     _tags_of(item, chunk.ordinal), frozenset(chunk.vectors or {}))
            for item, chunk in chunks]
    for (_, chunk), vectors in zip(chunks, executor.encode(jobs, progress), strict=True):
        if vectors:
            chunk.vectors = {**(chunk.vectors or {}), **vectors}


def encode_items(items: Sequence[Prepared], executor: EncodingExecutor,
                 progress: Progress | None = None) -> None:
    tag_images(items, executor)
    embed_chunks(items, executor, progress)
