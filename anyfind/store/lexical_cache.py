"""BM25 over chunk text in a tantivy index kept beside a SQLite store: a derived cache.

Why: FTS5 computes BM25 for every row that matches any query term, so a long question
(20+ terms, most of them somewhere in most chunks) costs ~170 ms at 100k chunks. tantivy
skips the rows that cannot reach the top k (block-max WAND): ~2 ms on the same queries
(docs/BENCHMARKS.md). Filters pass the allowed chunk ids (a zero-scored term set). The
store stays the truth; FTS5 stays in it (highlighting, `anyfind check`, and every query
while this cache is not current).

Like the FAISS files, the cache is caught up from the store by the writer (at the end of
each sync and at its checkpoints, under the index's write lock) and only read by
searches. It is current when its stamp equals the store's: (the chunks table's
AUTOINCREMENT high-water mark, the number of chunks). Chunk ids are never reused and a
chunk's text never changes, so any insert raises the first and any delete lowers the
second: no later store state can carry an earlier stamp. A search whose cache is not
current (a sync is running, a crash, no tantivy) runs the same query on FTS5: slower,
never wrong.

Files under `<index>/lexical/`: tantivy's own, `ids.npy` (the chunk ids it holds, for the
next catch-up) and `state.json` (the stamp; written last, it is the commit point).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..crashpoints import crash_point
from ..fsutil import atomic_write_bytes, atomic_write_with
from .lexical_store import IDS, LexicalStore, warn_once

DIRNAME = "lexical"
# Bump when the schema or the analyser changes: a cache of another format is rebuilt.
FORMAT = 1
ANALYZER = "anyfind_en"  # simple tokenizer, lower case, ASCII folding, English stemmer
_STATE, _IDS = "state.json", "ids.npy"
_TEXT_BATCH = 4_000  # chunk texts read from the store per query while catching up


def available() -> bool:
    try:
        import tantivy  # noqa: F401
    except ImportError:
        return False
    return True


def _analyzer():
    import tantivy

    # Close to FTS5's `porter unicode61 remove_diacritics 2`: words are runs of letters
    # and digits, case and accents folded, English (Porter2) stems.
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.stemmer("english"))
            .build())


_local = threading.local()  # one analyser per thread for stems_of
_STEMS: dict[str, tuple[str, ...]] = {}  # word -> its stems, shared (bounded below)


def stems_of(word: str) -> tuple[str, ...]:
    """The cache's analysis of one word (query terms; highlighting asks for many, often
    the same)."""
    found = _STEMS.get(word)
    if found is None:
        analyzer = getattr(_local, "analyzer", None)
        if analyzer is None:
            analyzer = _local.analyzer = _analyzer()
        if len(_STEMS) > 200_000:
            _STEMS.clear()
        found = _STEMS[word] = tuple(analyzer.analyze(word))
    return found


def _schema():
    import tantivy

    return (tantivy.SchemaBuilder()
            .add_unsigned_field("chunk_id", indexed=True, fast=True)
            .add_text_field("text", tokenizer_name=ANALYZER, index_option="freq")
            .build())


class LexicalCache:
    """The tantivy index of one anyfind index (see the module docstring)."""

    def __init__(self, index_dir: Path):
        self.dir = Path(index_dir) / DIRNAME
        self._lock = threading.Lock()
        self._opened: tuple[Any, Any, dict] | None = None  # (tantivy index, stat key, state)
        self._failed: Any = None  # the stat key of a state whose index would not open

    # -- reading -----------------------------------------------------------------------------
    def state(self) -> dict | None:
        """The committed state ({format, stamp, docs}), or None when there is none."""
        try:
            state = json.loads((self.dir / _STATE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            return None
        return state

    def _open(self) -> tuple[Any, dict] | None:
        """The tantivy index as of the current state file, reopened when that changed."""
        try:
            st = (self.dir / _STATE).stat()
        except OSError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        opened = self._opened
        if opened is not None and opened[1] == key:
            return opened[0], opened[2]
        if self._failed == key:  # damaged: not retried on every query, only once changed
            return None
        with self._lock:
            opened = self._opened
            if opened is not None and opened[1] == key:
                return opened[0], opened[2]
            state = self.state()
            if state is None:
                return None
            import tantivy

            try:
                index = tantivy.Index.open(str(self.dir))
                index.register_tokenizer(ANALYZER, _analyzer())
            except Exception:
                self._failed = key
                raise
            self._opened = (index, key, state)
            return index, state

    def current(self, stamp: Sequence[int]) -> bool:
        try:
            opened = self._open()
        except Exception:  # noqa: BLE001 (a damaged cache is a stale one: FTS5 answers)
            return False
        return opened is not None and opened[1].get("stamp") == list(stamp)

    def search(self, terms: Sequence[str], depth: int, only: np.ndarray | None = None
               ) -> list[tuple[int, float]]:
        """Top `depth` (chunk id, BM25) for chunks holding any of the terms, best first,
        among the chunk ids `only` when given (filters). Call only when `current()`; a
        repeated term weighs once per repetition (as FTS5)."""
        import tantivy

        opened = self._open()
        if opened is None or not terms or depth <= 0 or (only is not None and not len(only)):
            return []
        index = opened[0]
        counts = Counter(tok for t in terms for tok in stems_of(t))
        if not counts:
            return []
        schema = index.schema
        clauses = []
        for token, n in counts.items():
            q = tantivy.Query.term_query(schema, "text", token, index_option="freq")
            clauses.append((tantivy.Occur.Should, q if n == 1 else tantivy.Query.boost_query(q, n)))
        query = tantivy.Query.boolean_query(clauses)
        if only is not None:  # a zero-scored condition: BM25 scores stay as they are
            allowed = tantivy.Query.term_set_query(schema, "chunk_id", np.asarray(only).tolist())
            query = tantivy.Query.boolean_query([
                (tantivy.Occur.Must, query),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(allowed, 0.0))])
        searcher = index.searcher()
        depth = min(depth, max(1, searcher.num_docs))  # tantivy allocates `depth` slots
        hits = searcher.search(query, depth, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("chunk_id", [addr for _, addr in hits])
        # Best first; ties by chunk id, as the FTS5 query orders them.
        return sorted(((int(cid), float(score)) for (score, _), cid in zip(hits, ids, strict=True)),
                      key=lambda h: (-h[1], h[0]))

    def reference(self, terms: Sequence[str]) -> float | None:
        """The BM25 an average-length chunk holding each query term once would score
        (tf = 1 and length = average make BM25's saturation factor 1: the sum of idfs,
        counted as often as a term is repeated, as `search` boosts it)."""
        opened = self._open()
        if opened is None:
            return None
        counts = Counter(tok for t in terms for tok in stems_of(t))
        searcher = opened[0].searcher()
        n = searcher.num_docs
        total = 0.0
        for token, times in counts.items():
            df = searcher.doc_freq("text", token)
            total += times * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return total

    def documents(self) -> int:
        """How many chunks the committed cache holds (opens tantivy's files)."""
        opened = self._open()
        if opened is None:
            return 0
        opened[0].reload()
        return opened[0].searcher().num_docs

    def close(self) -> None:
        with self._lock:
            self._opened = self._failed = None

    # -- writing (the index's writer only, under its write lock) ----------------------------
    def catch_up(self, reader, checkpoint: bool = False) -> str:
        """Make the cache equal the store's chunks. `reader`: a store.reader.SQLiteReader.
        Returns "current", "updated", "rebuilt" or (checkpoint=True) "deferred".

        Deletes are never applied in place: tantivy keeps a deleted document in its term
        and length statistics until segments merge (tantivy-py cannot ask for a merge),
        so BM25 after an edit would differ from a clean build's. Chunks only added are
        added; any delete rebuilds the cache from the store (~0.3 s per 10k chunks). A
        checkpoint in the middle of a sync defers that rebuild to the sync's end: the
        stale cache is not used meanwhile, FTS5 answers."""
        stamp = reader.chunk_stamp()  # first: a change after it leaves the stamp stale
        state = self.state()
        if state is not None and state.get("stamp") == list(stamp) and self._intact(stamp[1]):
            return "current"
        want = reader.chunk_ids()
        index = None
        have = None
        if state is not None:
            try:
                have = np.load(self.dir / _IDS)
                index = self._writable()
            except Exception:  # noqa: BLE001 (whatever is damaged is rebuilt below)
                index = None
        if index is not None and have is not None:
            extra = np.setdiff1d(have, want, assume_unique=True)
            missing = np.setdiff1d(want, have, assume_unique=True)
            if len(extra) and checkpoint:
                return "deferred"
            if not len(extra) and self._apply(index, reader, extra, missing,
                                              delete_first=True) == len(want):
                self._commit_state(stamp, want)
                return "updated"
        # No cache, another format, damaged, a delete, or not what the store says after an
        # update (a crash between tantivy's commit and ours): build it again from the store.
        index = None  # let go of the old one (its reader watches the files) before removal
        self._remove()
        index = self._writable(create=True)
        docs = self._apply(index, reader, np.zeros(0, np.int64), want, delete_first=False)
        if docs != len(want):
            raise RuntimeError(f"lexical cache holds {docs} chunks after a rebuild, "
                               f"the store {len(want)}")
        self._commit_state(stamp, want)
        return "rebuilt"

    def _intact(self, count: int) -> bool:
        """tantivy's files open and hold `count` chunks (a state can outlive its files)."""
        try:
            index = self._writable()
            index.reload()
            return index.searcher().num_docs == count
        except Exception:  # noqa: BLE001 (damaged: the caller rebuilds)
            return False

    def _writable(self, create: bool = False):
        import tantivy

        if create:
            self.dir.mkdir(parents=True, exist_ok=True)
            index = tantivy.Index(_schema(), path=str(self.dir), reuse=False)
        else:
            index = tantivy.Index.open(str(self.dir))
        index.register_tokenizer(ANALYZER, _analyzer())
        return index

    def _apply(self, index, reader, extra: np.ndarray, missing: np.ndarray,
               delete_first: bool) -> int:
        """Delete `extra`, add `missing` (read from the store), commit; the doc count after."""
        import tantivy

        # One indexing thread: the writer runs beside the model, which has the cores.
        writer = index.writer(heap_size=64_000_000, num_threads=1)
        schema = index.schema

        def delete(cid: int) -> None:
            # By a term query: it encodes the id as the field's type (u64);
            # delete_documents_by_term takes a Python int for an i64 and matches nothing.
            writer.delete_documents_by_query(tantivy.Query.term_query(schema, "chunk_id", cid))

        for cid in extra.tolist():
            delete(cid)
        for start in range(0, len(missing), _TEXT_BATCH):
            batch = missing[start:start + _TEXT_BATCH].tolist()
            for cid, text in reader.chunk_texts(batch):
                if delete_first:  # a crashed catch-up may have committed it already
                    delete(cid)
                doc = tantivy.Document()
                doc.add_unsigned("chunk_id", int(cid))
                if text:
                    doc.add_text("text", text)
                writer.add_document(doc)
        writer.commit()
        crash_point("lexical.committed")
        writer.wait_merging_threads()
        index.reload()
        return index.searcher().num_docs

    def _commit_state(self, stamp: Sequence[int], ids: np.ndarray) -> None:
        def save(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(ids, dtype=np.int64))

        atomic_write_with(self.dir / _IDS, save)
        crash_point("lexical.ids_written")
        state = {"format": FORMAT, "analyzer": ANALYZER, "stamp": list(stamp), "docs": len(ids)}
        atomic_write_bytes(self.dir / _STATE, json.dumps(state).encode())

    def _remove(self) -> None:
        """Take the cache away: renamed aside first (atomic, whatever tantivy threads of
        this process still watch in it), then deleted, with any earlier leftovers."""
        self.close()
        if self.dir.exists():
            aside = self.dir.with_name(f".{DIRNAME}-{os.getpid()}-{time.monotonic_ns()}.old")
            os.replace(self.dir, aside)
        for old in self.dir.parent.glob(f".{DIRNAME}-*.old"):
            shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            raise OSError(f"could not remove {self.dir}")


class TantivyLexical(LexicalStore):
    """The lexical backend over the cache: BM25 with block-max WAND, filters as the allowed
    chunk ids. Ready while the cache's stamp is the store's; a failure hands the query to
    the store's own full text (`derived`)."""

    name = "tantivy"
    filter_form = IDS
    ranking = "bm25"
    derived = True

    def __init__(self, cache: LexicalCache, reader: Any):
        self.cache = cache
        self._reader = reader  # what the stamp is read from (a SQLiteReader or the MetadataStore)

    @classmethod
    def open(cls, place) -> TantivyLexical:
        return cls(LexicalCache(place.index_dir), place.reader)

    def ready(self) -> bool:
        return self.cache.current(self._reader.chunk_stamp())

    def search(self, terms: Sequence[str], depth: int, allowed: Any = None
               ) -> list[tuple[int, float]]:
        return self.cache.search(terms, depth, allowed)

    def reference(self, terms: Sequence[str]) -> float | None:
        return self.cache.reference(terms)

    def describe(self) -> str:
        return "tantivy"

    def catch_up(self, source, checkpoint: bool = False) -> str:
        """From the reader the stamp is read from, whatever `source` is: the cache is
        current when its stamp equals the one `ready()` reads."""
        return self.cache.catch_up(self._reader, checkpoint)

    def check(self, source) -> str | None:
        """Behind the source's chunks, or damaged; None when current (an index with no
        chunks yet needs no cache)."""
        stamp = list(source.chunk_stamp())
        cache, state = self.cache, self.cache.state()
        if not cache.dir.exists():
            return "it is missing" if stamp[1] else None
        if state is None:
            return "it has no readable state"
        if state.get("stamp") != stamp:
            return f"it holds the chunks as of {state.get('stamp')}, the store is at {stamp}"
        try:
            docs = cache.documents()
        except Exception as exc:  # noqa: BLE001 (tantivy's own error says what is damaged)
            return f"it cannot be read: {type(exc).__name__}: {exc}"
        return f"it holds {docs} chunks, the store {stamp[1]}" if docs != stamp[1] else None

    def close(self) -> None:
        self.cache.close()


ENV = "ANYFIND_LEXICAL"  # "fts5": searches skip the cache (comparisons, diagnosis)


def wanted() -> str | None:
    """None when a SQLite store gets the cache, else why not (one clause)."""
    if os.environ.get(ENV, "").lower() == "fts5":
        return f"{ENV}=fts5"
    return None if available() else "tantivy is not installed"


def catch_up(index_dir: Path, store_url: str, checkpoint: bool = False) -> str | None:
    """Bring the cache of the index at `index_dir` up to its store (writers only).
    None when there is no cache for this store (not SQLite, or no tantivy)."""
    from .reader import SQLiteReader

    if not available():
        return None
    reader = SQLiteReader.open(store_url)
    if reader is None:
        return None
    try:
        return LexicalCache(index_dir).catch_up(reader, checkpoint)
    except Exception as exc:  # noqa: BLE001 (a derived cache: searches fall back to FTS5)
        warn_once(f"the lexical cache could not be updated ({type(exc).__name__}: {exc}); "
                  "searches use FTS5 until the next sync")
        return None
    finally:
        reader.close()
