"""Convert the CACM test collection (SMART format) to BEIR format: the third text set of
the fusion benchmarks, not used for tuning anything.

    python benchmarks/make_cacm.py RAW_DIR [OUT_DIR]

RAW_DIR holds cacm.all, query.text and qrels.text as the SMART distribution has them
(copy used here: github atcherepanov/Stemming-Algorithm @ a92ce14). OUT_DIR (default
benchmarks/data/cacm-beir) gets corpus.jsonl (title = .T, text = .W, the abstract, empty
for the many titles-only records), queries.jsonl (.W) and qrels/test.tsv (binary: the
judged pairs, gain 1). Only the 52 queries with judgements are kept.
"""

from __future__ import annotations

import json

from make_cranfield import paths, records, write_corpus  # SMART records, BEIR corpus


def main() -> None:
    raw, out = paths("cacm-beir")
    docs = write_corpus(raw / "cacm.all", out)
    pairs = set()
    for line in (raw / "qrels.text").read_text(encoding="latin-1").splitlines():
        cols = line.split()
        if len(cols) >= 2:
            pairs.add((int(cols[0]), int(cols[1])))
    judged = {q for q, _ in pairs}
    queries = [q for q in records((raw / "query.text").read_text(encoding="latin-1"))
               if int(q["id"]) in judged]
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for q in queries:
            fh.write(json.dumps({"_id": str(int(q["id"])), "text": q.get("W", "")}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q, d in sorted(pairs)]
    (out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(docs)} documents, {len(queries)} queries, {len(lines) - 1} judgements -> {out}")


if __name__ == "__main__":
    main()
