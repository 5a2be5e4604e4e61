"""Pseudo-relevance feedback: a second pass with a query moved towards its own first hits.

- Dense, Rocchio (1971): q' = alpha q + beta mean(top-k vectors), renormalised, per space.
- Lexical, RM3 (Lavrenko & Croft 2001; Abdul-Jaleel et al. 2004): expansion terms
  weighted by P(w | R) = sum over the top documents of P(w | d) P(d | q), the document
  weights from their BM25 scores, mixed with the original query.

Settings are the literature's usual ones (Anserini's RM3 defaults: 10 documents, 10
terms, original weight 0.5; Rocchio with alpha 1, beta 0.5 on 3 documents), not tuned on
any benchmark. Off by default: docs/SEARCH_QUALITY.md has what it did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from .terms import STOP_WORDS, words

ROCCHIO_DOCS, ROCCHIO_ALPHA, ROCCHIO_BETA = 3, 1.0, 0.5
RM3_DOCS, RM3_TERMS, RM3_ORIGINAL = 10, 10, 0.5
# Lexical queries take terms, a repeated term weighing once per repetition: weights are
# turned into repetitions of this many units in all.
RM3_UNITS = 40


def rocchio(query: np.ndarray, feedback: np.ndarray) -> np.ndarray:
    """The query moved towards the mean of the feedback vectors (rows), unit length."""
    if not len(feedback):
        return query
    moved = ROCCHIO_ALPHA * query + ROCCHIO_BETA * feedback.mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return (moved / norm).astype(np.float32) if norm > 0 else query


def rm3(terms: Sequence[str], texts: Sequence[str], scores: Sequence[float]) -> list[str]:
    """The query's terms plus up to RM3_TERMS expansion terms, as repetitions that carry
    RM3's weights (the original query's terms share RM3_ORIGINAL of them)."""
    if not terms or not texts:
        return list(terms)
    total = sum(max(s, 0.0) for s in scores) or 1.0
    relevance: Counter[str] = Counter()
    for text, score in zip(texts, scores, strict=True):
        tokens = [w for w in words(text) if w not in STOP_WORDS and len(w) > 1
                  and not w.isdigit()]
        if not tokens:
            continue
        for w, n in Counter(tokens).items():
            relevance[w] += (n / len(tokens)) * (max(score, 0.0) / total)
    top = relevance.most_common(RM3_TERMS)
    mass = sum(p for _, p in top) or 1.0
    weights: Counter[str] = Counter()
    original = Counter(terms)
    for t, n in original.items():
        weights[t] += RM3_ORIGINAL * n / len(terms)
    for w, p in top:
        weights[w] += (1 - RM3_ORIGINAL) * p / mass
    out: list[str] = []
    for t, wt in weights.most_common():
        out += [t] * max(1 if t in original else 0, round(wt * RM3_UNITS))
    return out
