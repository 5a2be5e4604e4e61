"""Fusing ranked lists from several signals (embedding spaces, lexical).

The default, `auto`, chooses by what the query reaches (`auto_fusion`): `rrf` when the
first results of every signal are written text (documents, notes, records), `relevance`
(the calibrated scores' union, search/relevance.py) as soon as one of them is a picture,
a recording or a video, or text a machine made of one (OCR, tags), or the matching
notes embed images (search/embed_context.py: the engine checks that first). Rank fusion counts
every word a passage shares with the query: on text people wrote that is evidence (it
wins on CISI, Cranfield and CACM, docs/SEARCH_QUALITY.md), on transcripts and tags it lets
a clip that shares one word outrank a better dense hit (it lost by far on speech and
images). The two rank-based methods; both return values in [0, 1]:

- `rrf`: reciprocal rank fusion, sum_s w_s / (k + rank_s), divided by its maximum
  sum_s w_s / (k + 1): 1.0 means first in every signal. Needs no score calibration.
- `score`: each signal's scores min-max normalised over its own list, then the weighted
  mean; a key a signal did not return counts 0 there.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

RRF_K = 60
FUSIONS = ("auto", "relevance", "rrf", "score")
AUTO_DEPTH = 10  # each signal's first results that decide `auto`


def auto_fusion(signals: Mapping[str, Sequence[tuple[int, float]]],
                facts: Mapping[int, tuple]) -> str:
    """`rrf` when every signal's first AUTO_DEPTH chunks are written text (a text chunk of
    a text item), else `relevance`. `facts`: chunk id -> (item, chunk modality, item
    modality)."""
    for sig in signals.values():
        for cid, _ in sig[:AUTO_DEPTH]:
            fact = facts.get(cid)
            if fact is not None and (fact[1] != "text" or fact[2] != "text"):
                return "relevance"
    return "rrf"


def weight_of(name: str, weights: Mapping[str, float] | None) -> float:
    """A signal's weight: by its name, else 'dense' for embedding spaces, else 1."""
    if not weights:
        return 1.0
    if name in weights:
        return float(weights[name])
    if name != "lexical" and "dense" in weights:
        return float(weights["dense"])
    return 1.0


def rrf(ranked: Mapping[str, Sequence[Hashable]], weights: Mapping[str, float] | None = None,
        k: int = RRF_K) -> dict[Hashable, float]:
    """Normalised reciprocal rank fusion over lists of keys, best first (ranks from 1)."""
    fused: dict[Hashable, float] = {}
    top = 0.0
    for name, keys in ranked.items():
        w = weight_of(name, weights)
        top += w / (k + 1)
        for rank, key in enumerate(keys, start=1):
            fused[key] = fused.get(key, 0.0) + w / (k + rank)
    return {key: s / top for key, s in fused.items()} if top > 0 else fused


def score_fusion(scored: Mapping[str, Sequence[tuple[Hashable, float]]],
                 weights: Mapping[str, float] | None = None) -> dict[Hashable, float]:
    """Weighted mean of min-max normalised scores (a list of one scores 1)."""
    fused: dict[Hashable, float] = {}
    total = 0.0
    for name, pairs in scored.items():
        w = weight_of(name, weights)
        total += w
        if not pairs:
            continue
        values = [s for _, s in pairs]
        lo, hi = min(values), max(values)
        for key, s in pairs:
            norm = (s - lo) / (hi - lo) if hi > lo else 1.0
            fused[key] = fused.get(key, 0.0) + w * norm
    return {key: s / total for key, s in fused.items()} if total > 0 else fused
