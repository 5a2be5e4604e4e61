"""Core engine benchmark: indexing throughput, warm query latency, cold CLI search.

    python benchmarks/bench_core.py [--quick] [--source generated|cisi] [--out core.json]

All in ONE run, on the same texts:

1. Indexing throughput (chunks/s) of `Index.add` on a folder of text files, against raw
   `SentenceTransformer.encode` on exactly the chunk texts the index produced (read
   back from the store), with the encoder's own batch size. Target ratio >= 0.9.
2. Warm in-process query latency, p50/p95, at 10k and 100k chunks (target p50 <= 15 ms
   at 100k): `Index.search(query)` end to end (query encoding included), and FAISS alone.
   Only the real chunks of step 1 are embedded by the model; the rest are perturbed
   copies of their vectors (cosine ~0.94 to their original), written through
   `MetadataStore.write_items` like any chunk, so the store, FAISS (Flat at 10k, IVF at 100k
   via the size rule) and result assembly do real work at that size.
3. Cold `anyfind search` wall time: `python -m anyfind search ... --index PATH` in a
   fresh process, median of 5, with a start-up breakdown.

The default source is generated prose (runs anywhere); `--source cisi` writes the CISI
abstracts (../shared/data/cisi-beir/corpus.jsonl) as files instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
CISI = REPO.parent / "shared" / "data" / "cisi-beir"

# -- generated prose --------------------------------------------------------------------------

TOPICS: dict[str, tuple[list[str], list[str]]] = {
    # topic: (nouns, verbs)
    "gardening": ("tomato seedling compost soil mulch greenhouse hedge orchard pruning frost "
                  "irrigation fertiliser cutting bulb trellis".split(),
                  "plant water prune harvest sow shade feed graft".split()),
    "astronomy": ("telescope galaxy comet orbit nebula eclipse asteroid planet moon star "
                  "observatory spectrum satellite crater meteor".split(),
                  "observe orbit measure photograph track detect chart align".split()),
    "cooking": ("recipe oven dough sauce spice broth pastry skillet flavour kitchen onion "
                "butter marinade crust stew".split(),
                "bake simmer roast season knead whisk braise taste".split()),
    "finance": ("budget invoice ledger interest mortgage pension dividend audit tax deadline "
                "payment account loan revenue expense".split(),
                "file pay borrow invest audit report deduct forecast".split()),
    "medicine": ("patient symptom diagnosis vaccine clinic therapy dosage infection surgeon "
                 "fracture allergy nurse prescription scan recovery".split(),
                 "treat prescribe diagnose monitor vaccinate examine heal refer".split()),
    "software": ("compiler database server function module query cache thread bug release "
                 "repository deployment index schema interface".split(),
                 "compile deploy refactor debug test index cache merge".split()),
    "history": ("empire treaty monarch archive battle dynasty parliament revolution charter "
                "colony manuscript siege chronicle reform border".split(),
                "conquer sign rule record abolish negotiate crown rebel".split()),
    "sailing": ("harbour mast keel anchor tide current compass sail hull voyage lighthouse "
                "storm crew rope chart".split(),
                "sail steer anchor navigate moor tack hoist drift".split()),
    "music": ("orchestra melody rhythm violin chord concert choir rehearsal score tempo "
              "piano harmony composer audience note".split(),
              "compose rehearse perform conduct tune record improvise play".split()),
    "climate": ("glacier rainfall drought emission carbon forest wetland ocean temperature "
                "flood heatwave sensor model season ice".split(),
                "warm melt absorb emit measure flood restore cool".split()),
}
ADJECTIVES = ("early late small large careful quiet rapid steady ancient modern seasonal "
              "northern annual detailed fragile reliable common rare warm cold").split()
ADVERBS = "carefully quickly slowly rarely often usually gently precisely".split()
PLACES = ("in the spring|after the storm|before the deadline|near the coast|during the night|"
          "at the end of the year|in most regions|under strict rules").split("|")


def _sentence(rng: random.Random, nouns: list[str], verbs: list[str]) -> str:
    n = lambda: rng.choice(nouns)  # noqa: E731
    a = lambda: rng.choice(ADJECTIVES)  # noqa: E731
    forms = [
        f"The {a()} {n()} can {rng.choice(verbs)} the {n()} {rng.choice(PLACES)}.",
        f"Most people {rng.choice(ADVERBS)} {rng.choice(verbs)} a {a()} {n()} when the {n()} "
        f"is {a()}.",
        f"A {n()} and its {n()} are {a()}, so experts {rng.choice(verbs)} them "
        f"{rng.choice(ADVERBS)}.",
        f"Why does the {n()} {rng.choice(verbs)} so {rng.choice(ADVERBS)} {rng.choice(PLACES)}?",
        f"Records show that every {a()} {n()} needs a {n()}, a {n()} and a {a()} {n()}.",
        f"If you {rng.choice(verbs)} the {n()} {rng.choice(ADVERBS)}, the {n()} will stay "
        f"{a()} for weeks.",
    ]
    return rng.choice(forms)


def generate_corpus(folder: Path, n_files: int, seed: int = 0) -> list[str]:
    """Write n_files prose documents (1-4 paragraphs, one topic each); return queries."""
    rng = random.Random(seed)
    names = list(TOPICS)
    for i in range(n_files):
        topic = names[i % len(names)]
        nouns, verbs = TOPICS[topic]
        paragraphs = [" ".join(_sentence(rng, nouns, verbs) for _ in range(rng.randint(3, 7)))
                      for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
        ext = ".md" if i % 3 == 0 else ".txt"
        body = "\n\n".join(paragraphs)
        if ext == ".md":
            body = f"# {topic.title()} note {i}\n\n{body}"
        path = folder / topic / f"note-{i:05d}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body + "\n")
    queries = []
    for _ in range(200):
        nouns, verbs = TOPICS[rng.choice(names)]
        queries.append(rng.choice([
            f"how to {rng.choice(verbs)} a {rng.choice(nouns)}",
            f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)} {rng.choice(nouns)}",
            f"why does the {rng.choice(nouns)} {rng.choice(verbs)} {rng.choice(PLACES)}",
            f"{rng.choice(nouns)}",
            f"what should I do with my {rng.choice(nouns)} and {rng.choice(nouns)} "
            f"{rng.choice(PLACES)}",
        ]))
    return queries


def cisi_corpus(folder: Path, n_files: int) -> list[str]:
    docs = [json.loads(line) for line in (CISI / "corpus.jsonl").open()][:n_files]
    for d in docs:
        path = folder / "cisi" / f"{int(d['_id']):05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(((d.get("title") or "") + "\n\n" + d["text"]).strip() + "\n")
    return [json.loads(line)["text"] for line in (CISI / "queries.jsonl").open()]


# -- measuring helpers --------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ms(values: list[float]) -> dict[str, float]:
    v = [x * 1000 for x in values]
    return {"p50_ms": round(pct(v, 50), 2), "p95_ms": round(pct(v, 95), 2),
            "mean_ms": round(statistics.fmean(v), 2), "n": len(v)}


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def machine() -> dict[str, Any]:
    import faiss
    import torch

    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(), "python": platform.python_version(),
        "torch": torch.__version__, "faiss": faiss.__version__, "platform": platform.platform(),
    }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- 1. indexing throughput ---------------------------------------------------------------------


def bench_indexing(work: Path, args) -> tuple[dict[str, Any], Any, list[str]]:
    from anyfind import Index

    folder = work / "corpus"
    if args.source == "cisi":
        if not (CISI / "corpus.jsonl").exists():
            raise SystemExit(f"--source cisi needs {CISI / 'corpus.jsonl'}")
        queries = cisi_corpus(folder, args.files)
    else:
        queries = generate_corpus(folder, args.files, args.seed)
    n_files = sum(1 for p in folder.rglob("*") if p.is_file())
    corpus_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    index = Index.open(work / "idx0")
    encoder = index.spaces["text"].encoder
    t = time.perf_counter()
    model = encoder.model  # loaded outside both timings
    load_s = time.perf_counter() - t
    encoder.encode_documents(["warm-up sentence for the model"], "text")
    model.encode(["warm-up"], batch_size=encoder.batch_size, show_progress_bar=False)

    runs: list[dict[str, float]] = []
    first = index
    texts: list[str] = []
    before = loadavg()
    for r in range(args.repeats):
        if r:
            index = Index.open(work / f"idx{r}")
        log(f"[{r + 1}/{args.repeats}] Index.add on {n_files} files ...")
        wall, cpu = time.perf_counter(), time.process_time()
        report = index.add([folder])
        index_s, index_cpu = time.perf_counter() - wall, time.process_time() - cpu
        if report.failed:
            log(f"warning: {report.failed} files failed: {report.errors[:3]}")
        with index.store.engine.connect() as conn:
            from sqlalchemy import text as sql

            texts = [row[0] for row in conn.execute(sql("SELECT text FROM chunks ORDER BY id"))]
        assert len(texts) == report.chunks, (len(texts), report.chunks)
        if r:
            index.close()

        log(f"[{r + 1}/{args.repeats}] SentenceTransformer.encode on the same {len(texts)} "
            "chunk texts ...")
        wall, cpu = time.perf_counter(), time.process_time()
        raw = model.encode(texts, batch_size=encoder.batch_size, convert_to_numpy=True,
                           show_progress_bar=False)
        raw_s, raw_cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert raw.shape[0] == len(texts)
        # and at SentenceTransformer.encode's own default batch (32), as a user calls it
        wall = time.perf_counter()
        model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
        raw_default_s = time.perf_counter() - wall
        runs.append({"index_s": index_s, "raw_s": raw_s, "index_cpu_s": index_cpu,
                     "raw_cpu_s": raw_cpu, "ratio": raw_s / index_s,
                     "raw_default_s": raw_default_s, "precision": report.precision})
    after = loadavg()

    tokens = [len(encoder.tokenizer().encode(x).ids) for x in texts]
    index_s = statistics.median(r["index_s"] for r in runs)
    raw_s = statistics.median(r["raw_s"] for r in runs)
    index_cpu = statistics.median(r["index_cpu_s"] for r in runs)
    raw_cpu = statistics.median(r["raw_cpu_s"] for r in runs)
    index_rate = len(texts) / index_s
    raw_rate = len(texts) / raw_s
    result = {
        "source": args.source, "files": n_files, "corpus_mb": round(corpus_bytes / 1e6, 2),
        "chunks": len(texts), "tokens_per_chunk_mean": round(statistics.fmean(tokens), 1),
        "tokens_per_chunk_max": max(tokens), "batch_size": encoder.batch_size,
        "model_load_s": round(load_s, 2), "repeats": args.repeats,
        "index_s": round(index_s, 2), "index_chunks_per_s": round(index_rate, 2),
        "index_files_per_s": round(n_files / index_s, 2),
        "raw_encode_s": round(raw_s, 2), "raw_chunks_per_s": round(raw_rate, 2),
        "ratio": round(index_rate / raw_rate, 3),
        "document_precision": runs[0]["precision"],
        "raw_default_batch_chunks_per_s": round(
            len(texts) / statistics.median(r["raw_default_s"] for r in runs), 2),
        "ratio_vs_default_batch": round(
            statistics.median(r["raw_default_s"] for r in runs) / index_s, 3),
        "ratio_per_repeat": [round(r["ratio"], 3) for r in runs],
        "index_cpu_s": round(index_cpu, 2), "raw_cpu_s": round(raw_cpu, 2),
        "cpu_time_ratio": round(raw_cpu / index_cpu, 3),
        "loadavg_before": before, "loadavg_after": after,
    }
    index = first
    return result, index, queries


# -- 2. warm query latency ----------------------------------------------------------------------


@dataclass
class Synth:
    """Writes chunks whose vectors are perturbed copies of real chunk vectors."""

    store: Any
    source_id: int
    real_ids: np.ndarray
    real_vecs: np.ndarray
    real_texts: dict[int, str]
    rng: np.random.Generator
    written: int = 0
    items: int = 0
    sigma: float = 0.35  # noise norm relative to a unit vector: cosine ~ 1/sqrt(1+s^2) ~ 0.94
    # "copies": a synthetic chunk carries its real chunk's text (every text ~N/2,337 times:
    # query terms match a large share of rows, the worst case for BM25). "sentences": it
    # carries real sentences drawn at random up to the same length, so words keep the real
    # corpus's document frequencies (with --source cisi: natural text and natural queries).
    text_mode: str = "copies"
    _sentences: list[str] | None = None

    def _text(self, k: int) -> str:
        text = self.real_texts[int(self.real_ids[k])]
        if self.text_mode == "copies" or self.written < len(self.real_ids):
            return text
        if self._sentences is None:
            split = re.compile(r"(?<=[.!?])\s+")
            self._sentences = [x for t in self.real_texts.values() for x in split.split(t)
                               if x.strip()]
        out: list[str] = []
        size = 0
        while size < len(text):
            pick = self._sentences[int(self.rng.integers(len(self._sentences)))]
            out.append(pick)
            size += len(pick) + 1
        return " ".join(out)

    def write(self, n_chunks: int, per_item: int = 4, batch_items: int = 500) -> None:
        from anyfind.store.metadata import ChunkRecord, ItemRecord

        dim = self.real_vecs.shape[1]
        entries = []
        left = n_chunks
        while left > 0:
            m = min(per_item, left)
            chunks = []
            for o in range(m):
                k = self.written % len(self.real_ids)
                base = self.real_vecs[k]
                if self.written < len(self.real_ids):
                    vec = base  # the real chunks themselves, once
                else:
                    vec = base + self.rng.standard_normal(dim).astype(np.float32) * (
                        self.sigma / np.sqrt(dim))
                    vec = vec / np.linalg.norm(vec)
                text = self._text(k)
                chunks.append(ChunkRecord(ordinal=o, modality="text", text=text, char_start=0,
                                          char_end=len(text), vectors={"text": vec}))
                self.written += 1
            self.items += 1
            path = f"/synthetic/doc-{self.items:06d}.txt"
            entries.append((ItemRecord(
                source_id=self.source_id, uri=f"file://{path}", path=path, modality="text",
                media_type="text/plain", size=1000, mtime=0.0, fingerprint=str(self.items),
                content_hash=f"synthetic-{self.items}"), chunks, None))
            left -= m
            if len(entries) >= batch_items:
                self.store.write_items(entries)
                entries = []
        if entries:
            self.store.write_items(entries)


def bench_queries(work: Path, real_index, queries: list[str], sizes: list[int], args
                  ) -> list[dict[str, Any]]:
    from anyfind import Index
    from anyfind.store.faiss_store import exact_search

    real_ids, real_vecs = real_index.store.vectors("text")
    real_texts = {c["id"]: c["text"] for c in _all_chunks(real_index)}
    path = work / "qidx"
    qi = Index.open(path)
    source_id = qi.store.ensure_source("synthetic", "filesystem", "/synthetic", {})
    qi.store.ensure_space("text", int(real_vecs.shape[1]))
    synth = Synth(qi.store, source_id, real_ids, real_vecs, real_texts,
                  np.random.default_rng(args.seed), text_mode=args.synthetic_text)
    encoder = qi.spaces["text"].encoder
    rng = random.Random(args.seed)
    out = []
    for size in sizes:
        log(f"writing synthetic chunks up to {size} ...")
        t = time.perf_counter()
        synth.write(size - synth.written)
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        qi.opened.refresh_lexical()  # the tantivy cache (store/lexical_cache.py)
        lexical_s = time.perf_counter() - t
        t = time.perf_counter()
        qi.opened.refresh_vectors(save=True)
        build_s = time.perf_counter() - t
        vi = qi.opened.vectors("text")
        assert len(vi) == size, (len(vi), size)

        qs = [rng.choice(queries) for _ in range(args.queries)]
        for q in qs[:5]:  # warm-up: caches, FAISS threads, SQLite pages
            qi.search(q, k=10)
            qi.search(q, k=10, mode="dense")
        # Interleaved query by query: the shipped setting (one torch thread for a query,
        # Encoder.query_threads) and torch's own thread count (query_threads=0).
        timed = _timed_queries(qi, encoder, qs, {"": None, "_all_threads": 0})

        qvecs = [encoder.encode_query([q], "text")[0] for q in qs]
        depth = 50  # what the searcher asks FAISS for with k=10: max(50, 5k)
        faiss_t, faiss_all_t = [], []
        # FaissVectorStore.search runs one query on one OpenMP thread; vi.index.search is FAISS
        # itself with every thread. Alternating which goes first: the second finds the
        # same inverted lists in the cache.
        calls = [(faiss_t, vi.search), (faiss_all_t, vi.index.search)]
        for i, v in enumerate(qvecs):
            for times, search in calls if i % 2 == 0 else calls[::-1]:
                t = time.perf_counter()
                search(v[None, :], depth)
                times.append(time.perf_counter() - t)
        qmat = np.stack(qvecs)
        all_ids, all_vecs = qi.store.vectors("text")
        _, truth = exact_search(all_vecs, all_ids, qmat, 10)
        found = np.stack([vi.search(v[None, :], 10)[1][0] for v in qvecs])
        recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in
                                zip(found, truth, strict=True)]))
        row = {
            "chunks": size, "real_chunks": int(min(size, len(real_ids))),
            "faiss_factory": vi.built_factory,
            "nprobe": _nprobe(vi), "write_s": round(write_s, 1), "faiss_build_s": round(build_s, 1),
            "lexical_build_s": round(lexical_s, 1),
            "search": ms(timed["hybrid"]), "search_dense": ms(timed["dense"]),
            "encode_query": ms(timed["encode"]), "search_cpu": ms(timed["hybrid_cpu"]),
            "search_all_threads": ms(timed["hybrid_all_threads"]),
            "search_dense_all_threads": ms(timed["dense_all_threads"]),
            "encode_query_all_threads": ms(timed["encode_all_threads"]),
            "search_cpu_all_threads": ms(timed["hybrid_cpu_all_threads"]),
            "faiss_top50": ms(faiss_t), "faiss_top50_all_threads": ms(faiss_all_t),
            "recall_at_10_vs_exact": round(recall, 3), "loadavg": loadavg(),
        }
        if args.onnx:
            row["onnx"] = _onnx_queries(qi, path, qs)
        if args.cold_runs:
            row["cold"] = bench_cold(path, qs, args.cold_runs)
        out.append(row)
        log(f"{size}: p50 {row['search']['p50_ms']} ms (encode {row['encode_query']['p50_ms']}, "
            f"faiss {row['faiss_top50']['p50_ms']})")
    qi.close()
    return out


def warm_queries(index, qs: list[str], extra=None) -> dict[str, list[float]]:
    """Seconds per query after 5 warm-up queries: hybrid (the default) then dense, query by
    query (load changes hit both alike), and `extra(q)` after them when given."""
    for q in qs[:5]:  # warm-up: sessions, FAISS, SQLite pages
        index.search(q, k=10)
        index.search(q, k=10, mode="dense")
    out: dict[str, list[float]] = {"hybrid": [], "dense": [], "extra": []}
    for q in qs:
        t = time.perf_counter()
        assert index.search(q, k=10)
        out["hybrid"].append(time.perf_counter() - t)
        t = time.perf_counter()
        index.search(q, k=10, mode="dense")
        out["dense"].append(time.perf_counter() - t)
        if extra is not None:
            t = time.perf_counter()
            extra(q)
            out["extra"].append(time.perf_counter() - t)
    return out


def _onnx_queries(qi, path: Path, qs: list[str]) -> dict[str, Any]:
    """The default query path: `anyfind index` writes an ONNX export of the text model and
    searches encode through it (one onnxruntime thread, no torch). Exported here (once),
    then the same queries through a second handle on the index, hybrid / dense / encode."""
    from anyfind import Index

    t = time.perf_counter()
    results = qi.export_onnx()
    export_s = time.perf_counter() - t
    assert all(r.status in ("exported", "current") for r in results), results
    with Index.open(path) as qo:
        space = qo.spaces["text"]
        assert not space.queries_use_torch, space.export_problem
        enc = space.query_encoder
        timed = warm_queries(qo, qs, extra=lambda q: enc.encode_query([q], "text"))
        lexical = _lexical_queries(qo, qs)
    hybrid, dense, encode = timed["hybrid"], timed["dense"], timed["extra"]
    return {"export_s": round(export_s, 1), "search": ms(hybrid), "search_dense": ms(dense),
            "encode_query": ms(encode), **lexical, "loadavg": loadavg()}


def _lexical_queries(index, qs: list[str]) -> dict[str, Any]:
    """The lexical top 50 a search asks for: from the tantivy cache (what a search uses)
    and from FTS5 (what it falls back to), query by query."""
    from sqlalchemy import select

    from anyfind.search.terms import query_terms
    from anyfind.store.schema import Chunk

    assert index.lexical.backend() == "tantivy", index.lexical.describe()
    # A filter that keeps one chunk in five, as a search's filters arrive: the select (for
    # FTS5) and its chunk ids (for the cache), resolved once.
    sel = select(Chunk.id).where(Chunk.id % 5 == 0)
    ids = index.store.chunk_ids(sel)
    tantivy = index.lexical.answering()
    runs: dict[str, list[float]] = {k: [] for k in ("tv", "fts", "tv_f", "fts_f")}
    calls = {"tv": lambda t: index.lexical.search(t, 50),
             "fts": lambda t: index.reader.lexical.search(t, 50),
             "tv_f": lambda t: tantivy.search(t, 50, ids),
             "fts_f": lambda t: index.store.lexical.search(t, 50, sel)}
    for q in qs:
        terms = query_terms(q)
        for key, call in calls.items():
            t = time.perf_counter()
            call(terms)
            runs[key].append(time.perf_counter() - t)
    return {"lexical_top50_tantivy": ms(runs["tv"]), "lexical_top50_fts5": ms(runs["fts"]),
            "lexical_top50_filtered_tantivy": ms(runs["tv_f"]),
            "lexical_top50_filtered_fts5": ms(runs["fts_f"]),
            "query_terms_p50": statistics.median(len(query_terms(q)) for q in qs)}


def _timed_queries(qi, encoder, qs: list[str], settings: dict[str, int | None]
                   ) -> dict[str, list[float]]:
    """Hybrid (the default) search, dense-only search and the query encoding alone, for
    each `Encoder.query_threads` setting (key suffix -> value), interleaved query by query
    so that changes in machine load hit them all alike (and in alternating order)."""
    out: dict[str, list[float]] = {f"{m}{sfx}": [] for sfx in settings
                                   for m in ("hybrid", "hybrid_cpu", "dense", "encode")}
    shipped = encoder.query_threads
    try:
        for i, q in enumerate(qs):
            order = list(settings.items())
            for sfx, threads in order if i % 2 == 0 else order[::-1]:  # neither always first
                encoder.query_threads = threads
                t, c = time.perf_counter(), time.process_time()
                results = qi.search(q, k=10)
                out["hybrid" + sfx].append(time.perf_counter() - t)
                out["hybrid_cpu" + sfx].append(time.process_time() - c)
                assert results
                t = time.perf_counter()
                qi.search(q, k=10, mode="dense")
                out["dense" + sfx].append(time.perf_counter() - t)
                t = time.perf_counter()
                encoder.encode_query([q], "text")
                out["encode" + sfx].append(time.perf_counter() - t)
    finally:
        encoder.query_threads = shipped
    return out


def _all_chunks(index) -> list[dict[str, Any]]:
    from sqlalchemy import text as sql

    with index.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sql("SELECT id, text FROM chunks"))]


def _nprobe(vi) -> int | None:
    import faiss

    ivf = faiss.try_extract_index_ivf(vi.index)
    return None if ivf is None else int(ivf.nprobe)


# -- 3. cold CLI search -------------------------------------------------------------------------


def _wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr[-500:]}")
    return wall


_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import anyfind.cli
from anyfind import Index
t1 = time.perf_counter()
idx = Index.open(sys.argv[1], create=False)
enc = idx.spaces["text"].encoder
enc.model
t2 = time.perf_counter()
enc.encode_query([sys.argv[2]], "text")
t3 = time.perf_counter()
idx.opened.vectors("text")
t4 = time.perf_counter()
idx.search(sys.argv[2], k=10)
t5 = time.perf_counter()
print(json.dumps({"import_cli": t1 - t0, "torch_model_load": t2 - t1, "first_encode": t3 - t2,
                  "faiss_load": t4 - t3, "first_search": t5 - t4}))
"""


def bench_cold(index_path: Path, queries: list[str], runs: int) -> dict[str, Any]:
    """Median wall time of `anyfind search` in fresh processes, and where one spends it."""
    py = sys.executable
    search = [_wall([py, "-m", "anyfind", "search", queries[i % len(queries)], "--index",
                     str(index_path), "-k", "10"]) for i in range(runs)]
    t = time.perf_counter()
    proc = subprocess.run([py, "-c", _PROBE, str(index_path), queries[0]], capture_output=True,
                          text=True, cwd=REPO, timeout=300, check=True)
    probe_wall = time.perf_counter() - t
    parts = json.loads(proc.stdout.strip().splitlines()[-1])
    parts["python_start_and_exit"] = probe_wall - sum(parts.values())
    med = statistics.median(search)
    return {
        "runs": runs, "median_s": round(med, 2), "min_s": round(min(search), 2),
        "max_s": round(max(search), 2), "help_s": round(_wall([py, "-m", "anyfind", "--help"]), 2),
        "breakdown_s": {k: round(v, 3) for k, v in parts.items()},
    }


# -- report ---------------------------------------------------------------------------------------


def table(res: dict[str, Any]) -> str:
    ix = res["indexing"]
    lines = [
        f"machine: {res['machine']['cpu']} ({res['machine']['cores']} cores, "
        f"torch {res['machine']['torch']} with {res['machine']['torch_threads']} threads, "
        f"cuda={res['machine']['cuda']}), python {res['machine']['python']}, "
        f"faiss {res['machine']['faiss']}",
        "",
        f"1. indexing ({ix['source']}: {ix['files']} files, {ix['corpus_mb']} MB, "
        f"{ix['chunks']} chunks, {ix['tokens_per_chunk_mean']} tokens/chunk mean, "
        f"batch {ix['batch_size']})",
        "| measure | seconds | chunks/s |",
        "|---|---:|---:|",
        f"| Index.add (end to end) | {ix['index_s']} | {ix['index_chunks_per_s']} |",
        f"| SentenceTransformer.encode, same texts | {ix['raw_encode_s']} | "
        f"{ix['raw_chunks_per_s']} |",
        f"| SentenceTransformer.encode, same texts, its default batch 32 | | "
        f"{ix.get('raw_default_batch_chunks_per_s')} |",
        f"| **ratio** (fp32 raw at the encoder's batch; issue 17 goal >= 2) | | "
        f"**{ix['ratio']}** (vs batch 32: {ix.get('ratio_vs_default_batch')}) |",
        f"(documents encoded as {ix.get('document_precision')})",
        f"(median of {ix['repeats']} alternating runs, ratios {ix['ratio_per_repeat']}; "
        f"CPU seconds of this process: index {ix['index_cpu_s']}, raw {ix['raw_cpu_s']}, "
        f"ratio {ix['cpu_time_ratio']})",
        f"(model load, excluded from both: {ix['model_load_s']} s; load average "
        f"{ix['loadavg_before']} -> {ix['loadavg_after']})",
        "",
        "2. warm query latency, k=10 (ms): `Index.search` end to end (hybrid = the default: "
        "dense + lexical, fused; dense = FAISS only), the query encoding alone, FAISS alone "
        "(one query; `FaissVectorStore.search` = 1 OpenMP thread, `all` = FAISS with every thread)",
        "| chunks | FAISS index | torch threads for a query | hybrid p50 | hybrid p95 | "
        "dense p50 | dense p95 | encode p50 | FAISS top-50 p50 / p95 | recall@10 vs exact |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    threads = res["machine"]["torch_threads"]
    for q in res.get("queries", []):
        fac = q["faiss_factory"] + (f" nprobe={q['nprobe']}" if q["nprobe"] else "")
        for label, suffix in (("1 (query_threads default)", ""),
                              (f"{threads} (torch's own)", "_all_threads")):
            lines.append(
                f"| {q['chunks']:,} | {fac} | {label} | {q['search' + suffix]['p50_ms']} | "
                f"{q['search' + suffix]['p95_ms']} | {q['search_dense' + suffix]['p50_ms']} | "
                f"{q['search_dense' + suffix]['p95_ms']} | "
                f"{q['encode_query' + suffix]['p50_ms']} | {q['faiss_top50' + suffix]['p50_ms']} / "
                f"{q['faiss_top50' + suffix]['p95_ms']} | {q['recall_at_10_vs_exact']} |")
        if "onnx" in q:
            o = q["onnx"]
            lines.append(
                f"| {q['chunks']:,} | {fac} | ONNX export, 1 thread (the default path) | "
                f"{o['search']['p50_ms']} | {o['search']['p95_ms']} | "
                f"{o['search_dense']['p50_ms']} | {o['search_dense']['p95_ms']} | "
                f"{o['encode_query']['p50_ms']} | | |")
    lines.append("(CPU time of a hybrid query, p50, 1 / all torch threads: " + ", ".join(
        f"{q['chunks']:,}: {q['search_cpu']['p50_ms']} / {q['search_cpu_all_threads']['p50_ms']} ms"
        for q in res.get("queries", [])) + ")")
    lex = [q for q in res.get("queries", []) if "lexical_top50_tantivy" in q.get("onnx", {})]
    if lex:
        lines += ["", "lexical top 50 alone (ms, p50 / p95): the tantivy cache (what a search "
                  "uses) and FTS5 (its fallback), unfiltered and with a filter keeping one "
                  "chunk in five; cache build seconds",
                  "| chunks | query terms p50 | tantivy | FTS5 | filtered: tantivy | "
                  "filtered: FTS5 | cache build s |",
                  "|---:|---:|---|---|---|---|---:|"]
        for q in lex:
            o = q["onnx"]
            cells = " | ".join(
                f"{o[k]['p50_ms']} / {o[k]['p95_ms']}" if k in o else ""
                for k in ("lexical_top50_tantivy", "lexical_top50_fts5",
                          "lexical_top50_filtered_tantivy", "lexical_top50_filtered_fts5"))
            lines.append(f"| {q['chunks']:,} | {o['query_terms_p50']} | {cells} | "
                         f"{q.get('lexical_build_s')} |")
    if any("cold" in q for q in res.get("queries", [])):
        lines += ["", "3. cold `anyfind search` (fresh process), seconds; breakdown from one "
                  "instrumented fresh process",
                  "| chunks | median | min | max | `--help` | python start+exit | import CLI | "
                  "torch + model load | 1st encode | FAISS load | 1st search |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for q in res.get("queries", []):
            c = q.get("cold")
            if c:
                b = c["breakdown_s"]
                lines.append(
                    f"| {q['chunks']:,} | {c['median_s']} | {c['min_s']} | {c['max_s']} | "
                    f"{c['help_s']} | {b['python_start_and_exit']:.2f} | {b['import_cli']:.2f} | "
                    f"{b['torch_model_load']:.2f} | {b['first_encode']:.3f} | "
                    f"{b['faiss_load']:.3f} | {b['first_search']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("generated", "cisi"), default="generated",
                    help="generated prose (default) or the CISI abstracts, if present")
    ap.add_argument("--files", type=int, default=None, help="files to index (default 2000; "
                    "cisi: all 1460)")
    ap.add_argument("--sizes", default=None, help="chunk counts for the latency runs "
                    "(default 10000,100000)")
    ap.add_argument("--queries", type=int, default=None, help="timed queries per size "
                    "(default 200)")
    ap.add_argument("--cold-runs", type=int, default=None, help="cold CLI searches per size "
                    "(default 5; 0 skips)")
    ap.add_argument("--quick", action="store_true",
                    help="small run (~2 min): 300 files, 10k chunks, 50 queries, 3 cold runs")
    ap.add_argument("--repeats", type=int, default=1, help="alternate Index.add (fresh "
                    "index) and raw encode this many times; medians (steadier on a busy machine)")
    ap.add_argument("--synthetic-text", choices=("copies", "sentences"), default="copies",
                    help="text of the synthetic chunks: copies of the real chunks' text "
                    "(default; the worst case for the lexical index) or random real "
                    "sentences (keeps the corpus's word statistics)")
    ap.add_argument("--no-onnx", dest="onnx", action="store_false",
                    help="skip the ONNX query path (the default path of an `anyfind index`)")
    ap.add_argument("--indexing-only", action="store_true",
                    help="step 1 only (indexing throughput against raw encode)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the indexes here")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args()
    quick = args.quick
    args.files = args.files or (300 if quick else (1460 if args.source == "cisi" else 2000))
    args.queries = args.queries or (50 if quick else 200)
    args.cold_runs = args.cold_runs if args.cold_runs is not None else (3 if quick else 5)
    sizes = [int(s) for s in (args.sizes or ("10000" if quick else "10000,100000")).split(",")]

    work = workspace(args.workdir, "anyfind-bench-")
    started = time.perf_counter()
    try:
        res = header(machine(), args)
        res["indexing"], real_index, queries = bench_indexing(work, args)
        if not args.indexing_only:
            res["queries"] = bench_queries(work, real_index, queries, sizes, args)
        real_index.close()
        res["synthetic_note"] = (
            f"Only the {res['indexing']['chunks']} real chunks were embedded by the model; "
            "every other chunk is a perturbed copy of a real chunk's vector (Gaussian noise, "
            "cosine ~0.94 to its original, re-normalised) with that chunk's text, written "
            "through MetadataStore.write_items. Queries are encoded by the real model.")
        res["total_s"] = round(time.perf_counter() - started, 1)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report(res, table(res), f"total {res['total_s']} s; {res['synthetic_note']}", args.out)


def workspace(workdir: Path | None, prefix: str) -> Path:
    """The benchmark's folder (a temp one unless given), with ANYFIND_HOME inside it."""
    work = workdir or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["ANYFIND_HOME"] = str(work / "home")
    return work


def header(machine_info: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The results' first keys: the machine and the arguments."""
    return {"machine": machine_info, "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}


def report(res: dict[str, Any], tables: str, footer: str, out: Path | None) -> None:
    """Print the tables and a footer line; write the results as JSON to `out` if given."""
    print(tables)
    print(f"\n({footer})")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
