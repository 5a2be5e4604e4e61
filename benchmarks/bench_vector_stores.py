"""Vector stores side by side: FAISS (anyfind's files) against a real Milvus standalone
server on loopback, through anyfind's own VectorStore classes.

    python benchmarks/bench_vector_stores.py [--sizes 100000,1000000] [--out results.json]

For each size: insert throughput (vectors/s, in 10,000-vector upserts as a sync writes
them), then query latency p50/p95 at k=10 for single queries (what a search sends),
without a filter and with one: the allowed ids of 10 % of the collection, the way anyfind
passes filters today (FAISS: an id selector; Milvus: an `id in [...]` expression), and
for Milvus also the same 10 % as a range expression (`id >= a and id < b`), what a filter
on a scalar field would cost, and the same queries at the Strong, Bounded and
Eventually consistency levels (anyfind's searches read Session: the `query` row). Recall@10 against exact search on a sample.

Vectors: 384-d, a mixture of 1,000 Gaussian clusters, L2-normalised (like sentence
embeddings, unlike uniform noise); queries are drawn the same way. The Milvus server is
the PyPI `milvus` 2.3 package's binary, run from .venv-milvus (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anyfind.store.faiss_store import FaissVectorStore, exact_search  # noqa: E402
from anyfind.store.filter_fields import DEFAULTS  # noqa: E402
from anyfind.store.milvus_store import MilvusVectorStore  # noqa: E402

DIM = 384
BATCH = 10_000
QUERIES = 200


def vectors(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    which = rng.integers(0, len(centres), n)
    out = centres[which] + 0.35 * rng.standard_normal((n, DIM), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def percentiles(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def timed_queries(store, queries: np.ndarray, **kw) -> tuple[dict[str, float], np.ndarray]:
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, ids = store.search(q[None, :], 10, **kw)
        times.append(time.perf_counter() - t0)
        found.append(ids[0])
    return percentiles(times), np.asarray(found)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / len(t) for f, t in
                                zip(found, truth, strict=True)])), 4)


def start_milvus(base: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(ROOT / ".venv-milvus" / "bin" / "python"),
                             str(ROOT / "tests" / "support" / "milvus_serve.py"), str(base), str(port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()
    if not line.startswith("started"):
        os.killpg(proc.pid, 9)
        raise SystemExit(f"the Milvus server did not start: {line!r}")
    from pymilvus import MilvusClient

    for _ in range(60):  # "started" can come before the proxy answers
        try:
            MilvusClient(f"http://127.0.0.1:{port}").list_collections()
            return proc
        except Exception:  # noqa: BLE001
            time.sleep(1)
    os.killpg(proc.pid, 9)
    raise SystemExit("the Milvus server started but does not answer")


def one_size(n: int, work: Path, milvus_uri: str, rng: np.random.Generator,
             wanted: list[str]) -> dict:
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    data = vectors(n, rng, centres)
    ids = np.arange(1, n + 1, dtype=np.int64)
    queries = vectors(QUERIES, rng, centres)
    allowed = ids[n // 3 : n // 3 + n // 10]  # 10 % of the ids, in one range
    sample = queries[:50]
    truth = exact_search(data, ids, sample, 10)[1]
    truth_f = exact_search(data[allowed - 1], allowed, sample, 10)[1]
    # A filter on a scalar field, what anyfind sends Milvus now (search/filter_milvus.py):
    # every tenth chunk has the extension "e3", so 10 %, scattered over the ids.
    tenth = ids[ids % 10 == 3]
    truth_x = exact_search(data[tenth - 1], tenth, sample, 10)[1]
    out: dict = {"n": n}
    stores = {"faiss": lambda: FaissVectorStore(work / f"faiss-{n}", "text", DIM),
              "faiss-auto": lambda: FaissVectorStore(work / f"faiss-auto-{n}", "text", DIM),
              "milvus": lambda: MilvusVectorStore(work / f"m-{n}", "text", DIM,
                                                  uri=f"{milvus_uri}?prefix=b{n}_&index=flat"),
              "milvus-auto": lambda: MilvusVectorStore(work / f"ma-{n}", "text", DIM,
                                                       uri=f"{milvus_uri}?prefix=a{n}_")}
    for name in wanted:
        store = stores[name]()
        t0 = time.perf_counter()
        if name == "faiss-auto":  # what a sync's catch-up builds at this size (IVF above 50k)
            store.rebuild(ids, data, 1)
        else:  # upserts of 10,000: FAISS stays the exact index its first batch chose
            for start in range(0, n, BATCH):
                part = ids[start:start + BATCH]
                if name.startswith("milvus"):  # with the item fields a sync writes
                    fields = {int(i): {**DEFAULTS, "item_id": int(i), "ext": f"e{i % 10}",
                                       "modality": "text", "size": 1000} for i in part}
                    store.upsert(part, data[start:start + BATCH], fields)
                else:
                    store.upsert(part, data[start:start + BATCH])
        if name.startswith("faiss"):
            store.persist()
        insert_s = time.perf_counter() - t0
        build_s = None
        if name == "milvus-auto":  # what a sync's catch-up does after its upserts
            t0 = time.perf_counter()
            store.fit_index()
            build_s = round(time.perf_counter() - t0, 1)
        store.search(queries[:1], 10)  # loads the collection / builds the index
        plain, found = timed_queries(store, queries)
        filtered, found_f = timed_queries(store, queries, allowed=allowed)
        row = {"insert_s": round(insert_s, 1), "insert_per_s": round(n / insert_s),
               "query": plain, "recall@10": recall(found[:50], truth),
               "query_filter_10pct_ids": filtered,
               "recall@10_filter": recall(found_f[:50], truth_f)}
        if name.startswith("milvus"):
            times, found_x = [], []
            for q in queries:
                t0 = time.perf_counter()
                found_x.append(store.search(q[None, :], 10, where='ext in ["e3"]')[1][0])
                times.append(time.perf_counter() - t0)
            row["query_filter_10pct_field"] = percentiles(times)
            row["recall@10_filter_field"] = recall(np.asarray(found_x[:50]), truth_x)
        if name == "milvus":
            lo, hi = int(allowed[0]), int(allowed[-1])
            times = []
            for q in queries:
                t0 = time.perf_counter()
                store.client.search(store.collection, data=[q.tolist()], limit=10,
                                    filter=f"id >= {lo} and id <= {hi}",
                                    search_params={"metric_type": "IP"},
                                    consistency_level="Strong")
                times.append(time.perf_counter() - t0)
            row["query_filter_10pct_range_expr"] = percentiles(times)
            # Strong waits for the server's time tick before it reads: what each level costs.
            for level in ("Strong", "Bounded", "Eventually"):
                times = []
                for q in queries:
                    t0 = time.perf_counter()
                    store.client.search(store.collection, data=[q.tolist()], limit=10,
                                        search_params={"metric_type": "IP"},
                                        consistency_level=level)
                    times.append(time.perf_counter() - t0)
                row[f"query_{level.lower()}"] = percentiles(times)
            row["index"] = "FLAT (exact): ?index=flat"
        elif name == "milvus-auto":
            row["index"] = f"{store.index_in_use()} (by size), built in {build_s} s"
        else:
            row["index"] = store.built_factory if hasattr(store, "built_factory") else "auto"
        out[name] = row
        print(f"n={n:>9,} {name:6} insert {row['insert_per_s']:>7,}/s  query p50 "
              f"{plain['p50_ms']} ms p95 {plain['p95_ms']} ms  filtered p50 "
              f"{filtered['p50_ms']} ms  recall {row['recall@10']}", flush=True)
        if name.startswith("milvus"):
            store.client.drop_collection(store.collection)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--port", type=int, default=19731)
    ap.add_argument("--stores", default="faiss,faiss-auto,milvus,milvus-auto",
                    help="faiss (exact, grown by upserts), faiss-auto (rebuilt as a sync's "
                         "catch-up does: IVF above 50k), milvus")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="anyfind-bench-vs-"))
    wanted = args.stores.split(",")
    proc = (start_milvus(work / "milvus", args.port)
            if any(w.startswith("milvus") for w in wanted) else None)
    rng = np.random.default_rng(0)
    try:
        results = [one_size(int(n), work, f"milvus://127.0.0.1:{args.port}", rng, wanted)
                   for n in args.sizes.split(",")]
    finally:
        if proc is not None:
            stop_milvus(proc)
    _report(results, args)


def stop_milvus(proc: subprocess.Popen) -> None:
    proc.stdin.close()  # milvus_serve.py stops the server when its stdin closes
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, 9)  # the milvus binary too, whatever is left
    except ProcessLookupError:
        pass


def _report(results: list, args: argparse.Namespace) -> None:
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} "
                         "cores, loopback", "dim": DIM, "queries": QUERIES, "sizes": results}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
