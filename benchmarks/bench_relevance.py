"""Relevance of every mode, fusion, the relevance floor and pseudo-relevance feedback on
BEIR-format text collections (docs/SEARCH_QUALITY.md).

    python benchmarks/bench_relevance.py [--data DIR ...] [--work DIR] [--out results.json]

Default collections: CISI (/work/shared/data/cisi-beir, when present) and Cranfield 1400
(benchmarks/data/cranfield-beir, in the repository). Each is indexed once into --work
(kept: a second run only searches). Every judged query runs at depth 100 in each
configuration; nothing is tuned on the labels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anyfind import Index  # noqa: E402
from anyfind.evaluate import index_dataset, load_beir, run_mode  # noqa: E402

DEFAULTS = [Path("/work/shared/data/cisi-beir"),
            Path(__file__).parent / "data" / "cranfield-beir"]
# (label, mode, search options)
RUNS = [
    ("dense", "dense", {"floor": False}),
    ("dense, floor", "dense", {}),
    ("lexical", "lexical", {}),
    ("hybrid relevance (default), no floor", "hybrid", {"floor": False}),
    ("hybrid relevance (default)", "hybrid", {}),
    ("hybrid rrf", "hybrid", {"fusion": "rrf", "floor": False}),
    ("hybrid score", "hybrid", {"fusion": "score", "floor": False}),
    ("dense + prf", "dense", {"prf": True, "floor": False}),
    ("lexical + prf", "lexical", {"prf": True}),
    ("hybrid + prf", "hybrid", {"prf": True, "floor": False}),
]


def one(data_dir: Path, work: Path) -> dict:
    data = load_beir(data_dir)
    index = Index.open(work / f"{data.name}-index")
    started = time.perf_counter()
    ids = index_dataset(index, data)
    index_s = time.perf_counter() - started
    calib = index.opened.calibration
    rows = []
    try:
        for label, mode, options in RUNS:
            r = run_mode(index, data, ids, mode, **options)
            rows.append({"run": label, "ndcg@10": round(r.ndcg_at_10, 4),
                         "recall@100": round(r.recall_at_100, 4), "mrr@10": round(r.mrr_at_10, 4),
                         "p50_ms": round(r.p50_ms, 1)})
            print(f"  {data.name:16} {label:40} nDCG@10 {r.ndcg_at_10:.3f}  "
                  f"R@100 {r.recall_at_100:.3f}  MRR@10 {r.mrr_at_10:.3f}", flush=True)
    finally:
        index.close()
    return {"dataset": data.name, "documents": len(data.corpus), "queries": len(data.queries),
            "index_s": round(index_s, 1),
            "calibration": {m: s.to_dict() for m, s in (calib.spaces.get("text") or {}).items()}
            if calib else None,
            "runs": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, action="append", default=None)
    ap.add_argument("--work", type=Path, default=None, help="indexes are kept here")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="anyfind-bench-relevance-"))
    datasets = [d for d in (args.data or DEFAULTS) if (d / "corpus.jsonl").exists()]
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "collections": [one(d, work) for d in datasets]}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
