"""Relevance evaluation on BEIR-format data: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

The corpus becomes a records source of an index (`Index.add_documents`), every judged
query runs in each mode, and the ranked items map back to corpus ids for the metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

from .errors import ConfigError
from .search.filters import Clause, Filters
from .search.metrics import evaluate_run

if TYPE_CHECKING:
    from .connectors.records import Record
    from .index import Index

DEPTH = 100  # results per query: enough for Recall@100


@dataclass
class BeirData:
    name: str
    corpus: list[Record]
    queries: dict[str, str]  # judged queries only
    qrels: dict[str, dict[str, int]]


@dataclass
class ModeResult:
    mode: str
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    queries: int

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ConfigError(f"{path}:{n}: not JSON ({exc})") from None


def load_beir(directory: str | Path, split: str = "test") -> BeirData:
    from .connectors.records import Record

    root = Path(directory).expanduser()
    files = {"corpus": root / "corpus.jsonl", "queries": root / "queries.jsonl",
             "qrels": root / "qrels" / f"{split}.tsv"}
    for what, path in files.items():
        if not path.is_file():
            raise ConfigError(f"not a BEIR dataset: {path} is missing ({what})")
    qrels: dict[str, dict[str, int]] = {}
    with files["qrels"].open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            cols = line.rstrip("\n").split("\t")
            if not line.strip() or (n == 1 and not cols[-1].strip().lstrip("-").isdigit()):
                continue  # blank, or the header line
            if len(cols) < 3:
                raise ConfigError(f"{files['qrels']}:{n}: expected query-id, corpus-id, score")
            try:
                qrels.setdefault(cols[0], {})[cols[1]] = int(cols[2])
            except ValueError:
                raise ConfigError(f"{files['qrels']}:{n}: score {cols[2]!r} is not an integer"
                                  ) from None
    corpus = [Record(str(d["_id"]), d.get("text") or "", d.get("title") or "")
              for d in _jsonl(files["corpus"])]
    queries = {str(q["_id"]): q.get("text") or "" for q in _jsonl(files["queries"])}
    judged = {q: queries[q] for q in qrels if q in queries and queries[q].strip()}
    return BeirData(root.name, corpus, judged, {q: qrels[q] for q in judged})


def index_dataset(index: Index, data: BeirData, progress: bool = False) -> dict[int, str]:
    """Add the corpus as a records source named after the dataset; item id -> corpus id."""
    from .connectors.records import RecordsConnector

    index.add_documents(data.name, data.corpus, progress=progress)
    source = index.store.source_by_name(data.name)
    rows = index.store.items_of_source(source["id"]).values()
    return {row.id: RecordsConnector.doc_id(row.uri) for row in rows}


def run_mode(index: Index, data: BeirData, ids: dict[int, str], mode: str,
             filters: Filters | None = None, **search) -> ModeResult:
    """Every judged query in one mode; the first query runs twice (warm-up, not timed)."""
    run: dict[str, list[str]] = {}
    times: list[float] = []
    items = list(data.queries.items())
    for n, (qid, text) in enumerate(items[:1] + items):
        t0 = time.perf_counter()
        results = index.search(text, k=DEPTH, mode=mode, filters=filters, syntax=False, **search)
        if n:
            times.append(time.perf_counter() - t0)
            run[qid] = [ids[r.item_id] for r in results if r.item_id in ids]
    m = evaluate_run(run, data.qrels)
    return ModeResult(mode, m["ndcg@10"], m["recall@100"], m["mrr@10"],
                      1000 * median(times) if times else 0.0, int(m["queries"]))


def evaluate(index: Index, data: BeirData, modes: Sequence[str] = ("dense", "lexical", "hybrid"),
             progress: bool = False, **search) -> list[ModeResult]:
    ids = index_dataset(index, data, progress=progress)
    # Other sources in a shared index must not take part.
    only = Filters([Clause("source", (data.name,))]) if len(index.store.sources()) > 1 else None
    return [run_mode(index, data, ids, mode, only, **search) for mode in modes]
