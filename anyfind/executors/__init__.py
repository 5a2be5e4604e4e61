"""The encoding-executor seam: "these chunks -> their vectors, per space".

The indexing pipeline hands batches of chunks (ChunkJob) to an executor and gets their
vectors back; it knows nothing of threads, processes or clusters. `local` (the default)
encodes in this process, in length-sorted slices; a backend registers under a name in
`executors` (plugins through the `anyfind.executors` entry-point group) and the index
config's `executor` key picks it.
"""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import ChunkJob, EncodingExecutor, Stage

executors: Registry[Any] = Registry("executor", "anyfind.executors")
executors.register("local", "anyfind.executors.local:LocalExecutor")
executors.register("ray", "anyfind.executors.ray_cluster:RayExecutor")

__all__ = ["ChunkJob", "EncodingExecutor", "Stage", "executors", "make_executor"]


def make_executor(kind: str, **resources: Any) -> EncodingExecutor:
    """The executor `kind`, given the index's spaces, tagger and tag vectors."""
    return executors.get(kind)(**resources)
