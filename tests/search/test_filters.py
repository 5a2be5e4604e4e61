"""The filter syntax: parsing, clear errors, and SQL pushdown on a real index."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anyfind import Index
from anyfind.errors import QueryError
from anyfind.search.filters import KEYS, glob_to_like, parse_period, parse_query

MB = 1 << 20


def clauses(query: str) -> list[tuple]:
    return [(c.key, c.values, c.negated) for c in parse_query(query).filters.clauses]


def test_free_text_and_filters_are_split():
    p = parse_query('tax return ext:pdf,DOCX source:notes  path:"my reports/**" lang:en deadline')
    assert p.text == "tax return deadline"
    assert [(c.key, c.values, c.negated) for c in p.filters.clauses] == [
        ("ext", ("pdf", "docx"), False), ("source", ("notes",), False),
        ("path", ("my reports/**",), False), ("lang", ("en",), False)]


def test_values_are_parsed():
    assert clauses("type:IMAGE -modality:audio") == [
        ("modality", ("image",), False), ("modality", ("audio",), True)]
    assert clauses("size:>1MB size:<=512kb size:1KB..2KB") == [
        ("size", (("gt", MB, float("inf")),), False),
        ("size", (("range", 0.0, 512 * 1024),), False),
        ("size", (("range", 1024, 2048),), False)]
    jan1, jan2 = datetime(2024, 1, 1).timestamp(), datetime(2024, 1, 2).timestamp()
    assert clauses("after:2024-01-01") == [("after", ((jan1, jan2),), False)]
    assert parse_period("2024-12") == (datetime(2024, 12, 1).timestamp(),
                                       datetime(2025, 1, 1).timestamp())
    assert parse_period("2023") == (datetime(2023, 1, 1).timestamp(),
                                    datetime(2024, 1, 1).timestamp())


def test_words_that_only_look_like_filters_stay_text():
    for q in ("meet at 10:30", "see http://example.com", 'search "type:image" literally',
              "note: call back", "(ext:pdf)"):
        assert parse_query(q).text == " ".join(q.split()) and not parse_query(q).filters


@pytest.mark.parametrize("query, fragment", [
    ("cats size:1MB", "size:>N"),
    ("cats size:>lots", "not a size"),
    ("after:2024-13-01 cats", "not a valid date"),
    ("after:yesterday", "YYYY"),
    ("modality:hologram", "unknown modality 'hologram'"),
    ("ext: cats", "needs a value"),
    ('path:"unclosed cats', "unbalanced quotes"),
    ("lang:english!", "language is a code"),
    ("ext:pdf,,md", "empty value"),
])
def test_errors_point_at_the_bad_token(query, fragment):
    with pytest.raises(QueryError) as err:
        parse_query(query)
    message = str(err.value)
    assert fragment in message
    # the second and third lines show the query and a caret under the token
    _, shown, caret = message.split("\n")
    bad = next(w for w in query.split() if ":" in w)
    assert shown.strip() == query
    assert caret.index("^") - 2 == query.index(bad)


def test_glob_to_like():
    assert glob_to_like("reports/**") == "reports/%"
    assert glob_to_like("*.PDF") == "%.pdf"
    assert glob_to_like("a_b%c?") == "a\\_b\\%c_"


# -- property-based ----------------------------------------------------------------------
values = {
    "ext": st.sampled_from(["pdf", "md", "tar.gz", "c++"]),
    "modality": st.sampled_from(["text", "image", "audio"]),
    "source": st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True),
    "lang": st.sampled_from(["en", "de", "pt-BR", "zh_Hant"]),
    "size": st.sampled_from([">1MB", "<=10kb", "1..2GB", ">=0"]),
    "after": st.sampled_from(["2024", "2024-02", "1999-12-31"]),
    "path": st.sampled_from(['"my docs/**"', "*.py", "/abs/dir", "reports"]),
}
filter_tokens = st.sampled_from(sorted(values)).flatmap(
    lambda k: st.tuples(st.just(k), values[k], st.booleans()))
free_words = st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=4)


@given(filter_tokens=st.lists(filter_tokens, max_size=5), words=free_words)
def test_generated_filters_round_trip(filter_tokens, words):
    tokens = [f"{'-' if neg else ''}{k}:{v}" for k, v, neg in filter_tokens]
    parsed = parse_query(" ".join(words[:2] + tokens + words[2:]))
    assert parsed.text == " ".join(words)
    assert [(c.key, c.negated) for c in parsed.filters.clauses] == [
        (k, neg) for k, _, neg in filter_tokens]


@given(st.text(max_size=200))
def test_parser_accepts_or_explains_any_text(text):
    try:
        parsed = parse_query(text)
    except QueryError as exc:
        assert "\n" in str(exc)  # message, query and caret
        return
    assert all(c.key in KEYS for c in parsed.filters.clauses)


@given(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3), st.text(max_size=30))
def test_parser_on_known_keys_with_arbitrary_values(keys, value):
    query = " ".join(f"{k}:{value}" for k in keys)
    try:
        parse_query(query)
    except QueryError:
        pass


# -- pushdown on a real index --------------------------------------------------------------
@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Two sources of real files with known dates, sizes and languages, and records."""
    root = tmp_path_factory.mktemp("library")
    notes, work = root / "notes", root / "work"
    (notes / "reports").mkdir(parents=True)
    (work / "reports").mkdir(parents=True)
    files = {
        notes / "cats.md": "# Cats\n\nCats sleep for most of the day and hunt at dusk.",
        notes / "reports" / "cats-2023.txt": "Annual report on the cat shelter: 40 cats adopted.",
        work / "reports" / "budget.txt": "The budget report: cats are not in the budget.",
        work / "chats.html": '<html lang="de-DE"><body><p>Katzen schlafen viel. Cats sleep.'
                             "</p></body></html>",
        work / "big.txt": "cats " * 2_500,  # 12.5 KB
    }
    dates = {"cats.md": "2024-03-05", "cats-2023.txt": "2023-06-01", "budget.txt": "2024-06-30",
             "chats.html": "2024-01-01", "big.txt": "2022-01-01"}
    for path, content in files.items():
        path.write_text(content)
        ts = datetime.fromisoformat(dates[path.name] + "T12:00:00").timestamp()
        os.utime(path, (ts, ts))
    index = Index.open(root / "idx")
    index.add([notes])
    index.add([work])
    taken = datetime(2021, 7, 4, 9, 30).timestamp()
    index.add_documents("records", [{"id": "photo-1", "text": "A photo of two cats.",
                                     "meta": {"taken": taken}}])
    yield index
    index.close()


def found(index, query: str, mode: str = "hybrid") -> set[str]:
    """Everything the filters let through (the relevance floor is not what is tested)."""
    return {os.path.basename(r.path) for r in index.search(query, k=50, mode=mode,
                                                            floor=False)}


@pytest.mark.parametrize("query, expected", [
    ("cats source:notes", {"cats.md", "cats-2023.txt"}),
    ("cats source:NOTES,records", {"cats.md", "cats-2023.txt", "photo-1"}),
    ("cats -source:notes -source:records", {"budget.txt", "chats.html", "big.txt"}),
    ("cats ext:txt", {"cats-2023.txt", "budget.txt", "big.txt"}),
    ("cats ext:md,.HTML", {"cats.md", "chats.html"}),
    ('cats path:"reports/**"', {"cats-2023.txt", "budget.txt"}),
    ("cats path:reports", {"cats-2023.txt", "budget.txt"}),
    ("cats path:*/work/*.txt", {"budget.txt", "big.txt"}),
    ("cats lang:de", {"chats.html"}),
    ("cats lang:de_DE", {"chats.html"}),  # de-DE stored: '_' and '-' are one separator
    ("cats lang:de-de,fr", {"chats.html"}),
    ("cats lang:de-AT", set()),
    ("cats -lang:de", {"cats.md", "cats-2023.txt", "budget.txt", "big.txt", "photo-1"}),
    ("cats after:2024-01-01", {"cats.md", "budget.txt", "chats.html"}),
    ("cats after:2024-01-01 before:2024-06-29", {"cats.md", "chats.html"}),
    ("cats before:2024-06-30 after:2024-06-30", {"budget.txt"}),  # both ends inclusive
    ("cats date:2023", {"cats-2023.txt"}),
    ("cats date:2021-07", {"photo-1"}),  # meta.taken wins over the (missing) mtime
    ("cats size:>10KB", {"big.txt"}),
    ("cats size:>1MB", set()),
    ("cats size:<1KB -size:<=50", {"cats.md", "chats.html"}),
    ("cats modality:text media:text/plain source:work", {"budget.txt", "big.txt"}),
    ("cats modality:image", set()),
])
def test_filters_select_items(library, query, expected):
    assert found(library, query) == expected
    assert found(library, query, mode="lexical") == expected
    assert found(library, query, mode="dense") == expected


def test_filters_apply_before_top_k(tmp_path):
    """One weak match among many strong ones is still found: filters restrict FAISS and
    the lexical query before their top-k is cut, not the fused list after it."""
    with Index.open(tmp_path / "idx") as index:
        index.add_documents("strong", [(f"s{i}", "", f"Cats and kittens, note {i}: cats purr.")
                                       for i in range(120)])
        index.add_documents("weak", [("w", "", "A report on municipal parking; a cat appears.")])
        from anyfind.search.engine import Query, Searcher

        searcher = Searcher(index.opened)
        q = searcher.prepare(Query(text="cats source:weak"))
        allowed = searcher._allowed(q.filters)
        assert len(allowed.ids()) == 1
        vec = searcher._query_vectors(q)["text"]
        assert [c for c, _ in searcher.dense_signal("text", vec, 5, allowed)] == list(
            allowed.ids())
        assert [c for c, _ in index.store.lexical.search(q.terms, 5, allowed.sql)] == list(
            allowed.ids())
        for mode in ("hybrid", "dense", "lexical"):  # a weak match: under the floor in dense
            (hit,) = index.search("cats source:weak", k=5, mode=mode, floor=False)
            assert hit.path == "weak/w"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(filter_tokens, min_size=1, max_size=4))
def test_any_filter_combination_runs_as_sql(library, filter_tokens):
    query = "cats " + " ".join(f"{'-' if n else ''}{k}:{v}" for k, v, n in filter_tokens)
    start = time.perf_counter()
    library.search(query, k=5, mode="lexical")
    assert time.perf_counter() - start < 5


def test_many_alternatives_are_one_clear_error_and_a_hundred_still_run(library):
    """999 extensions in one filter made SQLite fail ("Expression tree is too large") with
    the whole statement printed: now a one-line QueryError that shows a window of the
    query; 100 alternatives (the most one filter takes) run as SQL."""
    from anyfind.errors import QueryError

    many = ",".join(f"x{i}" for i in range(999))
    with pytest.raises(QueryError) as err:
        library.search("cats", filters=f"ext:{many}", k=5)  # as --filter or the API's
    message = str(err.value)
    assert "at most 100 alternatives" in message and len(message) < 600
    spread = " ".join(f"ext:y{i},z{i}" for i in range(200))  # 400 values over 200 filters
    with pytest.raises(QueryError, match="too many filter values"):
        library.search("cats", filters=spread, k=5)
    hundred = ",".join(["txt"] + [f"q{i}" for i in range(99)])
    assert found(library, f"cats ext:{hundred}") == {"cats-2023.txt", "budget.txt", "big.txt"}
