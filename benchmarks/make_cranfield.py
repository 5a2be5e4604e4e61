"""Convert the Cranfield 1400 test collection (SMART format) to BEIR format.

    python benchmarks/make_cranfield.py RAW_DIR [OUT_DIR]

RAW_DIR holds cran.all.1400, cran.qry and cranqrel, the files the University of Glasgow
IR group distributes (copy used here: github DrDesignX/Simple_IR @ e18aea0d). OUT_DIR
(default benchmarks/data/cranfield-beir) gets corpus.jsonl, queries.jsonl and
qrels/test.tsv. Quirks handled: query ids in cran.qry are not consecutive (1, 2, 4, 8 ...)
while cranqrel numbers the queries 1..225 in file order; relevance codes are Cleverdon's
1 (complete answer) .. 4 (minimum interest), and -1 / 5 (not relevant), turned into gains
4 .. 1 and 0.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

FIELD = re.compile(r"^\.([ITABWNXK])(?: (\d+))?\s*$")  # .N .X .K: CACM's notes, citations, keywords


def records(text: str) -> list[dict[str, str]]:
    """SMART records: .I id, then .T/.A/.B/.W fields, each running to the next marker."""
    out: list[dict[str, str]] = []
    field = None
    for line in text.splitlines():
        m = FIELD.match(line)
        if m and m.group(1) == "I":
            out.append({"id": m.group(2)})
            field = None
        elif m:
            field = m.group(1)
            out[-1].setdefault(field, "")
        elif field and out:
            out[-1][field] += line.strip() + " "
    return [{k: " ".join(v.split()) for k, v in r.items()} for r in out]


def paths(name: str) -> tuple[Path, Path]:
    """RAW_DIR and OUT_DIR from the command line (OUT_DIR: benchmarks/data/NAME)."""
    raw = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent / "data" / name
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    return raw, out


def write_corpus(smart: Path, out: Path) -> list[dict[str, str]]:
    """A SMART documents file as BEIR's corpus.jsonl (title: .T, text: .W); the records."""
    docs = records(smart.read_text(encoding="latin-1"))
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"_id": str(int(d["id"])), "title": d.get("T", ""),
                                 "text": d.get("W", "")}) + "\n")
    return docs


def main() -> None:
    raw, out = paths("cranfield-beir")
    docs = write_corpus(raw / "cran.all.1400", out)
    queries = records((raw / "cran.qry").read_text(encoding="latin-1"))
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for n, q in enumerate(queries, start=1):  # cranqrel's numbering: file order
            fh.write(json.dumps({"_id": str(n), "text": q.get("W", "")}) + "\n")
    gains = {"1": 4, "2": 3, "3": 2, "4": 1}
    lines = ["query-id\tcorpus-id\tscore"]
    for line in (raw / "cranqrel").read_text(encoding="latin-1").splitlines():
        cols = line.split()
        if len(cols) == 3 and cols[2] in gains:
            lines.append(f"{int(cols[0])}\t{int(cols[1])}\t{gains[cols[2]]}")
    (out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(docs)} documents, {len(queries)} queries, {len(lines) - 1} judgements -> {out}")


if __name__ == "__main__":
    main()
