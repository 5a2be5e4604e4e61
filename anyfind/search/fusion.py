"""Fusing ranked lists from several signals (embedding spaces, lexical)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RRF_K = 60


def rrf(ranked: Mapping[str, Sequence[int]], weights: Mapping[str, float] | None = None,
        k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: score(d) = sum_s w_s / (k + rank_s(d)), ranks from 1."""
    fused: dict[int, float] = {}
    for name, ids in ranked.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, doc in enumerate(ids, start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
    return fused
