"""The tantivy lexical cache beside a SQLite store: caught up by every write, used only
while current (FTS5 answers otherwise, and always with filters), rebuilt when damaged or
when a crash left it out of step with what it says it holds."""

from __future__ import annotations

import os
import shutil

import pytest

from anyfind import Index
from anyfind.search.terms import query_terms
from anyfind.store.lexical_cache import ENV, LexicalCache

# Words the two analysers stem alike (Porter and Porter2 differ on a few suffixes).
QUERIES = ["tomatoes sunlight", "moon tides", "semiconductor chips", "espresso pressure",
           "fibonacci numbers", "paid holiday", "revenue quarter", "water leaves blight"]


def paths(index: Index, hits) -> set[str]:
    rows = index.reader.chunk_rows([cid for cid, _ in hits])
    return {os.path.basename(r["path"]) for r in rows.values()}


def both(index: Index, words: str) -> tuple[set[str], set[str]]:
    """(what the cache finds, what FTS5 finds): every matching chunk, depth 100."""
    terms = query_terms(words)
    assert index.lexical.backend() == "tantivy"
    return (paths(index, index.lexical.search(terms, 100)),
            paths(index, index.reader.lexical.search(terms, 100)))


def assert_cache_matches_store(index: Index) -> None:
    lex = index.lexical
    assert lex.backend() == "tantivy"
    cache = lex.answering().cache
    state = cache.state()
    assert state["stamp"] == list(index.reader.chunk_stamp())
    cache._open()[0].reload()
    assert cache._open()[0].searcher().num_docs == index.reader.chunk_stamp()[1]
    for words in QUERIES:
        found, fts = both(index, words)
        assert found == fts, words


def test_cache_follows_every_sync(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
        assert (tmp_path / "idx" / "lexical" / "state.json").is_file()
        assert_cache_matches_store(index)
        assert both(index, "semiconductor chips")[0] == {"report.pdf"}
        assert both(index, "tomato")[0] == {"tomatoes.md"}  # stemmed: tomatoes

        (corpus / "astro" / "moon.txt").write_text("Titan has a thick orange atmosphere.")
        index.add([corpus])
        assert both(index, "tidally locked")[0] == set()
        assert both(index, "titan atmosphere")[0] == {"moon.txt"}

        (corpus / "code" / "fib.py").unlink()
        shutil.move(corpus / "garden" / "tomatoes.md", corpus / "garden" / "tomato-care.md")
        shutil.copy(corpus / "office" / "report.pdf", corpus / "report-copy.pdf")
        index.add([corpus])
        assert both(index, "fibonacci")[0] == set()
        assert both(index, "tomato")[0] == {"tomato-care.md"}
        assert both(index, "semiconductor")[0] == {"report.pdf", "report-copy.pdf"}

        index.remove([corpus / "office"])
        assert both(index, "semiconductor")[0] == {"report-copy.pdf"}
        assert_cache_matches_store(index)

    # A fresh process (here: a fresh Index) searches the cache with no writing at all.
    with Index.open(tmp_path / "idx") as index:
        assert index.lexical.backend() == "tantivy"
        hits = index.search("semiconductor shortage", mode="lexical", k=3)
        assert [os.path.basename(r.path) for r in hits] == ["report-copy.pdf"]


def test_a_stale_cache_is_not_used(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
        (item,) = index.store.item_ids_by_path([str(corpus / "garden" / "tomatoes.md")])
        index.store.delete_items([item])  # the store moves on, the cache does not (yet)
        assert index.lexical.backend() == "fts5"
        assert index.search("tomatoes", mode="lexical") == []
        # A delete rebuilds the cache: tantivy would keep the deleted chunk's statistics.
        assert index.opened.refresh_lexical() == "rebuilt"
        assert index.lexical.backend() == "tantivy"
        assert index.search("tomatoes", mode="lexical") == []
        assert_cache_matches_store(index)


def test_repeated_terms_weigh_once_per_repetition(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
        (once,) = index.lexical.search(["blight"], 10)
        (twice,) = index.lexical.search(["blight", "blight"], 10)
        assert once[0] == twice[0]
        assert twice[1] == pytest.approx(2 * once[1], rel=1e-5)


def test_filters_restrict_the_cache_to_the_allowed_chunks(tmp_path, corpus, monkeypatch):
    from anyfind.search.allowed import Allowed
    from anyfind.search.filters import parse_filters

    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
        names = {os.path.basename(r.path)
                 for r in index.search("semiconductor holiday tomatoes ext:pdf", mode="lexical")}
        assert names == {"report.pdf"}
        terms = query_terms("semiconductor holiday tomatoes moon espresso revenue")
        everything = dict(index.lexical.search(terms, 100))
        for spec in ("ext:pdf", "ext:md,txt", "path:/nowhere"):
            allowed = Allowed(index.store, parse_filters(spec))
            ids = allowed.ids()
            assert index.lexical.backend() == "tantivy"
            cached = index.lexical.search(terms, 100, allowed)
            fts = index.store.lexical.search(terms, 100, allowed.sql)
            assert {c for c, _ in cached} == {c for c, _ in fts}, spec
            assert {c for c, _ in cached} == set(everything) & set(ids.tolist()), spec
            for cid, score in cached:  # the filter adds nothing to BM25
                assert score == pytest.approx(everything[cid], rel=1e-6)
        assert {c for c, _ in cached} == set()  # path:/nowhere


def test_the_fts5_switch_uses_the_store(tmp_path, corpus, monkeypatch):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
    monkeypatch.setenv(ENV, "fts5")
    with Index.open(tmp_path / "idx") as index:
        assert [b.name for b in index.lexical.chain] == ["fts5"]
        assert index.lexical.backend() == "fts5"
        assert [os.path.basename(r.path) for r in index.search("blight", mode="lexical")] == [
            "tomatoes.md"]


@pytest.mark.parametrize("damage", ["no-cache", "garbage-meta", "no-ids", "bad-state",
                                    "no-segments"])
def test_a_damaged_cache_is_rebuilt(tmp_path, corpus, damage):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
    lexical = tmp_path / "idx" / "lexical"
    if damage == "no-cache":
        shutil.rmtree(lexical)
    elif damage == "garbage-meta":
        (lexical / "meta.json").write_text("{not json")
        (lexical / "state.json").write_text('{"format": 1, "stamp": [0, 0]}')
    elif damage == "no-ids":
        (lexical / "ids.npy").unlink()
        (lexical / "state.json").write_text('{"format": 1, "stamp": [0, 0]}')
    elif damage == "bad-state":
        (lexical / "state.json").write_bytes(b"\x00\xff")
    else:  # the state still matches the store: only tantivy's files are gone
        for f in lexical.iterdir():
            if f.name not in ("state.json", "ids.npy"):
                f.unlink()
    with Index.open(tmp_path / "idx") as index:
        assert index.lexical.backend() == "fts5"  # FTS5 answers meanwhile, correctly
        assert "lexical-cache" in index.check().codes()
        assert [os.path.basename(r.path) for r in index.search("blight", mode="lexical")] == [
            "tomatoes.md"]
        assert index.opened.refresh_lexical() == "rebuilt"
        assert_cache_matches_store(index)


def test_a_crash_between_the_two_commits_is_repaired(tmp_path, corpus):
    """tantivy committed, our state did not: the next catch-up must neither duplicate the
    chunks it re-adds nor keep ones the store deleted since."""
    root = tmp_path / "idx"
    with Index.open(root) as index:
        index.add([corpus])
        old = {n: (root / "lexical" / n).read_bytes() for n in ("state.json", "ids.npy")}
        (corpus / "notes.txt").write_text("Lighthouses warn ships with fog horns.")
        index.add([corpus])
        for name, data in old.items():  # as if killed right after tantivy's commit
            (root / "lexical" / name).write_bytes(data)
        cache = LexicalCache(root)
        assert cache.catch_up(index.reader) == "updated"  # re-adds notes.txt: once
        assert_cache_matches_store(index)
        assert both(index, "lighthouses")[0] == {"notes.txt"}

        old = {n: (root / "lexical" / n).read_bytes() for n in ("state.json", "ids.npy")}
        (corpus / "more.txt").write_text("Harbour pilots guide ships past the lighthouses.")
        index.add([corpus])
        for name, data in old.items():
            (root / "lexical" / name).write_bytes(data)
        (item,) = index.store.item_ids_by_path([str(corpus / "more.txt")])
        index.store.delete_items([item])  # gone from the store, still in tantivy
        assert cache.catch_up(index.reader) == "rebuilt"
        assert_cache_matches_store(index)
        assert both(index, "lighthouses")[0] == {"notes.txt"}


def test_check_reports_a_stale_cache_and_repair_brings_it_up_to_date(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])
        assert "lexical-cache" not in index.check().codes()
        (item,) = index.store.item_ids_by_path([str(corpus / "astro" / "moon.txt")])
        index.store.delete_items([item])
        report = index.check()
        assert "lexical-cache" in report.codes() and report.ok  # a warning, not an error
        assert index.status()["lexical"].startswith("FTS5 (the tantivy cache is stale")
        index.check(repair=True)
        assert "lexical-cache" not in index.check().codes()
        assert index.status()["lexical"].startswith("tantivy (current")
        assert_cache_matches_store(index)


def test_highlights_cover_what_the_cache_matched(tmp_path):
    """Porter stems "dying" to "dy", Porter2 (the cache's analyser) to "die": a lexical hit
    for "die" found through the cache must show the word it matched."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "star.txt").write_text("The dying star sheds its outer layers into space.")
    with Index.open(tmp_path / "idx") as index:
        index.add([docs])
        assert index.store.lexical.search(["die"], 10) == []  # FTS5: no match
        (hit,) = index.search("die", mode="lexical")
        assert [hit.text[a:b] for a, b in hit.highlights] == ["dying"]
        (hit,) = index.search("stars dying", mode="lexical")
        assert [hit.text[a:b] for a, b in hit.highlights] == ["dying", "star"]
