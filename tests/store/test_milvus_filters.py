"""Filters as Milvus boolean expressions (search/filter_milvus.py) over the item fields a
collection keeps (store/filter_fields.py): for every filter form, the chunks the
expression selects inside Milvus are exactly the chunks the SQL selects in the metadata
store, on real indexed files; a filtered dense search reads no allowed-id list; a moved
or touched file's fields follow it."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import datetime

import numpy as np
import pytest

from anyfind import Index
from anyfind.search.allowed import Allowed
from anyfind.search.filter_milvus import expression
from anyfind.search.filters import parse_filters

pytest.importorskip("pymilvus")

EXPRESSIBLE = [
    "ext:md", "ext:pdf,docx", "-ext:md", "ext:MD ext:txt", "type:text", "-type:text",
    "media:text/*", "media:application/pdf", "-media:text/*", "media:*", "source:corpus",
    "source:cor*", "-source:corpus", "source:my_notes", "path:{root}/astro", "-path:{root}/astro",
    "path:{root}/astro/", "size:>1KB", "size:<=300", "size:100..5000", "size:>=1.5KB",
    "after:2021-01-01", "before:2021-01-01", "date:2020-06", "-date:2020-06", "after:2020",
    "ext:md size:>10 -path:{root}/garden", "type:text,image ext:txt,md,py",
    "size:>" + "9" * 400, "size:<=99999999999GB", "-size:>=" + "9" * 30,  # past an int64
]
FALLBACK = ["path:astro/**", "path:*.py", "ext:tar.gz", 'source:"a\\"b"', "media:*/pdf",
            "source:a\U0010FFFF*"]


@pytest.fixture(params=["lite", "server"])
def indexed(request, tmp_path, corpus):
    """The test corpus plus files of known sizes and dates, in two sources, on Milvus."""
    if request.param == "lite":
        uri = f"milvus-lite://{tmp_path / 'vectors.db'}"
    else:
        uri = f"{request.getfixturevalue('milvus_server')}&prefix=f{uuid.uuid4().hex[:12]}_"
    for i, year in enumerate((2019, 2020, 2021, 2022)):
        f = corpus / "dated" / f"report_{i}.txt"
        f.parent.mkdir(exist_ok=True)
        f.write_text(f"Quarterly report {i} on harbour traffic. " * (4 + 40 * i))
        stamp = datetime(year, 6, 15, 12).timestamp()
        os.utime(f, (stamp, stamp))
    other = tmp_path / "my_notes"
    other.mkdir()
    (other / "todo.md").write_text("Buy harbour charts and a compass.")
    idx = Index.open(tmp_path / "idx", tagger=False, transcriber=None, vector_store=uri)
    idx.add([corpus])
    idx.add([other])
    assert {s["name"] for s in idx.sources()} == {"corpus", "my_notes"}
    yield idx, corpus
    idx.close()


def milvus_ids(vs, expr: str) -> set[int]:
    rows = vs.client.query(vs.collection, filter=expr, output_fields=["id"],
                           consistency_level="Strong")
    return {int(r["id"]) for r in rows}


def test_each_expression_selects_what_the_sql_selects(indexed):
    idx, root = indexed
    vs = idx.opened.vectors("text")
    assert vs.filter_fields
    with_vectors = set(idx.store.vector_ids("text").tolist())
    sizes = set()
    for form in EXPRESSIBLE:
        filters = parse_filters(form.format(root=root))
        expr = expression(filters.clauses)
        assert expr is not None, form
        want = set(Allowed(idx.store, filters).ids().tolist()) & with_vectors
        assert milvus_ids(vs, expr) == want, (form, expr)
        sizes.add(len(want))
    assert len(sizes) > 8  # the filters select many different sets, none trivially
    for form in FALLBACK:
        assert expression(parse_filters(form).clauses) is None, form


def test_a_filtered_dense_search_reads_no_id_list_and_fields_follow_moves(indexed, monkeypatch):
    idx, root = indexed
    query = "harbour traffic report"
    filtered = f"path:{root}/dated size:>1KB"
    want = [r.path for r in idx.search(query, k=10, mode="dense", filters=filtered)]
    assert want and all(os.path.getsize(p) > 1024 and "/dated/" in p for p in want)

    def no_ids(self):
        raise AssertionError("an allowed-id list was read")

    with monkeypatch.context() as m:
        m.setattr(Allowed, "ids", no_ids)
        got = [r.path for r in idx.search(query, k=10, mode="dense", filters=filtered)]
    assert got == want
    # The same search answered by allowed ids (no expression) ranks the same.
    with monkeypatch.context() as m:
        m.setattr(Allowed, "expression", lambda self: None)
        assert [r.path for r in idx.search(query, k=10, mode="dense", filters=filtered)] == want
    # A move: the chunks' path fields follow (the outbox rewrites their rows).
    (root / "archive").mkdir()
    shutil.move(root / "dated" / "report_3.txt", root / "archive" / "report_3.txt")
    stamp = time.time() - 10
    os.utime(root / "dated" / "report_0.txt", (stamp, stamp))  # a touch: a new date
    report = idx.sync()
    assert report.renamed == 1 and report.added == 0
    with monkeypatch.context() as m:
        m.setattr(Allowed, "ids", no_ids)
        moved = idx.search(query, k=10, mode="dense", filters=f"path:{root}/archive")
        year = datetime.now().year
        touched = idx.search(query, k=10, mode="dense", filters=f"path:{root}/dated after:{year}")
    assert [r.path for r in moved] == [str(root / "archive" / "report_3.txt")]
    assert [r.path for r in touched] == [str(root / "dated" / "report_0.txt")]
    vs = idx.opened.vectors("text")
    assert np.array_equal(np.sort(vs.ids()), np.sort(idx.store.vector_ids("text")))
