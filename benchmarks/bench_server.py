"""HTTP load check: warm GET /api/search on a loopback uvicorn, bounded requests.

    python benchmarks/bench_server.py [--index PATH] [--docs 1000] [--requests 500]
                                      [--concurrency 8] [--out results.json]

Without --index (or with one that does not exist yet) it builds an index: the sample
corpus (examples/corpus) plus --docs synthetic notes; a temporary one is removed after. The server runs in this process (a uvicorn thread on a free
127.0.0.1 port) with its models warmed; clients are threads with keep-alive connections.
Reports requests/s and p50/p90/p99 latency, and the in-process `Index.search` latency of
the same queries for comparison (what HTTP, JSON and the thread pool add).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = ["coffee", "espresso crema", "tax deadline", "a cat sleeping", "rocket launch",
           "bake sourdough bread", "fix a bicycle chain", "retry with backoff", "planets of the sun",
           "late filing penalty", "voice memo about groceries", "harbour lighthouse at night"]
WORDS = ("harbour lighthouse orchard glacier volcano library bakery comet river meadow "
         "invoice budget meeting holiday garden recipe engine planet museum forest").split()


def build_index(path: Path, docs: int) -> None:
    from anyfind import Index

    corpus = path.parent / f"{path.name}-corpus"
    shutil.copytree(ROOT / "examples" / "corpus", corpus)
    rng = random.Random(0)
    synth = corpus / "synthetic"
    synth.mkdir()
    for i in range(docs):
        words = " ".join(rng.choice(WORDS) for _ in range(60))
        (synth / f"note-{i:05d}.md").write_text(f"# Note {i}\n\n{words}.")
    t0 = time.perf_counter()
    with Index.open(path) as idx:
        report = idx.add([corpus])
    print(f"indexed {report.added} items in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load(url: str, requests: int, concurrency: int) -> dict:
    import httpx

    local = threading.local()
    latencies: list[float] = []
    errors = 0

    def one(i: int) -> None:
        nonlocal errors
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=60)
        q = QUERIES[i % len(QUERIES)]
        t0 = time.perf_counter()
        resp = client.get("/api/search", params={"q": q, "k": 10})
        latencies.append(time.perf_counter() - t0)
        if resp.status_code != 200:
            errors += 1

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(concurrency * 4)))  # warm connections and caches
        latencies.clear()
        t0 = time.perf_counter()
        list(pool.map(one, range(requests)))
        wall = time.perf_counter() - t0
    ms = [x * 1000 for x in latencies]
    return {"requests": requests, "concurrency": concurrency, "errors": errors,
            "wall_s": round(wall, 2), "rps": round(requests / wall, 1),
            "p50_ms": round(percentile(ms, 50), 1), "p90_ms": round(percentile(ms, 90), 1),
            "p99_ms": round(percentile(ms, 99), 1), "mean_ms": round(statistics.mean(ms), 1)}


def in_process(index, rounds: int = 5) -> dict:
    ms = []
    for _ in range(rounds):
        for q in QUERIES:
            t0 = time.perf_counter()
            index.search(q, k=10)
            ms.append((time.perf_counter() - t0) * 1000)
    return {"searches": len(ms), "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, help="an index to use, built there if missing "
                                               "(default: a temporary one)")
    ap.add_argument("--docs", type=int, default=1000, help="synthetic notes when building")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from anyfind.server import create_app
    from anyfind.server.run import background

    tmp = None
    path = args.index
    if path is None:
        tmp = Path(tempfile.mkdtemp(prefix="anyfind-bench-server-"))
        path = tmp / "index"
    if not (path / "config.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_index(path, args.docs)
    try:
        app = create_app(path)
        with background(app) as url:
            index = app.state.index
            status = index.status()
            result = {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                           f"Python {platform.python_version()}",
                "load_average_before": [round(x, 2) for x in os.getloadavg()],
                "items": status["items"], "chunks": status["chunks"],
                "warmed": app.state.warmed,
                # Interleaved, so that a busy machine skews all three alike.
                "in_process": in_process(index),
                "sequential_http": load(url, min(args.requests, 100), 1),
                "http": load(url, args.requests, args.concurrency),
                "in_process_after": in_process(index),
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            }
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
