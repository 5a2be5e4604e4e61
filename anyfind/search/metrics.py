"""Ranking metrics over relevance judgements (qrels), as trec_eval / BEIR compute them.

`judged` maps a document id to its relevance grade; grade > 0 means relevant. Graded
nDCG uses the grade itself as the gain (trec_eval's linear gain); binary nDCG uses 1 for
every relevant document. The ideal ranking is all judged documents sorted by gain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import fmean


def _dedupe(ranked: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ranked))


def _gain(grade: float, graded: bool) -> float:
    if grade <= 0:
        return 0.0
    return float(grade) if graded else 1.0


def dcg(gains: Sequence[float], k: int) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, float], k: int = 10,
              graded: bool = True) -> float:
    gains = [_gain(judged.get(d, 0), graded) for d in _dedupe(ranked)]
    ideal = sorted((_gain(g, graded) for g in judged.values()), reverse=True)
    best = dcg(ideal, k)
    return dcg(gains, k) / best if best > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, float], k: int = 100) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_dedupe(ranked)[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], judged: Mapping[str, float], k: int = 10) -> float:
    for i, d in enumerate(_dedupe(ranked)[:k], start=1):
        if judged.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


def evaluate_run(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, float]],
                 graded: bool = True) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries with a relevant document
    (a query missing from the run scores 0)."""
    queries = [q for q, judged in qrels.items() if any(g > 0 for g in judged.values())]
    if not queries:
        return {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "queries": 0}
    return {
        "ndcg@10": fmean(ndcg_at_k(run.get(q, []), qrels[q], 10, graded) for q in queries),
        "recall@100": fmean(recall_at_k(run.get(q, []), qrels[q], 100) for q in queries),
        "mrr@10": fmean(mrr_at_k(run.get(q, []), qrels[q], 10) for q in queries),
        "queries": len(queries),
    }
