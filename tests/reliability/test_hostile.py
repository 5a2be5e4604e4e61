"""The engine attacked as a hostile user would (issue: hardening). Each class of attack
has a real input made here, and a variant of it: the run goes on, the good files beside
the bad ones are indexed, and every failure is one clear sentence.

Indexing: zip-based bombs of every kind the extractors open (PPTX, EPUB, a member-count
bomb), tag-dense HTML in bounded memory, a CSV with a 225 KB field, an index kept inside
the folder it indexes (its secrets stay out), symlinks out of the source, a FIFO swapped
in after the scan, a read that never returns. Queries: huge k / offset / ids, bytes that
are not UTF-8, query images from misbehaving servers, bombs and FIFOs as query images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from badinputs import GOOD, GOOD_QUERIES, png_bomb
from click.testing import CliRunner
from hostile import (
    closed_port,
    elapsed,
    epub_bomb,
    http_server,
    make_epub,
    pptx_bomb,
    run_dense_docx,
    spread_bomb,
    tag_dense_epub,
    tag_dense_html,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anyfind import Index
from anyfind.cli import cli
from anyfind.connectors.filesystem import FilesystemConnector
from anyfind.errors import IndexLocked, QueryError
from anyfind.fetch import fetch_url
from anyfind.fsutil import INDEX_MARKER

PASSWORD = "hunter2-correct-horse-battery"
OUTSIDE_SECRET = "The vault combination is seven seven three one."


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    root = base / "corpus"
    for rel, text in GOOD.items():
        _write(root / rel, text)
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Lighthouse maintenance schedule"
    (root / "office").mkdir()
    deck.save(str(root / "office" / "plan.pptx"))
    make_epub(root / "office" / "keeper.epub", ["The keeper trims the lamp wick at dusk."])
    (root / "bombs").mkdir()
    pptx_bomb(root / "bombs" / "deck.pptx")
    epub_bomb(root / "bombs" / "book.epub")
    spread_bomb(root / "bombs" / "spread.pptx")
    _write(root / "markup" / "dense.html", tag_dense_html(1))
    _write(root / "markup" / "dense-b.html", tag_dense_html(1, "b"))
    field = "Lamp log. " + " " * 225_000 + "The lamp was lit at dusk."
    _write(root / "tables" / "long.csv", f'day,notes\nmonday,"{field}"\n')
    outside = _write(base / "outside" / "secret.md", OUTSIDE_SECRET)
    (root / "links").mkdir()
    os.symlink(outside, root / "links" / "escape.md")
    _write(root / "shelf" / "ferry.md", "# Ferry\n\nThe night ferry leaves the pier at ten.")
    os.symlink(root / "shelf" / "ferry.md", root / "links" / "ferry-link.md")
    # A folder that looks like an index made before indexes carried a marker.
    _write(root / "old-index" / "config.json", json.dumps({"spaces": {}, "schema_version": 3}))
    _write(root / "old-index" / "secrets.json", json.dumps({"db": {"password": PASSWORD}}))
    # The index itself lives inside the folder it indexes, and holds a literal password.
    index_dir = root / "notes-index"
    with Index.open(index_dir, tagger=False, transcriber=None) as idx:
        idx.add_source("crm", f"postgresql://app:{PASSWORD}@db.example/crm", kind="sql",
                       query="select id, body from notes")
        report = idx.add([root])
    return {"root": root, "index": index_dir, "report": report, "base": base}


def _items(index: Path) -> dict[str, dict]:
    with Index.open(index, create=False) as idx:
        return {row["path"]: row for row in _all_items(idx)}


def _all_items(idx) -> list[dict]:
    out = []
    for source in idx.sources():
        if source["id"] is not None:
            out += [idx.item(row.id) for row in idx.store.items_of_source(source["id"]).values()]
    return out


def _error_of(items: dict, rel: str, root: Path) -> tuple[str, str]:
    row = items[str(root / rel)]
    return row["status"], row["error"] or ""


# -- indexing ---------------------------------------------------------------------------------
def test_good_files_beside_the_bombs_are_indexed(run):
    items = _items(run["index"])
    root = run["root"]
    for rel in [*GOOD, "office/plan.pptx", "office/keeper.epub", "markup/dense.html",
                "markup/dense-b.html", "tables/long.csv", "links/ferry-link.md"]:
        assert _error_of(items, rel, root)[0] == "ok", rel
    with Index.open(run["index"], create=False) as idx:
        for rel, query in GOOD_QUERIES.items():
            assert idx.search(query, k=1)[0].path == str(root / rel)
        assert idx.search("lighthouse maintenance", k=1)[0].path.endswith("plan.pptx")
        assert idx.search("keeper trims the lamp wick", k=1)[0].path.endswith("keeper.epub")
        assert idx.search("lamp lit at dusk", mode="lexical", k=3)[0].path.endswith(
            ("long.csv", "keeper.epub"))


@pytest.mark.parametrize(("rel", "says"), [
    ("bombs/deck.pptx", "zip bomb"), ("bombs/book.epub", "zip bomb"),
    ("bombs/spread.pptx", "members")])
def test_zip_bombs_of_every_kind_are_refused(run, rel, says):
    status, error = _error_of(_items(run["index"]), rel, run["root"])
    assert status == "error" and says in error, error


def test_a_long_csv_field_is_indexed(run):
    with Index.open(run["index"], create=False) as idx:
        hit = idx.search("lamp was lit at dusk", mode="lexical", chunks=True, k=10)
    assert any(h.path.endswith("long.csv") and "lit at dusk" in h.text for h in hit)


def test_a_csv_field_of_225_kb_of_words_is_extracted_whole():
    from anyfind.connectors.base import Blob
    from anyfind.extract import extract

    field = " ".join(f"word{i % 977}" for i in range(30_000))  # ~225 KB
    text = extract(Blob.from_bytes(f'id,notes\n1,"{field}"\n2,short\n'.encode(),
                                   path="t.csv")).text
    assert field in text and "short" in text


def test_an_index_inside_its_folder_never_indexes_itself(run):
    items = _items(run["index"])
    inside = [p for p in items if "notes-index" in p or "old-index" in p]
    assert inside == []
    with Index.open(run["index"], create=False) as idx:
        for mode in ("lexical", "hybrid"):
            hits = idx.search(PASSWORD, mode=mode, k=50, chunks=True)
            assert not any(PASSWORD in (h.text or "") for h in hits)
        text = "\n".join(c["text"] or "" for row in _all_items(idx) for c in row["chunks"])
    assert PASSWORD not in text
    assert (run["index"] / INDEX_MARKER).is_file()
    # The database holds no copy of the password either (raw bytes of every file).
    for path in run["index"].rglob("*"):
        if path.is_file() and path.name != "secrets.json":
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_source_inside_an_index_is_refused(run, tmp_path):
    with Index.open(tmp_path / "other", tagger=False, transcriber=None) as idx:
        report = idx.add([run["index"] / "vectors"])
    assert report.added == 0
    assert any("inside the anyfind index" in e["error"] for e in report.errors)


def test_a_symlink_out_of_the_source_is_not_followed(run):
    items = _items(run["index"])
    assert str(run["root"] / "links" / "escape.md") not in items
    errors = {e["path"]: e["error"] for e in run["report"].errors}
    assert "follow_symlinks" in errors[str(run["root"] / "links" / "escape.md")]
    with Index.open(run["index"], create=False) as idx:
        assert not any("vault" in (h.text or "") for h in idx.search("vault combination"))


def test_follow_symlinks_opts_in(run, tmp_path):
    connector = FilesystemConnector(str(run["root"] / "links"), follow_symlinks=True)
    names = {Path(r.path).name for r in connector.scan()}
    assert names == {"escape.md", "ferry-link.md"}
    ref = next(r for r in FilesystemConnector(str(run["root"] / "links"),
                                              follow_symlinks=True).scan()
               if r.path.endswith("escape.md"))
    assert connector.open(ref).read() == OUTSIDE_SECRET.encode()


def test_tag_dense_html_is_extracted_in_bounded_memory(tmp_path):
    """10 MB of tags (took 1.8 GB with a BeautifulSoup tree): peak RSS grows < 300 MB."""
    for tag in ("i", "div"):
        page = _write(tmp_path / f"{tag}.html", tag_dense_html(10, tag))
        code = (
            "import resource, sys; from anyfind.connectors.base import Blob\n"
            "from anyfind.extract import extract\n"
            "from pathlib import Path\n"
            "data = Path(sys.argv[1]).read_bytes(); extract(Blob.from_bytes(b'<p>x</p>', "
            "path='w.html'))\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "text = extract(Blob.from_bytes(data, path='x.html')).text\n"
            "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print((after - before) // 1024, len(text))\n")
        out = subprocess.run([sys.executable, "-c", code, str(page)], capture_output=True,
                             text=True, timeout=300, check=True)
        grown_mb, chars = map(int, out.stdout.split())
        assert chars > 2_000_000  # the text is all there ("x x x ...")
        assert grown_mb < 300, (tag, grown_mb)


_GROWTH = (
    "import resource, sys; from anyfind.connectors.base import Blob\n"
    "from anyfind.extract import extract\n"
    "from pathlib import Path\n"
    "extract(Blob.from_bytes(b'<p>x</p>', path='w.html'))\n"
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "text = extract(Blob.from_bytes(Path(sys.argv[1]).read_bytes(), path=sys.argv[1])).text\n"
    "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print((after - before) // 1024, len(text))\n")


@pytest.mark.parametrize("make,megabytes,cap_mb", [
    (tag_dense_epub, 24, 250),  # was ~1 GB (ebooklib's get_content built a tree)
    (run_dense_docx, 16, 100),  # was ~340 MB (python-docx's tree of document.xml)
])
def test_markup_dense_documents_are_read_in_memory_bound_by_their_text(
        tmp_path, make, megabytes, cap_mb):
    """A zip-based document under the zip guard's ratio whose markup is the bomb (a
    chapter or a paragraph of one-letter elements): memory follows the text it yields."""
    path = make(tmp_path / f"dense.{make.__name__.split('_')[-1]}", megabytes)
    assert path.stat().st_size < 200_000  # a small file
    out = subprocess.run([sys.executable, "-c", _GROWTH, str(path)], capture_output=True,
                         text=True, timeout=300, check=True)
    grown_mb, chars = map(int, out.stdout.split())
    assert chars > megabytes * (1 << 20) // 25  # the text is all there ("xxxx...")
    assert grown_mb < cap_mb, (path.name, grown_mb)


def test_a_fifo_swapped_in_after_the_scan_is_an_error_not_a_hang(tmp_path):
    from anyfind.indexer.pipeline import Pipeline

    folder = tmp_path / "docs"
    _write(folder / "keep.md", "# Kettles\n\nDescale the kettle with vinegar once a month.")
    _write(folder / "swapped.md", "# Soon a pipe")

    class Swapping(FilesystemConnector):
        """A folder in which a file becomes a FIFO between the scan and the reads."""

        def scan(self):
            refs = list(super().scan())
            (folder / "swapped.md").unlink()
            os.mkfifo(folder / "swapped.md")
            yield from refs

    with Index.open(tmp_path / "idx", tagger=False, transcriber=None) as idx:
        source = idx.store.ensure_source("docs", "filesystem", str(folder), {})
        seconds, report = elapsed(
            lambda: Pipeline(idx.opened, progress=False).sync(source, Swapping(str(folder))))
        assert not isinstance(report, Exception), report
        assert seconds < 60
        assert report.added == 1 and report.failed == 1
        assert "not a regular file" in report.errors[0]["error"]
        assert idx.search("descale kettle", k=1)[0].path.endswith("keep.md")


def test_a_read_that_never_returns_misses_its_deadline(tmp_path):
    from anyfind.indexer.deadline import DeadlineExceeded, map_with_deadlines

    fifo = tmp_path / "hung"
    os.mkfifo(fifo)  # a blocking open of a FIFO with no writer never returns
    try:
        seconds, results = elapsed(lambda: map_with_deadlines(
            lambda p: open(p, "rb").read() if p == fifo else p.name, [fifo, tmp_path], 2,
            lambda _: 0.5))
        assert isinstance(results[0], DeadlineExceeded) and results[1] == tmp_path.name
        assert seconds < 10
    finally:  # release the reader left behind
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)


# -- queries: bounds, bytes ------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "says"), [
    ({"k": 10**9}, "k must be between"), ({"k": 99999999999999999999}, "k must be between"),
    ({"k": -1}, "k must be between"), ({"offset": 10**12}, "offset must be between"),
    ({"offset": -5}, "offset must be between"), ({"k": 2.5}, "whole number"),
    ({"weights": {"bogus": 1}}, "unknown weight"), ({"weights": {"lexical": -1}}, ">= 0"),
    ({"weights": {"dense": float("nan")}}, ">= 0")])
def test_search_bounds_are_clear_errors(run, kwargs, says):
    with Index.open(run["index"], create=False) as idx, pytest.raises(QueryError, match=says):
        idx.search("moon", **kwargs)


@pytest.mark.parametrize("item_id", [10**20, -1, 0, 2**63])
def test_item_ids_out_of_range_are_clear_errors(run, item_id):
    with Index.open(run["index"], create=False) as idx:
        for call in (idx.item, idx.similar, idx.thumbnail):
            with pytest.raises(QueryError, match="no item|ids run"):
                call(item_id)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(-10**30, 10**30), offset=st.integers(-10**30, 10**30))
def test_any_k_and_offset_is_a_result_or_a_query_error(run, k, offset):
    with Index.open(run["index"], create=False) as idx:
        try:
            results = idx.search("moon", k=k, offset=offset, mode="lexical")
        except QueryError:
            return
        assert len(results) <= k


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=1, max_size=40))
def test_any_bytes_as_a_query_never_crash(run, raw):
    text = os.fsdecode(raw)  # what Python makes of argv bytes: surrogates for non-UTF-8
    with Index.open(run["index"], create=False) as idx:
        try:
            idx.search(text, k=3)
        except QueryError:
            pass


def test_cli_bounds_and_bytes_are_one_line_errors(run):
    runner = CliRunner()
    index = str(run["index"])
    for args in (["search", "-k", "1000000000", "x"], ["search", "-k", "99999999999999999999",
                                                          "x"],
                 ["show", "99999999999999999999"], ["similar", "99999999999999999999"],
                 ["search", "--offset", "-3", "moon"], ["search", "--weights", "bogus=1", "x"]):
        out = runner.invoke(cli, [*args, "--index", index])
        assert out.exit_code in (1, 2), (args, out.output)  # a message, not a crash
        assert isinstance(out.exception, SystemExit), (args, out.exception)
        assert "Error:" in out.output, out.output
    query = os.fsdecode(b"moon caf\xe9 \xff")
    out = runner.invoke(cli, ["search", query, "--index", index, "--local"])
    assert out.exit_code == 0, out.output
    assert "moon" in out.output


def test_paths_that_are_not_utf8_work_end_to_end(tmp_path):
    folder = tmp_path / os.fsdecode(b"caf\xe9-notes")
    note = _write(folder / os.fsdecode(b"r\xe9sum\xe9.md"), "# Harbour\n\nThe harbour pilot "
                  "boards ships at the breakwater.")
    index = str(tmp_path / "idx")
    runner = CliRunner()
    out = runner.invoke(cli, ["index", str(folder), "--index", index, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.splitlines()[-1])["added"] == 1
    out = runner.invoke(cli, ["similar", str(note), "--index", index])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["search", "harbour pilot", "--index", index, "--json", "--local"])
    assert out.exit_code == 0 and json.loads(out.output.splitlines()[0])["path"].endswith(
        "sum\ufffd.md")
    out = runner.invoke(cli, ["remove", str(folder), "--index", index])
    assert out.exit_code == 0 and "removed 1" in out.output, out.output
    out = runner.invoke(cli, ["index", str(folder), "--index", index, "--json"])  # again
    assert json.loads(out.output.splitlines()[-1])["added"] == 1


# -- query images ---------------------------------------------------------------------------------
def test_query_image_urls_fail_in_one_sentence(run):
    body = b"<html>not an image</html>"
    with http_server({"/page": ("body", body), "/big": ("body", b"x" * 5000),
                      "/silent": ("silent", b""), "/trickle": ("trickle", b"")}) as url:
        with Index.open(run["index"], create=False) as idx:
            with pytest.raises(QueryError, match="as a query image"):
                idx.search(image=f"{url}/page")
            with pytest.raises(QueryError, match="cannot fetch"):
                idx.search(image=f"http://127.0.0.1:{closed_port()}/x.jpg")
            with pytest.raises(QueryError, match="HTTP 404"):
                idx.search(image=f"{url}/nothing.jpg")
        seconds, err = elapsed(lambda: fetch_url(f"{url}/silent", deadline=1.0))
        assert isinstance(err, QueryError) and seconds < 5, (seconds, err)
        seconds, err = elapsed(lambda: fetch_url(f"{url}/trickle", deadline=2.0))
        assert isinstance(err, QueryError) and "within 2 s" in str(err) and seconds < 8
        with pytest.raises(QueryError, match="larger than 1000 bytes"):
            fetch_url(f"{url}/big", max_bytes=1000)
        from anyfind.client import Client

        with pytest.raises(QueryError, match="cannot fetch"):  # the --server path too
            Client("http://127.0.0.1:1")._example_bytes(
                f"http://127.0.0.1:{closed_port()}/x.jpg")


def test_the_web_connector_has_a_total_deadline():
    from anyfind.connectors.web import WebConnector
    from anyfind.errors import SourceError

    with http_server({"/trickle": ("trickle", b"")}) as url:
        seconds, err = elapsed(lambda: list(WebConnector(f"{url}/trickle", timeout=1,
                                                         retries=1).scan()))
    assert isinstance(err, SourceError) and "timed out" in str(err)
    assert seconds < 15  # the page never ends: total = 4 x the per-request timeout


def test_query_images_get_the_indexing_guards(run, tmp_path):
    bomb = _write(tmp_path / "bomb.png", png_bomb())  # 400 MP
    big = _write(tmp_path / "150mp.png", png_bomb(12_300))  # 151 MP: over the 100 MP cap
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with Index.open(run["index"], create=False) as idx:
        for path in (bomb, big):
            with pytest.raises(QueryError, match="decompression bomb"):
                idx.search(image=str(path))
        seconds, err = elapsed(lambda: idx.search(image=str(fifo)))
        assert isinstance(err, QueryError) and "not a regular file" in str(err)
        assert seconds < 5
        with pytest.raises(QueryError, match="not both"):
            idx.search(image=str(bomb), audio=str(bomb))
        # Under the cap but decoded whole (a PNG has no draft mode): 800 MB a request.
        under = _write(tmp_path / "99mp.png", png_bomb(9_999))  # 99.98 MP, a few KB
        seconds, err = elapsed(lambda: idx.search(image=str(under)))
        assert isinstance(err, QueryError) and "too large to search with" in str(err)
        assert seconds < 5


# -- incremental lexical scores ------------------------------------------------------------------
def test_lexical_scores_after_edits_equal_a_clean_build(tmp_path):
    docs = tmp_path / "docs"
    texts = {f"n{i}.md": f"# Note {i}\n\nThe lantern {'and the lantern ' * (i % 3)}lights "
                         f"harbour {i} at dusk; ferries wait." for i in range(8)}
    for name, text in texts.items():
        _write(docs / name, text)
    queries = ["lantern harbour", "ferries wait at dusk", "note lights"]

    def scores(index: Path) -> dict:
        with Index.open(index, create=False) as idx:
            return {q: sorted((Path(r.path).name, round(r.score, 4))
                              for r in idx.search(q, mode="lexical", k=20)) for q in queries}

    live = tmp_path / "live"
    with Index.open(live, tagger=False, transcriber=None) as idx:
        idx.add([docs])
    steps = [
        lambda: (docs / "n1.md").write_text("# Note 1\n\nA different lantern now."),
        lambda: (docs / "n2.md").unlink(),
        lambda: (docs / "n3.md").rename(docs / "n3-renamed.md"),
        lambda: _write(docs / "n9.md", "# Nine\n\nHarbour ferries, a lantern, dusk."),
        lambda: [(docs / n).unlink() for n in ("n4.md", "n5.md")],
    ]
    for n, step in enumerate(steps):
        step()
        with Index.open(live, create=False) as idx:
            idx.sync()
        clean = tmp_path / f"clean-{n}"
        with Index.open(clean, tagger=False, transcriber=None) as idx:
            idx.add([docs])
        assert scores(live) == scores(clean), f"after step {n}"


# -- the server and the lock ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from anyfind.server import create_app

    base = tmp_path_factory.mktemp("served")
    folder = base / "docs"
    for name in ("a.md", "b.md", "c.md", "d.md"):
        _write(folder / name, f"# {name}\n\nA note called {name} about tide tables.")
    _write(base / "shadow", "root:$6$secret-hash:19000:0:99999:7:::")
    index = base / "idx"
    with Index.open(index, tagger=False, transcriber=None) as idx:
        idx.add([folder])
        ids = {Path(r.path).name: r.item_id for r in idx.search("tide tables note", k=10)}
    app = create_app(index, token="t0k3n", warm=False, cors=["https://ok.example"])
    with TestClient(app) as client:
        yield {"client": client, "folder": folder, "ids": ids, "shadow": base / "shadow",
               "index": index}


AUTH = {"Authorization": "Bearer t0k3n"}


def test_content_refuses_swapped_files(served):
    client, folder, ids = served["client"], served["folder"], served["ids"]
    assert client.get(f"/api/items/{ids['c.md']}/content", headers=AUTH).status_code == 200
    (folder / "a.md").unlink()
    os.symlink(served["shadow"], folder / "a.md")
    resp = client.get(f"/api/items/{ids['a.md']}/content", headers=AUTH)
    assert resp.status_code == 404 and "secret-hash" not in resp.text
    (folder / "b.md").write_text("# b.md\n\nSomething else entirely, and longer than before.")
    assert client.get(f"/api/items/{ids['b.md']}/content", headers=AUTH).status_code == 409
    (folder / "d.md").unlink()
    os.mkfifo(folder / "d.md")
    seconds, resp = elapsed(lambda: client.get(f"/api/items/{ids['d.md']}/content",
                                               headers=AUTH))
    assert resp.status_code == 404 and seconds < 5


def test_content_refuses_a_hard_link_with_the_same_size_and_mtime(served, tmp_path):
    """An outside file of the same size, its mtime set to the indexed one's, hard-linked
    in place of an indexed file: size and mtime agree, the inode does not (it was served)."""
    client, folder = served["client"], served["folder"]
    target = folder / "e.md"
    _write(target, "# e.md\n\nA note called e.md about tide tables.")
    with Index.open(served["index"], create=False) as idx:
        idx.sync()
        (item,) = idx.item_ids_at([str(target)])
    assert client.get(f"/api/items/{item}/content", headers=AUTH).status_code == 200
    st = target.stat()
    outside = tmp_path / "payroll.md"  # same length, other bytes
    outside.write_bytes(b"S" * st.st_size)
    os.utime(outside, ns=(st.st_atime_ns, st.st_mtime_ns))
    target.unlink()
    os.link(outside, target)
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    resp = client.get(f"/api/items/{item}/content", headers=AUTH)
    assert resp.status_code == 409 and "SSSS" not in resp.text


def test_a_session_is_revoked_by_logout(served):
    client = served["client"]
    client.cookies.clear()
    assert client.post("/api/session", headers=AUTH).status_code == 204
    cookie = client.cookies.get("anyfind_session")
    assert client.get("/api/status").status_code == 200
    assert client.delete("/api/session").status_code == 204
    client.cookies.set("anyfind_session", cookie, path="/api/")
    resp = client.get("/api/status")
    assert resp.status_code == 401 and "revoked" in resp.json()["detail"]
    client.cookies.clear()


def test_token_messages_say_what_is_wrong(served):
    client = served["client"]
    assert "wrong token" in client.get("/api/status", headers={
        "Authorization": "Bearer nope"}).json()["detail"]
    assert "needs a token" in client.get("/api/status").json()["detail"]


def test_cross_origin_reads_only_for_the_configured_origin(served):
    client = served["client"]
    assert client.get("/healthz", headers={"Origin": "https://ok.example"}).headers[
        "cross-origin-resource-policy"] == "cross-origin"
    for headers in ({"Origin": "https://evil.example"}, {}):
        assert client.get("/healthz", headers=headers).headers[
            "cross-origin-resource-policy"] == "same-origin"


def test_upload_errors_name_the_upload_not_a_temp_file(served):
    data = b"fLaC" + os.urandom(2000)  # sniffed as FLAC, undecodable
    resp = served["client"].post("/api/search", headers=AUTH,
                                 files={"file": ("clip.flac", data, "audio/flac")})
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert "clip.flac" in detail and "anyfind-query-" not in detail and "/tmp" not in detail


def test_deleting_write_lock_does_not_let_a_second_writer_in(tmp_path):
    index = tmp_path / "idx"
    Index.open(index, tagger=False, transcriber=None).close()
    with Index.open(index, create=False) as first:
        first.lock.acquire()
        try:
            (index / "write.lock").unlink()
            with Index.open(index, create=False) as second, pytest.raises(IndexLocked):
                second.lock.acquire()
        finally:
            first.lock.release()
    with Index.open(index, create=False) as third:
        third.lock.acquire()
        third.lock.release()


def test_pillow_bomb_warning_is_not_printed_while_indexing(tmp_path):
    import warnings

    folder = tmp_path / "imgs"
    # 151 MP: over the 100 MP cap, under twice it, where Pillow warns instead of refusing.
    _write(folder / "big.png", png_bomb(12_300))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # what a plain `python` run shows on stderr
        with Index.open(tmp_path / "idx", transcriber=None) as idx:
            report = idx.add([folder])
    assert report.failed == 1 and "decompression bomb" in report.errors[0]["error"]
    assert not [w for w in caught if w.category.__name__ == "DecompressionBombWarning"]


def test_dates_at_the_ends_of_the_calendar_are_valid(run):
    with Index.open(run["index"], create=False) as idx:
        assert idx.search("moon after:0001-01-01", k=1)
        assert idx.search("moon after:9999", k=1) == []
        assert idx.search("moon before:9999-12-31", k=1)


def test_a_thread_left_reading_does_not_block_exit(tmp_path):
    """The deadline's daemon threads: a process whose read hung still exits."""
    fifo = tmp_path / "hung"
    os.mkfifo(fifo)
    code = ("import sys; from pathlib import Path\n"
            "from anyfind.indexer.deadline import map_with_deadlines\n"
            "print(map_with_deadlines(lambda p: open(p, 'rb').read(), [Path(sys.argv[1])], 1,"
            " lambda _: 0.3))\n")
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "DeadlineExceeded" in out.stdout



def test_a_new_index_folder_is_its_owners_only(tmp_path):
    """meta.db and lexical/ hold the indexed text: a new index's folder is 0700, so no
    other user reads them whatever each file's mode (it was 0755, meta.db 0644)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "salary.txt").write_text("The salary review for Ana is due in March.")
    with Index.open(tmp_path / "idx") as idx:
        idx.add([folder])
    mode = (tmp_path / "idx").stat().st_mode & 0o777
    assert mode & 0o077 == 0, oct(mode)
    existing = tmp_path / "shared-idx"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)  # a folder the user made (and may share): left as it is
    Index.open(existing).close()
    assert existing.stat().st_mode & 0o777 == 0o755
