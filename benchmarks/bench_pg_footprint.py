"""What a cluster index's vectors cost PostgreSQL: the `embeddings` table (with its
indexes) per chunk while the store keeps each vector, and once Milvus holds them and the
store has let go of the blobs (store/outbox.py, `MetadataStore.hold_vectors`).

    python benchmarks/bench_pg_footprint.py [--chunks N] [--dim D] [--json OUT]

A throw-away PostgreSQL cluster (initdb, as bench_lexical_services.py), N chunks of one
item each written through anyfind's own MetadataStore with a D-d vector, then every vector held;
sizes by pg_total_relation_size after VACUUM FULL (what the table settles to).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_lexical_services import postgres  # noqa: E402
from sqlalchemy import text  # noqa: E402

from anyfind.store.metadata import ChunkRecord, ItemRecord, MetadataStore  # noqa: E402


def table_bytes(store: MetadataStore) -> int:
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM FULL embeddings")
        return int(conn.execute(text("SELECT pg_total_relation_size('embeddings')")).scalar())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--json", dest="out", default=None)
    args = ap.parse_args()
    url, stop = postgres()
    try:
        store = MetadataStore(url)
        store.enable_outbox()
        store.ensure_space("text", args.dim)
        sid = store.ensure_source("bench", "records", "bench")
        rng = np.random.default_rng(0)
        for start in range(0, args.chunks, 2_000):
            entries = []
            for i in range(start, min(start + 2_000, args.chunks)):
                vec = rng.standard_normal(args.dim).astype(np.float32)
                entries.append((ItemRecord(sid, f"bench:{i}", str(i), "text", "text/plain",
                                           10, 0.0, str(i), None),
                                [ChunkRecord(0, "text", f"chunk {i}", vectors={"text": vec})],
                                None))
            store.write_items(entries)
        kept = table_bytes(store)
        ids = store.vector_ids("text")
        t0 = time.perf_counter()
        for start in range(0, len(ids), 10_000):
            store.hold_vectors("text", ids[start:start + 10_000].tolist())
        hold_s = time.perf_counter() - t0
        held = table_bytes(store)
        store.close()
    finally:
        stop()
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d"), "chunks": args.chunks, "dim": args.dim,
           "embeddings_bytes_per_chunk_kept": round(kept / args.chunks, 1),
           "embeddings_bytes_per_chunk_held": round(held / args.chunks, 1),
           "hold_s": round(hold_s, 2)}
    print(json.dumps(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
