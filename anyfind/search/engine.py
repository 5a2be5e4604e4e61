"""Query execution: encode into every space the query reaches, search each, fuse, group.

Each signal (an embedding space, later the lexical index) yields a ranked list of chunk
ids. Lists are reduced to items (best chunk per item) and fused by reciprocal rank
fusion when more than one signal answered; a single signal keeps its cosine score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import QueryError
from .fusion import rrf
from .results import Result

if TYPE_CHECKING:
    from ..index import Index

MODES = ("hybrid", "dense", "lexical")


@dataclass
class Query:
    text: str | None = None
    image: Any = None  # path, URL or PIL image
    audio: Any = None  # path to a clip
    k: int = 10
    offset: int = 0
    mode: str = "hybrid"
    chunks: bool = False  # one result per matching chunk instead of per item
    min_score: float | None = None
    weights: dict[str, float] = field(default_factory=dict)
    sources: list[str] | None = None  # only items of these sources (by name)


Signal = list[tuple[int, float]]  # (chunk id, score), best first


class Searcher:
    def __init__(self, index: Index):
        self.index = index
        self._source_ids: list[int] | None = None

    def _resolve_sources(self, names: list[str] | None) -> list[int] | None:
        if not names:
            return None
        known = {s["name"]: s["id"] for s in self.index.store.sources()}
        missing = [n for n in names if n not in known]
        if missing:
            raise QueryError(f"no source named '{missing[0]}' (known: {', '.join(sorted(known))})")
        return [known[n] for n in names]

    def _query_vectors(self, q: Query) -> dict[str, np.ndarray]:
        """One query vector per space the query's modality reaches."""
        out: dict[str, np.ndarray] = {}
        image = self.index.load_query_image(q.image) if q.image is not None else None
        for name, space in self.index.spaces.items():
            enc = space.encoder
            if q.text is not None and "text" in enc.modalities:
                out[name] = enc.encode_query([q.text], "text")[0]
            elif image is not None and "image" in enc.modalities:
                out[name] = enc.encode_query([image], "image")[0]
            elif image is not None:  # a text-only space sees the image through its tags
                vec = self.index.image_tag_vector(enc, image)
                if vec is not None:
                    out[name] = vec
        return out

    def dense_signals(self, q: Query, depth: int) -> dict[str, Signal]:
        signals: dict[str, Signal] = {}
        for name, vec in self._query_vectors(q).items():
            vi = self.index.vectors(name)
            scores, ids = vi.search(vec[None, :], depth)
            signals[name] = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        return signals

    def search(self, q: Query) -> list[Result]:
        if q.mode not in MODES:
            raise QueryError(f"unknown mode '{q.mode}' (use one of: {', '.join(MODES)})")
        if q.k <= 0:
            return []
        if q.audio is not None and q.text is None:
            # A spoken query is transcribed and searched as text.
            q.text = self.index.transcribe_query(q.audio)
            if not q.text.strip():
                raise QueryError("no speech was recognised in the audio clip")
        if q.text is not None:
            q.text = q.text.strip()
            if not q.text:
                raise QueryError("empty query: type some words, or pass --image/--audio")
        self._source_ids = self._resolve_sources(q.sources)
        want = q.k + q.offset
        total = max((len(self.index.vectors(n)) for n in self.index.spaces), default=0)
        depth = max(50, want * 5)
        while True:
            signals = self.dense_signals(q, depth) if q.mode != "lexical" else {}
            signals.update(self.index.extra_signals(q, depth))
            results = self._fuse(signals, q)
            if len(results) >= want or depth >= total:
                break
            depth *= 4
        results = results[q.offset : q.offset + q.k]
        if q.min_score is not None:
            results = [r for r in results if r.score >= q.min_score]
        for i, r in enumerate(results, start=q.offset + 1):
            r.rank = i
        return results

    def _fuse(self, signals: dict[str, Signal], q: Query) -> list[Result]:
        chunk_ids = {cid for sig in signals.values() for cid, _ in sig}
        rows = self.index.store.chunk_rows(sorted(chunk_ids), source_ids=self._source_ids)
        key = (lambda cid: cid) if q.chunks else (lambda cid: rows[cid]["item_id"])

        # Per signal: the best chunk of each key, in rank order.
        ranked: dict[str, list[Any]] = {}
        best: dict[Any, tuple[int, int, float]] = {}  # key -> (rank, chunk id, score)
        per_signal: dict[Any, dict[str, float]] = {}
        for name, sig in signals.items():
            order: list[Any] = []
            for cid, score in sig:
                if cid not in rows:
                    continue  # vector of a chunk deleted after the index was loaded
                kk = key(cid)
                if kk in per_signal and name in per_signal[kk]:
                    continue
                per_signal.setdefault(kk, {})[name] = score
                rank = len(order)
                order.append(kk)
                if kk not in best or rank < best[kk][0]:
                    best[kk] = (rank, cid, score)
            ranked[name] = order

        if len(ranked) == 1:
            (name, order), = ranked.items()
            fused = {kk: per_signal[kk][name] for kk in order}
        else:
            fused = rrf(ranked, q.weights or None)
        ordered = sorted(fused.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return [self._result(rows[best[kk][1]], score, per_signal[kk]) for kk, score in ordered]

    @staticmethod
    def _result(row: dict[str, Any], score: float, signals: dict[str, float]) -> Result:
        meta = row.get("meta") or {}
        return Result(
            rank=0, score=float(score), item_id=row["item_id"], chunk_id=row["chunk_id"],
            uri=row["uri"], path=row["path"], modality=row["modality"],
            media_type=row["media_type"], text=row["text"] or "", source=row["source"],
            title=row["title"], page=row["page"], start=row["start_s"], end=row["end_s"],
            char_start=row["char_start"], char_end=row["char_end"],
            tags=[t["label"] if isinstance(t, dict) else str(t) for t in meta.get("tags", [])],
            width=meta.get("width"), height=meta.get("height"),
            spaces={k: round(float(v), 6) for k, v in signals.items()},
        )
