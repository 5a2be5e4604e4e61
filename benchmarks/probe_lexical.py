"""Feasibility probe: FTS5 (what anyfind uses) against tantivy on one index's chunk texts.

Not a benchmark of anyfind itself: it measures what a lexical engine with dynamic pruning
would cost on the same chunks and queries, to decide whether to adopt one. tantivy is not
a dependency; install it aside first:

    .venv/bin/pip install --target /tmp/tv tantivy
    .venv/bin/python benchmarks/bench_core.py --source cisi --synthetic-text sentences \\
        --sizes 100000 --cold-runs 0 --workdir /tmp/bc7
    .venv/bin/python benchmarks/probe_lexical.py /tmp/bc7/qidx/meta.db --tantivy-path /tmp/tv

Queries: the CISI queries (../shared/data/cisi-beir/queries.jsonl), cut into terms the
way anyfind's lexical search does (stop words out). Both engines return the top 50 by BM25.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO.parent / "shared" / "data" / "cisi-beir" / "queries.jsonl"


def p50_p95(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return (round(statistics.median(ordered) * 1000, 2),
            round(ordered[int(len(ordered) * 0.95)] * 1000, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path, help="an anyfind index's meta.db (SQLite)")
    ap.add_argument("--tantivy-path", default=None, help="where tantivy is installed")
    ap.add_argument("--queries", type=Path, default=QUERIES)
    args = ap.parse_args()
    if args.tantivy_path:
        sys.path.insert(0, args.tantivy_path)
    sys.path.insert(0, str(REPO))
    import tantivy

    from anyfind.search.terms import query_terms
    from anyfind.store.fts import fts5_match

    queries = [query_terms(json.loads(line)["text"]) for line in args.queries.open()]
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    rows = db.execute("SELECT id, text FROM chunks").fetchall()

    fts = []
    for terms in queries:
        t = time.perf_counter()
        db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? "
                   "ORDER BY bm25(chunks_fts) LIMIT 50", (fts5_match(terms),)).fetchall()
        fts.append(time.perf_counter() - t)

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True, fast=True)
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
    folder = Path(tempfile.mkdtemp(prefix="probe-tantivy-"))
    try:
        index = tantivy.Index(builder.build(), path=str(folder))
        writer = index.writer(heap_size=200_000_000, num_threads=1)
        t = time.perf_counter()
        for cid, text in rows:
            writer.add_document(tantivy.Document(id=cid, text=text))
        writer.commit()
        writer.wait_merging_threads()
        build_s = time.perf_counter() - t
        index.reload()
        searcher = index.searcher()
        tv = []
        for terms in queries:
            query = index.parse_query(" ".join(f'"{x}"' for x in terms), ["text"])
            t = time.perf_counter()
            searcher.search(query, 50)
            tv.append(time.perf_counter() - t)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({
        "chunks": len(rows), "queries": len(queries),
        "terms_per_query_p50": statistics.median(len(q) for q in queries),
        "fts5_top50_ms_p50_p95": p50_p95(fts), "tantivy_top50_ms_p50_p95": p50_p95(tv),
        "tantivy_build_s": round(build_s, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
