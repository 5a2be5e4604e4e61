"""BM25 in Milvus: the lexical half of a cluster index (PostgreSQL + Milvus).

Why: PostgreSQL's full-text ranking (ts_rank_cd) has no document-frequency weighting and
loses to BM25 by 0.07-0.13 nDCG@10 on CISI and Cranfield (docs/SCALE.md, measured with
benchmarks/bench_lexical_services.py). Milvus 2.5+ computes BM25 itself: a VARCHAR field
analysed into a sparse vector by its BM25 function, searched with the same filter
expressions as the vectors (search/filter_milvus.py), on the same servers.

One collection per index (`<prefix>lexical`): chunk id as primary key, the chunk's text,
the BM25 sparse vector and the item fields filters compare (store/filter_fields.py). It is
written like the vector collections, from the store's outbox (store/outbox.py) under the
pseudo-space LEXICAL: the rows after its mark, a chunk's last op winning, each row read
whole from the store; a collection without a mark is compared whole once. Searches never
write to it. Engines without BM25 (Milvus before 2.5) are not used: the index keeps
PostgreSQL's full text, and `anyfind status` says why.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..crashpoints import crash_point
from ..secrets import mask_uri
from .filter_fields import DEFAULTS
from .lexical_store import EXPRESSION, LexicalStore
from .milvus_store import (
    OWNER,
    add_filter_fields,
    all_ids,
    check_owner,
    delete_ids,
    load_if_released,
    refuse_unexplained,
)
from .outbox import LEXICAL, last_ops

MARK = "anyfind.outbox"  # collection property: the last outbox sequence applied
NAME = "lexical"  # the collection: <prefix>lexical
OUTBOX_BATCH = 10_000
BATCH = 1_000
COUNT_TTL = 300.0  # seconds a document frequency is reused (`reference`)
MAX_TEXT_BYTES = 65_535  # Milvus's VARCHAR limit (a chunk is far shorter)
# Milvus 2.5+'s English analyzer: lower case, English stop words, Porter stemming (as the
# SQLite side's FTS5 and tantivy). Milvus Lite applies the tokenizer and ignores the
# filters (measured): BM25 over lower-cased words there.
ANALYZER = {"tokenizer": "standard",
            "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]},
                       {"type": "stemmer", "language": "english"}]}


def bm25_support(version: str) -> str | None:
    """None when an engine of this version has BM25, else why not (one line)."""
    if version.startswith("milvus_lite"):
        return None
    digits = version.lstrip("vV").split("-")[0].split(".")
    try:
        major, minor = int(digits[0]), int(digits[1])
    except (IndexError, ValueError):
        return f"Milvus {version} reports no version anyfind can read"
    if (major, minor) >= (2, 5):
        return None
    return f"Milvus {version.lstrip('vV')} has no BM25 (2.5+)"


class MilvusLexical(LexicalStore):
    """The index's BM25 collection in Milvus, through its own MilvusClient (`open_lexical`).
    Only writers change it; its mark is read when first seen and kept by the writer.
    Filters are Milvus expressions over the item fields kept beside each chunk."""

    name = "milvus"
    filter_form = EXPRESSION
    ranking = "bm25"
    exact_scores = False  # Milvus Lite measured 0.95-1.10x textbook BM25 (length statistics)
    check_code = "lexical-service-mismatch"

    def __init__(self, client: Any, uri: str, prefix: str = "anyfind_",
                 consistency: str = "Session", owner: str = ""):
        self.client, self.uri, self.owner = client, uri, owner
        self.collection = f"{prefix}{NAME}"
        self.consistency = consistency
        self.mark: int | None = None
        self._exists_known = False
        self._counts: dict[str, tuple[int, float]] = {}  # filter -> (count, when)

    # -- the collection -------------------------------------------------------------------------
    def exists(self) -> bool:
        if not self._exists_known:
            if not self.client.has_collection(self.collection):
                return False
            load_if_released(self.client, self.collection)
            info = self.client.describe_collection(self.collection)
            check_owner(self.client, self.collection, info, self.owner, self.uri)
            self._exists_known = True
            props = info.get("properties") or {}
            self.mark = int(props[MARK]) if str(props.get(MARK, "")).isdigit() else None
        return True

    def _ensure(self) -> None:
        if self.exists():
            return
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES,
                         enable_analyzer=True, enable_match=True, analyzer_params=ANALYZER)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        add_filter_fields(schema)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(self.collection, schema=schema, index_params=index,
                                      consistency_level="Strong")
        if self.owner:
            self.client.alter_collection_properties(self.collection,
                                                    properties={OWNER: self.owner})
        self._exists_known, self.mark = True, None

    def drop(self) -> None:
        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        self._exists_known, self.mark = False, None

    def count(self) -> int:
        if not self.exists():
            return 0
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"],
                                 consistency_level="Strong")
        return int(rows[0]["count(*)"]) if rows else 0

    def describe(self) -> str:
        return f"Milvus BM25 ({mask_uri(self.uri)})"

    @classmethod
    def open(cls, place) -> MilvusLexical:
        """The collection at the place's service URI (a ConfigError when its engine has
        no BM25)."""
        from ..errors import ConfigError

        found, why = open_lexical(place.service_uri, owner=place.owner)
        if found is None:
            raise ConfigError(why or "no BM25 collection")
        return found

    def ready(self) -> bool:
        return self.exists()

    def check(self, source) -> str | None:
        """Its count against the source's chunks with text, less the outbox rows still to
        apply (the next sync applies those)."""
        if not self.exists():
            return None
        want, have = source.text_chunk_count(), self.count()
        if have == want or source.outbox_pending(LEXICAL, self.mark or 0):
            return None
        return f"it holds {have} chunks, the store {want} with text"

    # -- writes (the writer only) ---------------------------------------------------------------
    def catch_up(self, store, checkpoint: bool = False) -> str:
        """Apply the store's outbox rows for the lexical collection after the mark; a
        collection without a mark is compared whole (`reconcile`)."""
        self._ensure()
        if self.mark is None:
            return self.reconcile(store)
        changed = False
        while rows := store.outbox_since(LEXICAL, self.mark, OUTBOX_BATCH):
            write, gone, _ = last_ops(rows)
            self._write(store, write)
            delete_ids(self.client, self.collection, gone)
            crash_point("milvus.lexical.applied")  # written, mark not saved: harmless again
            self.mark = rows[-1][0]
            self._save_mark()
            changed = True
        if changed:
            self.client.flush(self.collection)  # sealed and indexed: Lite searches 14x faster
            store.prune_outbox(LEXICAL, self.mark)
        return "updated" if changed else "current"

    def reconcile(self, store) -> str:
        """The chunk ids compared whole (a new collection, `check --repair`): the one full
        scan. The outbox head is read first, so nothing committed meanwhile is skipped."""
        self._ensure()
        head = store.outbox_head(LEXICAL)
        want = np.asarray(store.chunk_ids(), dtype=np.int64)
        have = self.ids()
        extra = np.setdiff1d(have, want, assume_unique=True)
        missing = np.setdiff1d(want, have, assume_unique=True)
        refuse_unexplained(len(have), len(extra), self.describe())
        delete_ids(self.client, self.collection, extra.tolist())
        self._write(store, missing.tolist())
        self.mark = head
        self._save_mark()
        self.client.flush(self.collection)
        store.prune_outbox(LEXICAL, head)
        return "updated" if len(extra) or len(missing) else "current"

    def _write(self, store, chunk_ids: Sequence[int]) -> None:
        """Rows read whole from the store; a chunk gone since, or without text, goes."""
        for start in range(0, len(chunk_ids), BATCH):
            part = [int(c) for c in chunk_ids[start:start + BATCH]]
            texts = dict(store.chunk_texts(part))
            fields = store.chunk_fields(part)
            rows = [{"id": c, "text": _fit(texts[c]), **DEFAULTS, **fields[c]}
                    for c in part if texts.get(c) and c in fields]
            if rows:
                self.client.upsert(self.collection, rows)
            gone = [c for c in part if not texts.get(c) or c not in fields]
            delete_ids(self.client, self.collection, gone)


    def _save_mark(self) -> None:
        self.client.alter_collection_properties(
            self.collection, properties={MARK: "" if self.mark is None else str(self.mark)})

    def ids(self) -> np.ndarray:
        if not self.exists():
            return np.zeros(0, np.int64)
        return all_ids(self.client, self.collection)

    # -- reads ----------------------------------------------------------------------------------
    def search(self, terms: Sequence[str], depth: int, allowed: str | None = None
               ) -> list[tuple[int, float]]:
        """Top `depth` (chunk id, BM25 score) for the terms (OR'ed, as the store's full
        text), best first; `allowed`: a filter expression over the item fields."""
        where = allowed
        if not terms or depth <= 0 or not self.exists():
            return []
        hits = self.client.search(
            self.collection, data=[" ".join(terms)], anns_field="sparse",
            limit=min(depth, 16_384), search_params={"metric_type": "BM25"},
            output_fields=["id"], consistency_level=self.consistency,
            **({"filter": where} if where else {}))
        # BM25 is >= 0; Milvus Lite reports it negated (its "distance"), a server as is.
        found = [(int(h["id"]), abs(float(h["distance"]))) for h in (hits[0] if hits else [])]
        return sorted(found, key=lambda h: (-h[1], h[0]))

    def reference(self, terms: Sequence[str]) -> float | None:
        """What a chunk of average length holding each term once scores: the sum of the
        terms' idf (BM25's tf part is 1 there), idf from the collection's own counts."""
        if not terms or not self.exists():
            return None
        n = self._count_of("")
        if not n:
            return None
        times = Counter(terms)  # a repeated word weighs once per repetition, as in `search`
        words = [t.replace("\\", "\\\\").replace("'", "\\'") for t in times]
        # a round trip per word, side by side (a server answers each from its inverted index)
        counts = _pool().map(self._count_of, [f"TEXT_MATCH(text, '{w}')" for w in words])
        return float(sum(k * np.log(1 + (n - df + 0.5) / (df + 0.5))
                         for k, df in zip(times.values(), counts, strict=True)))

    def _count_of(self, where: str) -> int:
        """How many chunks match; kept a few minutes (a query's words recur, and a count
        is a round trip per word: document frequencies move slowly)."""
        now = time.monotonic()
        hit = self._counts.get(where)
        if hit is not None and now - hit[1] < COUNT_TTL:
            return hit[0]
        rows = self.client.query(self.collection, filter=where, output_fields=["count(*)"],
                                 consistency_level=self.consistency)
        count = int(rows[0]["count(*)"]) if rows else 0
        if len(self._counts) >= 10_000:
            self._counts.clear()
        self._counts[where] = (count, now)
        return count


@functools.lru_cache(maxsize=1)
def _pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(8, thread_name_prefix="anyfind-bm25")


def _fit(text: str) -> str:
    """A chunk's text within the VARCHAR limit (bytes, cut on a character boundary)."""
    raw = text.encode("utf-8")
    if len(raw) <= MAX_TEXT_BYTES:
        return text
    return raw[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")


def open_lexical(uri: str, token: str | None = None, owner: str = ""
                 ) -> tuple[MilvusLexical | None, str | None]:
    """The BM25 collection of an index whose vectors are at the Milvus `uri`, or (None,
    why) when its engine has no BM25. Raises ConfigError when Milvus cannot be reached."""
    from .milvus_store import connect, split_query

    params = split_query(uri)[1]
    client = connect(uri, token or params.get("token"))
    why = bm25_support(str(client.get_server_version()))
    if why is not None:
        return None, why
    return MilvusLexical(client, uri, params.get("prefix", "anyfind_"),
                         params.get("consistency", "session").capitalize(), owner), None
