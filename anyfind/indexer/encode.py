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
        frames = _frames(items)
        for (item, chunk), tags in zip(pairs, found, strict=True):
            labels = [{"label": label, "prob": prob} for label, prob in tags]
            frame = frames.get((id(item), chunk.ordinal))
            if frame is not None:  # a video's frame: its own tags
                frame["tags"] = labels
            else:
                item.meta["tags"] = labels
            chunk.text = ", ".join(label for label, _ in tags)


def _frames(items: Sequence[Prepared]) -> dict[tuple[int, int], dict]:
    """(item, chunk ordinal) -> a video's kept frame (meta.frames), looked up once."""
    return {(id(item), f["ordinal"]): f for item in items
            for f in item.meta.get("frames") or ()}


def embed_chunks(items: Sequence[Prepared], executor: EncodingExecutor,
                 progress: Progress | None = None) -> None:
    """Each chunk's vectors from the executor, for the spaces that lack them."""
    chunks = [(item, chunk) for item in items for chunk in item.chunks]
    frames = _frames(items)

    def tags_of(item: Prepared, ordinal: int) -> list[dict] | None:
        frame = frames.get((id(item), ordinal))  # a frame's own tags, else the image's
        return frame.get("tags") if frame is not None else item.meta.get("tags")

    jobs = [ChunkJob(chunk.modality, chunk.text, item.images.get(chunk.ordinal),
                     tags_of(item, chunk.ordinal), frozenset(chunk.vectors or {}))
            for item, chunk in chunks]
    for (_, chunk), vectors in zip(chunks, executor.encode(jobs, progress), strict=True):
        if vectors:
            chunk.vectors = {**(chunk.vectors or {}), **vectors}


def encode_items(items: Sequence[Prepared], executor: EncodingExecutor,
                 progress: Progress | None = None) -> None:
    tag_images(items, executor)
    embed_chunks(items, executor, progress)
