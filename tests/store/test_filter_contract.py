"""The filter contract: one meaning on every backend. Generated filters (hypothesis) over
files whose names hold what differed between backends (non-ASCII capitals, the Kelvin
sign, a dotted I, an extension and a source name longer than a Milvus field, `path:/`)
select the same items from SQLite, PostgreSQL and inside Milvus (Lite), and exactly the
items a plain-Python oracle of the documented meaning selects."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from postgres_fixtures import postgres_server  # noqa: F401 (a fixture, by name)

from anyfind import Index
from anyfind.search.allowed import Allowed
from anyfind.search.filter_milvus import expression
from anyfind.search.filters import parse_filters

pytest.importorskip("pymilvus")

LONG_EXT = "e" * 100  # past the Milvus ext field (64)
# Folder names past a source name's 200 characters (it keeps 180), and past the Milvus
# source field's 200 bytes in 137 characters.
LONG_SOURCE = "Quellen" + "s" * 223
WIDE_SOURCE = "Quellen" + "ß" * 110 + "s" * 20
FILES = {
    "Ärchiv": ["Ärger.TXT", "ÉTÉ.md", "İstanbul notes.md", "Straße.md", "ΣΟΦΙΑ.md",
               "unit.\u212a", f"long.{LONG_EXT}", "Sub Dir/ÖL.txt", "plain.txt"],
    "notes": ["kelvin.k", "été.md", "istanbul.md", "ärger.txt", "README.MD", "a_b%c.txt"],
    LONG_SOURCE: ["only.txt"],
    WIDE_SOURCE: ["wide.txt"],
}
PARTS = sorted({p for names in FILES.values() for name in names
                for p in re.split(r"[/. ]", name) if p} | set(FILES) | {
    "txt", "md", "k", "\u212a", "ärger", "ÄRGER", "été", "ÉTÉ", "istanbul", "İSTANBUL",
    "i̇stanbul", "strasse", "σοφια", "text/plain", "text/*", "text/markdown", LONG_EXT[:70],
    "ex", "e" * 64, "en", "de", "en-us", "x" * 43})


@pytest.fixture(scope="module")
def backends(tmp_path_factory, postgres_server):  # noqa: F811 (a fixture)
    """The same files indexed three ways: SQLite + FAISS, SQLite + Milvus Lite, and
    PostgreSQL + FAISS. Item ids differ; paths do not."""
    psycopg, sock = postgres_server
    root = tmp_path_factory.mktemp("contract")
    for source, names in FILES.items():
        for name in names:
            path = root / source / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"Notes kept in {name}: harbour charts and a compass.\n")
    db = f"c{time.time_ns()}"
    with psycopg.connect(host=str(sock), user="anyfind", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    settings_of = {
        "sqlite": {},
        "milvus": {"vector_store": f"milvus-lite://{root / 'lite.db'}"},
        "postgresql": {"store_url": f"postgresql+psycopg://anyfind@/{db}?host={sock}"},
    }
    opened = {}
    for name, extra in settings_of.items():
        idx = Index.open(root / f"idx-{name}", tagger=False, transcriber=None, **extra)
        idx.add([root / source for source in FILES])
        opened[name] = idx
    yield root, opened
    for idx in opened.values():
        idx.close()


def _items(idx: Index) -> list[dict]:
    from sqlalchemy import select

    from anyfind.store.schema import Item, Source

    with idx.store.engine.connect() as conn:
        rows = conn.execute(select(Item.id, Item.path, Item.media_type, Item.meta,
                                   Source.name).join(Source, Source.id == Item.source_id))
        return [{"id": r[0], "path": r[1], "media": r[2] or "", "source": r[4],
                 "lang": (r[3] or {}).get("language") if isinstance(r[3], dict) else None}
                for r in rows]


def _glob(pattern: str, value: str) -> bool:
    """The documented glob: `*` any characters ('/' too), `?` one, the rest literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                    for c in pattern.lower())
    return re.fullmatch(regex, value.lower(), re.S) is not None


def _holds(key: str, value, item: dict) -> bool:
    path = item["path"].lower()
    if key == "ext":
        return path.endswith("." + value.lower())
    if key == "source":
        return _glob(value, item["source"])
    if key == "media":
        return bool(item["media"]) and _glob(value, item["media"])
    if key == "lang":
        lang = (item["lang"] or "").lower().replace("_", "-")
        v = value.lower().replace("_", "-")
        return bool(item["lang"]) and (lang == v or lang.startswith(v + "-"))
    if key == "path":
        pattern = value.rstrip("/") or "/"
        forms = [pattern] if any(c in pattern for c in "*?") else \
            [pattern, pattern.rstrip("/") + "/*"]
        if not pattern.startswith("/"):
            forms += ["*/" + f for f in forms]
        return any(_glob(f, path) for f in forms)
    raise AssertionError(key)


def oracle(filters, items: list[dict]) -> set[str]:
    chosen = set()
    for item in items:
        by_key: dict[tuple[str, bool], list[bool]] = {}
        for c in filters.clauses:
            by_key.setdefault((c.key, c.negated), []).append(_holds(c.key, c.values[0], item))
        if all((not any(v)) if negated else any(v) for (_, negated), v in by_key.items()):
            chosen.add(item["path"])
    return chosen


def _quoted(value: str) -> str:
    return value if re.fullmatch(r"[^\s\"\\]+", value) else \
        '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _case(value: str, how: int) -> str:
    return [value, value.upper(), value.lower(), value.title(), value.swapcase()][how]


VALUE = st.builds(_case, st.sampled_from(PARTS), st.integers(0, 4)) | st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
    max_size=8)
CLAUSE = st.tuples(st.booleans(), st.sampled_from(["ext", "source", "path", "media", "lang"]),
                   VALUE, st.sampled_from(["", "*", "/", "?"]))


def _filter_text(negated: bool, key: str, value: str, tail: str, root: Path) -> str | None:
    if key == "path" and value.startswith(("Ä", "n", "Q", "/")):
        value = f"{root}/{value}"  # an absolute folder of the corpus, or `path:/`
    if key in ("ext", "lang") and tail:
        return None  # no wildcards there
    return f"{'-' if negated else ''}{key}:{_quoted(value + tail)}"


@settings(max_examples=120, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(clauses=st.lists(CLAUSE, min_size=1, max_size=3))
def test_every_backend_selects_what_the_filter_means(backends, clauses):
    root, opened = backends
    texts = [t for t in (_filter_text(*c, root) for c in clauses) if t]
    if not texts:
        return
    try:
        filters = parse_filters(" ".join(texts))
    except Exception:  # noqa: BLE001 (a value the parser refuses is its own test's matter)
        return
    if not filters.clauses:
        return
    want = None
    for name, idx in opened.items():
        items = _items(idx)
        got = _selected_paths(idx, filters, {i["id"]: i["path"] for i in items})
        expected = oracle(filters, items)
        assert got == expected, (name, texts, sorted(got ^ expected))
        want = expected if want is None else want
        assert expected == want, (name, texts)
        if name == "milvus":
            expr = expression(filters.clauses)
            if expr is not None:  # inside Milvus, the same chunks
                vs = idx.opened.vectors("text")
                rows = vs.client.query(vs.collection, filter=expr, output_fields=["id"],
                                       consistency_level="Strong")
                in_milvus = {int(r["id"]) for r in rows}
                allowed = set(Allowed(idx.store, filters).ids().tolist())
                with_vectors = set(idx.store.vector_ids("text").tolist())
                assert in_milvus == allowed & with_vectors, (texts, expr)


def _selected_paths(idx, filters, by_id) -> set[str]:
    from sqlalchemy import select

    from anyfind.store.schema import Chunk

    ids = Allowed(idx.store, filters).ids().tolist()
    if not ids:
        return set()
    with idx.store.engine.connect() as conn:
        items = {r[0] for r in conn.execute(select(Chunk.item_id).where(Chunk.id.in_(ids)))}
    return {by_id[i] for i in items if i in by_id}


def test_path_root_selects_every_item_everywhere(backends):
    """`path:/` is every absolute path: Milvus said every item, SQLite none."""
    _, opened = backends
    for idx in opened.values():
        filters = parse_filters("path:/")
        every = {i["path"] for i in _items(idx)}
        assert _selected_paths(idx, filters, {i["id"]: i["path"] for i in _items(idx)}) == every


def test_non_ascii_capitals_fold_alike(backends):
    root, opened = backends
    for name, idx in opened.items():
        by_id = {i["id"]: i["path"] for i in _items(idx)}
        for query, expected in ((f"path:{root}/Ärchiv/ärger*", {"Ärger.TXT"}),
                                ("ext:\u212a", {"unit.\u212a", "kelvin.k"}),
                                (f"source:ärchiv path:{root}/Ärchiv/été*", {"ÉTÉ.md"})):
            got = {Path(p).name for p in _selected_paths(idx, parse_filters(query), by_id)}
            assert got == expected, (name, query, got)
