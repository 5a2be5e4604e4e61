"""The per-file cost outside the model: N tiny text files indexed end to end against the
raw document encoder on the same texts in the same run, and a re-sync with nothing
changed.

    python benchmarks/bench_small_files.py [--n 10000] [--out results.json]

(end to end - raw encode) / N is what sniffing, charset detection, hashing, chunking,
store writes, the lexical cache, the vector files and the calibration cost per file. The
raw encode is the index's own document encoder (bf16 on a CPU with native bf16), so the
difference is the cost outside the model whatever the precision. The split by stage comes
from wall-clock timers around the pipeline's main-thread steps; "waiting for reads" is the
main thread blocked on the reader thread (sniffing, charset detection, chunking).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["ANYFIND_ONNX_EXPORT"] = "off"  # an export is a one-off, not a per-file cost
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anyfind import Index  # noqa: E402
from anyfind.core import calibration  # noqa: E402
from anyfind.core.open_index import OpenIndex  # noqa: E402
from anyfind.indexer import batch_writer, pipeline  # noqa: E402


class Stages:
    """Wall seconds inside each patched function (main thread only, not nested)."""

    TARGETS = [(pipeline.Pipeline, "_hash_all", "hashing (worker threads)"),
               (pipeline.Pipeline, "_encode", "model (encode)"),
               (batch_writer.BatchWriter, "write_batch", "store writes"),
               (OpenIndex, "refresh_vectors", "vector files + lexical cache"),
               (calibration, "refresh", "score calibration")]

    def __init__(self):
        self.seconds = {name: 0.0 for _, _, name in self.TARGETS}
        self._saved = []

    def __enter__(self):
        for owner, attr, name in self.TARGETS:
            fn = getattr(owner, attr)
            self._saved.append((owner, attr, fn))
            setattr(owner, attr, self._wrap(fn, name))
        return self

    def __exit__(self, *exc):
        for owner, attr, fn in self._saved:
            setattr(owner, attr, fn)

    def _wrap(self, fn, name):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t0
        return timed

WORDS = ("alpha beta gamma delta river stone cloud paper engine garden window market "
         "silver orange").split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rng = random.Random(0)
    work = Path(tempfile.mkdtemp(prefix="anyfind-bench-small-"))
    root = work / "files"
    root.mkdir()
    texts = []
    for i in range(args.n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) + f" note {i}."
        (root / f"n{i:05d}.txt").write_text(text)
        texts.append(text)
    index = Index.open(work / "index")
    encoder = index.spaces["text"].document_encoder  # what Index.add encodes with
    encoder.encode_documents(["warm up"])  # the model loads outside the timings
    t0 = time.perf_counter()
    encoder.encode_documents(texts)
    raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Stages() as stages:
        report = index.add([root])
    e2e = time.perf_counter() - t0
    split = {name: round(sec / args.n * 1000, 3) for name, sec in stages.seconds.items()}
    split["rest: scan, plan, waiting for reads"] = round(
        (e2e - sum(stages.seconds.values())) / args.n * 1000, 3)
    t0 = time.perf_counter()
    index.sync()
    again = time.perf_counter() - t0
    index.close()
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "files": args.n, "added": report.added, "raw_encode_s": round(raw, 2),
              "index_s": round(e2e, 2),
              "precision": report.precision,
              "outside_model_ms_per_file": round((e2e - raw) / args.n * 1000, 3),
              "ms_per_file_by_stage": split,
              "unchanged_resync_ms_per_file": round(again / args.n * 1000, 3)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
