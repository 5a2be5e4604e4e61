"""The lexical-store contract (anyfind/store/lexical_store.py), run against every backend
registered in `lexical_stores`, with plain BM25 in NumPy over the same chunks as the
oracle and a real metadata MetadataStore (SQLite; PostgreSQL for its own full text) as the
source of truth. A new backend arrives with these tests already written: register it
and add how to open it to `open_backend`.

The corpus is made of words no stemmer changes and no stop list drops, so every backend
sees the same tokens; chunks stay under 40 words (tantivy stores lengths exactly there).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from postgres_fixtures import postgres_server, postgres_url  # noqa: F401 (fixtures, by name)

from anyfind.search.allowed import Allowed
from anyfind.search.filters import parse_filters
from anyfind.store.lexical_store import LexicalPlace, LexicalStore, lexical_stores
from anyfind.store.metadata import ChunkRecord, ItemRecord, MetadataStore
from anyfind.store.reader import SQLiteReader

VOCAB = ["zebra", "quartz", "falcon", "cobalt", "violin", "harbor", "nickel", "lemon",
         "amber", "tundra", "walrus", "orchid", "basalt", "meteor"]
K1, B = 1.2, 0.75
# Every built-in; PostgreSQL's full text needs its own database.
BACKENDS = lexical_stores.names()


def corpus(rng: np.random.Generator, n: int, start: int = 0) -> list[list[str]]:
    """n chunks of 3-30 words, Zipf-like over VOCAB (some words common, some rare)."""
    weights = 1.0 / np.arange(1, len(VOCAB) + 1)
    weights /= weights.sum()
    return [list(rng.choice(VOCAB, size=int(rng.integers(3, 31)), p=weights))
            for _ in range(n)]


class Corpus:
    """A MetadataStore holding one item per chunk (half .md, half .txt) and the words of each."""

    def __init__(self, store: MetadataStore):
        self.store = store
        self.source = store.ensure_source("src", "filesystem", "/data")
        self.words: dict[int, list[str]] = {}  # chunk id -> its words
        self.n = 0

    def write(self, docs: list[list[str]]) -> None:
        entries = []
        for words in docs:
            self.n += 1
            ext = "md" if self.n % 2 else "txt"
            record = ItemRecord(source_id=self.source, uri=f"file:///data/{self.n}.{ext}",
                                path=f"/data/{self.n}.{ext}", modality="text",
                                media_type="text/plain", size=10, mtime=1.0,
                                fingerprint=str(self.n), content_hash=f"h{self.n}")
            text = " ".join(words)
            entries.append((record, [ChunkRecord(ordinal=0, modality="text", text=text,
                                                 char_start=0, char_end=len(text))], None))
        self.store.write_items(entries)
        self._read_back()

    def delete(self, how_many: int) -> None:
        items = sorted(row.id for row in self.store.items_of_source(self.source).values())
        self.store.delete_items(items[:how_many])
        self._read_back()

    def _read_back(self) -> None:
        ids = self.store.chunk_ids()
        self.words = {cid: (text or "").split() for cid, text in self.store.chunk_texts(ids)}


def oracle(words: dict[int, list[str]], terms: list[str], ranking: str) -> dict[int, float]:
    """BM25 (k1 1.2, b 0.75) of every chunk holding a term, each repetition of a query
    term counted again; idf as the backend's `ranking` says."""
    ids = sorted(words)
    n_docs = len(ids)
    lengths = np.array([len(words[i]) for i in ids], float)
    avg = lengths.mean()
    counts = [Counter(words[i]) for i in ids]
    score = np.zeros(n_docs)
    matched = np.zeros(n_docs, bool)
    for term in terms:
        tf = np.array([c[term] for c in counts], float)
        df = int((tf > 0).sum())
        if ranking == "bm25-fts5":
            idf = max(math.log((n_docs - df + 0.5) / (df + 0.5)), 1e-6)
        else:
            idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
        score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths / avg))
        matched |= tf > 0
    return {ids[i]: float(score[i]) for i in np.flatnonzero(matched)}


def reference_oracle(words: dict[int, list[str]], terms: list[str], ranking: str) -> float:
    """The sum of the terms' idf (a chunk of average length holding each once)."""
    n_docs = len(words)
    total = 0.0
    for term in terms:
        df = sum(term in set(w) for w in words.values())
        if ranking == "bm25-fts5":
            total += max(math.log((n_docs - df + 0.5) / (df + 0.5)), 1e-6)
        else:
            total += math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return total


@pytest.fixture(params=BACKENDS)
def setup(request, tmp_path):
    """(the backend under test, its corpus, its source): a fresh store of 80 chunks."""
    name = request.param
    if name == "milvus":
        pytest.importorskip("pymilvus")
    url = (request.getfixturevalue("postgres_url") if name == "postgres"
           else f"sqlite:///{tmp_path / 'meta.db'}")
    store = MetadataStore(url)
    if name == "milvus":
        store.enable_outbox(lexical=True)  # what an index whose vectors live there does
    data = Corpus(store)
    data.write(corpus(np.random.default_rng(3), 80))
    reader = SQLiteReader.open(url) if name == "tantivy" else None
    place = LexicalPlace(tmp_path, reader or store, lambda: store,
                         service_uri=f"milvus-lite://{tmp_path / 'bm25.db'}")
    backend = lexical_stores.get(name).open(place)
    backend.catch_up(store)
    yield backend, data, store
    backend.close()
    if reader is not None:
        reader.close()
    store.close()


def assert_equals_oracle(backend: LexicalStore, hits, want: dict[int, float], depth: int,
                         tolerance: float = 0.15):
    """Hits best first, ties by id; BM25 backends: the oracle's top `depth` with its
    scores (approximate ones: close scores, the oracle's best near the top); others (no
    document frequencies): chunks the oracle says match."""
    assert hits == sorted(hits, key=lambda h: (-h[1], h[0]))
    got = dict(hits)
    assert len(got) == min(depth, len(want))
    if depth >= len(want):
        assert set(got) == set(want)
    assert set(got) <= set(want)
    if backend.ranking == "cover-density" or not got:
        assert all(score > 0 for score in got.values())
        return
    if not backend.exact_scores:
        for cid, score in got.items():
            assert score == pytest.approx(want[cid], rel=tolerance), cid
        if depth >= len(want):
            best = sorted(want, key=lambda c: (-want[c], c))[:10]
            assert len(set(best) & {c for c, _ in hits[:10]}) >= 0.7 * len(best)
        return
    for cid, score in got.items():
        assert score == pytest.approx(want[cid], rel=2e-3), cid
    cut = min(got.values())  # nothing the oracle ranks clearly above the last hit is left out
    assert {c for c, s in want.items() if s > cut * (1 + 5e-3)} <= set(got)


QUERIES = [["zebra"], ["meteor"], ["quartz", "orchid"], ["basalt", "basalt"],
           ["lemon", "walrus", "zebra"], ["absent"]]


@pytest.mark.parametrize("terms", QUERIES, ids="-".join)
def test_search_equals_the_bm25_oracle(setup, terms):
    backend, data, _ = setup
    assert backend.ready()
    want = oracle(data.words, terms, backend.ranking)
    for depth in (5, 1000):
        assert_equals_oracle(backend, backend.search(terms, depth), want, depth)


def test_filters_in_the_declared_form_restrict_without_rescoring(setup):
    backend, _, store = setup
    terms = ["zebra", "orchid", "harbor"]
    everything = dict(backend.search(terms, 1000))
    for spec in ("ext:md", "path:/nowhere"):
        allowed = Allowed(store, parse_filters(spec))
        form = allowed.for_lexical(backend.filter_form)
        assert form is not None, f"{backend.name} cannot take {spec}"
        ids = set(allowed.ids().tolist())
        got = backend.search(terms, 1000, form)
        assert {c for c, _ in got} == set(everything) & ids, spec
        for cid, score in got:  # a filter adds nothing to the ranking
            assert score == pytest.approx(everything[cid], rel=1e-4)
    assert not got  # path:/nowhere


def test_reference_is_an_average_chunk_holding_each_term_once(setup):
    backend, data, _ = setup
    for terms in (["zebra"], ["meteor", "orchid"], ["amber", "amber"]):
        got = backend.reference(terms)
        if backend.ranking == "cover-density":
            assert got is not None and got > 0
        else:
            assert got == pytest.approx(reference_oracle(data.words, terms, backend.ranking),
                                        rel=1e-4)


def test_catch_up_follows_adds_and_deletes_and_check_says_when_behind(setup):
    backend, data, store = setup
    assert backend.check(store) is None
    data.write(corpus(np.random.default_rng(4), 30))
    data.delete(25)
    behind = backend.check(store)
    if backend.derived:  # a cache beside the store: stale, and says so
        assert behind is not None and not backend.ready()
    elif backend.filter_form != "expression":  # kept in the chunks' own transaction
        assert behind is None and backend.ready()
    # (a service follows the store's outbox: nothing is wrong while it holds the changes)
    assert backend.catch_up(store) in ("updated", "rebuilt", "current")
    assert backend.ready() and backend.check(store) is None
    terms = ["falcon", "meteor"]
    want = oracle(data.words, terms, backend.ranking)
    # Milvus keeps deleted rows in its BM25 statistics (measured 0.85-1.22x textbook here;
    # a compaction does not change it in Milvus Lite): the same matches, looser scores.
    assert_equals_oracle(backend, backend.search(terms, 1000), want, 1000, tolerance=0.3)
    assert backend.catch_up(store) == "current"


@pytest.mark.parametrize("term", ['"', "NEAR", "*", "'", "a'b", "(", "\\", "AND"])
def test_query_syntax_is_never_parsed(setup, term):
    backend, _, _ = setup
    backend.search([term, "zebra"], 10)  # no exception, whatever the characters
    backend.reference([term])
