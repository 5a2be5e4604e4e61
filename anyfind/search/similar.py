"""More like this: the items nearest to one indexed item, across spaces.

The item's query vector in a space is the mean of its chunk vectors there (normalised),
so a long document is represented by all of it, an image by its one vector. Every space
that holds vectors of the item answers (an image in the CLIP space also finds documents
and recordings there); several spaces are fused by RRF. The item itself is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..encoders.base import l2_normalize
from ..errors import QueryError, check_id
from .engine import MIN_DEPTH, Query, Searcher, check_page
from .filters import Filters, parse_filters
from .results import Result

if TYPE_CHECKING:
    from ..core import OpenIndex


def similar(index: OpenIndex, item_id: int, *, k: int = 10, offset: int = 0,
            filters: str | Filters | None = None) -> list[Result]:
    check_page(k, offset)
    item_id = check_id(item_id)
    store = index.store
    item = store.item(item_id)
    if item is None:
        raise QueryError(f"no item {item_id}")
    own = {c["id"] for c in store.chunks_of_item(item_id)}
    vectors = {}
    for name in index.spaces:
        ids, matrix = index.chunk_vectors(name, own)
        if len(ids):
            vectors[name] = l2_normalize(matrix.mean(axis=0))[0]
    if not vectors:
        raise QueryError(f"item {item_id} has no vectors ({item['status']}"
                         f"{': ' + item['error'] if item.get('error') else ''})")
    if k <= 0:
        return []
    searcher = Searcher(index)
    q = Query(k=k, offset=offset, mode="dense", fusion="relevance")  # neighbours: one scale
    f = parse_filters(filters) if isinstance(filters, str) else (filters or Filters())
    allowed = searcher._allowed(f)
    want = k + offset
    depth = max(MIN_DEPTH, want * 5) + len(own)
    while True:
        signals = {name: [(c, s) for c, s in searcher.dense_signal(name, vec, depth, allowed)
                          if c not in own]
                   for name, vec in vectors.items()}
        results = searcher._fuse(signals, q)
        if len(results) >= want or all(len(s) + len(own) < depth for s in signals.values()):
            break
        depth *= 4
    results = results[offset : offset + k]
    for i, r in enumerate(results, start=offset + 1):
        r.rank = i
    return results
