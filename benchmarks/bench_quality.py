"""Search quality and query latency per mode on a BEIR-format collection.

    python benchmarks/bench_quality.py [DATASET_DIR] [--index PATH] [--json OUT]

DATASET_DIR defaults to /work/shared/data/cisi-beir (CISI in BEIR format). The corpus is
indexed into --index (kept, so a second run only searches) or a temporary index. Quality:
every judged query at depth 100 in each mode (the `anyfind eval` logic). Latency: warm
queries at k=10, the modes interleaved query by query so that machine load hits them
alike; p50 over `--rounds` passes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_common import ROOT  # noqa: E402, F401 (first: offline settings, the repository on the path)

from anyfind import Index  # noqa: E402
from anyfind.evaluate import index_dataset, load_beir, run_mode  # noqa: E402

DEFAULT = "/work/shared/data/cisi-beir"
MODES = ("dense", "lexical", "hybrid")


def latency(index: Index, queries: list[str], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for m in MODES:  # warm-up
        index.search(queries[0], k=10, mode=m, syntax=False)
    for _ in range(rounds):
        for text in queries:
            for m in MODES:
                t0 = time.perf_counter()
                index.search(text, k=10, mode=m, syntax=False)
                times[m].append(time.perf_counter() - t0)
    return {m: 1000 * statistics.median(ts) for m, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", nargs="?", default=DEFAULT)
    ap.add_argument("--index", default=None, help="index path to build and keep")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", dest="out", default=None, help="write the figures here")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    data = load_beir(args.dataset)
    with tempfile.TemporaryDirectory(prefix="anyfind-bench-") as tmp:
        path = args.index or str(Path(tmp) / "index")
        with Index.open(path) as index:
            t0 = time.perf_counter()
            ids = index_dataset(index, data, progress=sys.stderr.isatty())
            index_s = time.perf_counter() - t0
            rows = [run_mode(index, data, ids, m) for m in MODES]
            rows.append(run_mode(index, data, ids, "hybrid", fusion="score"))
            rows[-1].mode = "hybrid (--fusion score)"
            p50 = latency(index, list(data.queries.values()), args.rounds)

    print(f"{data.name}: {len(data.corpus)} documents, {len(data.queries)} judged queries; "
          f"indexing {index_s:.0f} s; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print("\n| mode | nDCG@10 | Recall@100 | MRR@10 | warm p50 (k=10) |")
    print("|---|---|---|---|---|")
    for r in rows:
        ms = p50.get(r.mode)
        print(f"| {r.mode} | {r.ndcg_at_10:.3f} | {r.recall_at_100:.3f} | {r.mrr_at_10:.3f} | "
              f"{f'{ms:.1f} ms' if ms is not None else '-'} |")
    import torch

    print(f"\nhybrid / dense p50: {p50['hybrid'] / p50['dense']:.2f}x "
          f"(torch threads: {torch.get_num_threads()}, load average at the end: "
          f"{os.getloadavg()[0]:.1f})")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "dataset": data.name, "documents": len(data.corpus), "queries": len(data.queries),
            "index_seconds": index_s, "modes": [r.to_dict() for r in rows], "p50_ms": p50,
        }, indent=2))


if __name__ == "__main__":
    main()
