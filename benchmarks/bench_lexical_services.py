"""Lexical search for a cluster index: PostgreSQL's full text (what anyfind uses on a
PostgreSQL store) against Milvus BM25 (a sparse BM25 function over an analysed VARCHAR),
on the same units, the same queries, judged the same way.

    python benchmarks/bench_lexical_services.py [DATASET_DIR ...] [--json OUT]

DATASET_DIR: BEIR collections (default: /work/shared/data/cisi-beir and the packaged
Cranfield). Each document (title + text) is one chunk on both sides: PostgreSQL through
anyfind's own MetadataStore and FullTextSQL (a generated tsvector, 'english', ts_rank_cd over
the query's terms OR'ed, as a search does), Milvus through pymilvus's BM25 function
(an English analyzer: see ANALYZER, which Milvus Lite applies only in part). The server
is a throw-away cluster (initdb), the Milvus side is Milvus Lite 3.2 (the PyPI `milvus`
2.3 server has no BM25). nDCG@10 / Recall@100 over the judged queries at depth 100 and
the query latency p50 / p95 (single queries, warm). `anyfind_milvus_bm25` is what a
PostgreSQL + Milvus index runs: the BM25 collection filled from the store's outbox and
searched with the query's terms, with the time the judge's reference (a count per query
word) costs uncached.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anyfind.evaluate import load_beir  # noqa: E402
from anyfind.search.metrics import evaluate_run  # noqa: E402
from anyfind.search.terms import query_terms  # noqa: E402
from anyfind.store.metadata import ChunkRecord, ItemRecord, MetadataStore  # noqa: E402

DATASETS = ["/work/shared/data/cisi-beir", str(ROOT / "benchmarks" / "data" / "cranfield-beir")]
DEPTH = 100
# What a Milvus server (2.5+) takes for English; Milvus Lite 3.2 knows the `standard` and
# `jieba` tokenizers only and ignores the filters (measured: "run" does not find
# "running"), so on Lite this is BM25 over lower-cased words, no stemming, no stop words.
ANALYZER = {"tokenizer": "standard",
            "filter": ["lowercase", {"type": "stemmer", "language": "english"},
                       {"type": "stop", "stop_words": ["_english_"]}]}


def postgres():
    """A throw-away PostgreSQL cluster on a Unix socket: (url, stop)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL server binaries are not installed (scripts/setup.sh)")
    bin_dir = found[-1].parent
    root = Path(tempfile.mkdtemp(prefix="anyfind-bench-pg-"))  # the postgres user enters it
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(prefix + [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                             "anyfind", "--no-sync"], check=True, capture_output=True)
    subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l",
                             str(root / "log"), "-o", f"-k {root} -c listen_addresses=''",
                             "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                 "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    return f"postgresql+psycopg://anyfind@/postgres?host={root}", stop


def timed(search, queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    run, times = {}, []
    items = list(queries.items())
    search(items[0][1])  # warm-up
    for qid, text in items:
        t0 = time.perf_counter()
        run[qid] = search(text)
        times.append(time.perf_counter() - t0)
    return run, times


def figures(data, run, times) -> dict:
    m = evaluate_run(run, data.qrels)
    times = sorted(times)
    return {"ndcg@10": round(m["ndcg@10"], 4), "recall@100": round(m["recall@100"], 4),
            "p50_ms": round(1000 * statistics.median(times), 2),
            "p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 2),
            "queries": int(m["queries"])}


def bench_postgres(url: str, data, milvus: Path) -> tuple[dict, dict]:
    """PostgreSQL's full text, and anyfind's BM25 collection (store/milvus_lexical.py,
    Milvus Lite at `milvus`) written from the same store's outbox, searched as a
    search does (the query's terms)."""
    store = MetadataStore(url)
    store.enable_outbox(lexical=True)  # what a PostgreSQL + Milvus index turns on
    try:
        sid = store.ensure_source(data.name, "records", "bench")
        entries, doc_of = [], {}
        for i, rec in enumerate(data.corpus):
            text = f"{rec.title}\n{rec.text}".strip()
            entries.append((ItemRecord(sid, f"bench:{rec.id}", rec.id, "text", "text/plain",
                                       len(text), 0.0, str(i), None),
                            [ChunkRecord(0, "text", text)], None))
        t0 = time.perf_counter()
        for start in range(0, len(entries), 500):
            store.write_items(entries[start:start + 500])
        load_s = time.perf_counter() - t0
        chunk_doc = {}
        for row in store.items_of_source(sid).values():
            for c in store.chunks_of_item(row.id):
                chunk_doc[c["id"]] = row.path
        doc_of = chunk_doc

        def search(text: str) -> list[str]:
            return [doc_of[c] for c, _ in store.lexical.search(query_terms(text), DEPTH)]
        run, times = timed(search, data.queries)
        postgres = {**figures(data, run, times), "load_s": round(load_s, 1)}

        from anyfind.store.milvus_lexical import open_lexical

        service, _ = open_lexical(f"milvus-lite://{milvus}")
        t0 = time.perf_counter()
        service.catch_up(store)
        apply_s = time.perf_counter() - t0

        def bm25(text: str) -> list[str]:
            return [doc_of[c] for c, _ in service.search(query_terms(text), DEPTH)]
        run, times = timed(bm25, data.queries)
        reference = []
        for text in data.queries.values():  # the judge's reference, its counts not cached
            service._counts.clear()
            t0 = time.perf_counter()
            service.reference(query_terms(text))
            reference.append((time.perf_counter() - t0) * 1000)
        built = {**figures(data, run, times), "outbox_apply_s": round(apply_s, 1),
                 "reference_p50_ms": round(statistics.median(reference), 1)}
        service.client.close()
        return postgres, built
    finally:
        store.close()


def bench_milvus(path: Path, data) -> dict:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    client = MilvusClient(str(path))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=65_535, enable_analyzer=True,
                     analyzer_params=ANALYZER)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection("docs", schema=schema, index_params=index)
    ids = {}
    rows = []
    for i, rec in enumerate(data.corpus):
        ids[i] = rec.id
        rows.append({"id": i, "text": f"{rec.title}\n{rec.text}".strip()[:60_000]})
    t0 = time.perf_counter()
    for start in range(0, len(rows), 500):
        client.insert("docs", rows[start:start + 500])
    client.flush("docs")
    load_s = time.perf_counter() - t0

    def search(text: str) -> list[str]:
        hits = client.search("docs", data=[text], anns_field="sparse", limit=DEPTH,
                             search_params={"metric_type": "BM25"}, output_fields=["id"],
                             consistency_level="Strong")[0]
        return [ids[int(h["id"])] for h in hits]
    run, times = timed(search, data.queries)
    client.close()
    return {**figures(data, run, times), "load_s": round(load_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=DATASETS)
    ap.add_argument("--json", dest="out", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="anyfind-bench-lex-"))
    url, stop = postgres()
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime(
        "%Y-%m-%d"), "datasets": {}}
    try:
        for n, directory in enumerate(args.datasets):
            data = load_beir(directory)
            db = f"bench{n}"
            subprocess.run(["psql", "-h", url.split("host=")[1], "-U", "anyfind", "-d",
                            "postgres", "-c", f"CREATE DATABASE {db}"], check=True,
                           capture_output=True)
            postgres_row, built = bench_postgres(url.replace("/postgres?", f"/{db}?"), data,
                                                 work / f"a{n}.db")
            row = {"documents": len(data.corpus), "postgresql": postgres_row,
                   "milvus_bm25": bench_milvus(work / f"m{n}.db", data),
                   "anyfind_milvus_bm25": built}
            out["datasets"][data.name] = row
            print(json.dumps({data.name: row}), flush=True)
    finally:
        stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
