"""The bad-input corpus (badinputs.py) indexed in one run, by a root that obeys file
permissions, while a thread rewrites and deletes files: the run completes, every bad
input is indexed or recorded, every good file stays searchable, the index is consistent."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path

import pytest
from badinputs import GOOD, GOOD_QUERIES, build, build_sources, mutate_forever
from procs import anyfind, can_drop_privileges

from anyfind import Index
from anyfind.connectors.filesystem import display_path

OBEYS = can_drop_privileges()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    root, index = base / "corpus", base / "idx"
    bad = build(root)
    stop = threading.Event()
    rounds: list[int] = []
    mutator = threading.Thread(target=lambda: rounds.append(mutate_forever(root, stop)))
    mutator.start()
    try:
        result = anyfind("index", str(root), "--index", str(index), "--json",
                         obey_permissions=OBEYS)
    finally:
        stop.set()
        mutator.join()
    yield {"root": root, "bad": bad, "index": index, "result": result, "rounds": rounds[0]}
    for p in [root / "perms" / "locked.md", root / "perms" / "closed"]:
        p.chmod(0o755)  # let pytest clean up


def outcome(item, root: Path, rows: dict, scan_errors: dict) -> tuple[str, str]:
    path = item.path(root)
    row = rows.get(path.as_uri())
    if row is not None:
        return row["status"], row["error"] or ""
    shown = display_path(path)
    for where, message in scan_errors.items():  # the entry itself, or a folder above it
        if shown == where or shown.startswith(where + "/"):
            return "scan", message
    return "absent", ""


def test_the_run_completes(run):
    result = run["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["added"] >= len(GOOD) and report["failed"] > 10
    assert report["skipped"] >= 9  # the zero-byte files: nothing to index, not failures


def test_every_bad_input_is_indexed_or_recorded(run):
    root, bad = run["root"], run["bad"]
    with Index.open(run["index"], create=False) as idx:
        rows = {r["uri"]: r for r in _items(idx)}
    report = json.loads(run["result"].stdout)
    scan_errors = {e["path"]: e["error"] for e in report["errors"]}
    seen = Counter()
    wrong = []
    for item in bad:
        got, message = outcome(item, root, rows, scan_errors)
        expect = item.expect
        if not OBEYS and item.kind.startswith("unreadable"):
            expect = "ok|error|scan"  # root reads everything: nothing to observe
        if got not in expect.split("|") or (got == "error" and item.says.lower()
                                            not in message.lower()):
            wrong.append((item.kind, expect, got, message))
        seen[got] += 1
    assert wrong == []
    assert len(bad) >= 30
    figures = {"bad_input_kinds": len(bad), "outcomes": dict(seen),
               "mutations_during_scan": run["rounds"]}
    print(f"\nbad inputs: {json.dumps(figures)}")
    if path := os.environ.get("ANYFIND_RELIABILITY_REPORT"):
        with open(path, "a") as fh:
            fh.write(json.dumps({"mode": "bad-inputs", **figures}) + "\n")


def _items(idx: Index) -> list[dict]:
    from sqlalchemy import select

    from anyfind.store.schema import Item

    with idx.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(Item.id, Item.uri, Item.status, Item.error))
                .mappings()]


def test_good_files_and_odd_names_are_searchable(run):
    root = run["root"]
    queries = {**GOOD_QUERIES, "names/two\nlines.md": "a file name with a newline about kettles",
               "encodings/utf16.txt": "lighthouse keepers",
               "deep/" + "/".join(["d"] * 300) + "/bottom.md": "three hundred folders down"}
    with Index.open(run["index"], create=False) as idx:
        for rel, query in queries.items():
            top = idx.search(query, k=3)
            assert top and top[0].path == display_path(root / rel), (rel, [r.path for r in top])
        latin = idx.search("Latin-1 name", k=1)[0]
        assert latin.path.endswith("caf\ufffd-latin1.md")  # readable name, exact file behind it


def test_the_index_is_consistent_and_a_resync_is_stable(run):
    with Index.open(run["index"], create=False) as idx:
        assert idx.check().findings == []
        again = idx.add([run["root"]])  # as full root now: the unreadable file is read
        assert idx.check().findings == []
    assert again.added + again.updated >= 1 and again.unchanged >= len(GOOD)


def test_bad_inputs_behind_other_connectors(tmp_path):
    """A database with NULLs, a git repository with a submodule and an LFS pointer, a tar
    with hostile member names and links, a zip bomb: each source syncs or fails alone."""
    sources = build_sources(tmp_path / "sources")
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None) as idx:
        for name, (uri, options) in sources.items():
            idx.add_source(name, uri, "git" if name == "repo" else None, **options)
        report = idx.sync(list(sources))
        assert report.failed_sources == ["bomb"]
        errors = {e.get("source", ""): e["error"] for e in report.errors}
        assert "zip bomb" in errors["bomb"]
        assert any("NULL id" in e["error"] for e in report.errors)
        items = {r["uri"].rsplit("/", 1)[-1]: r for r in _items(idx)}
        # rows: with text indexed (NUL and numbers included), without any text no item
        assert {"notes#2", "notes#3", "notes#5", "notes#6", "notes#7"} <= set(items)
        assert "notes#1" not in items and "notes#4" not in items
        row7 = idx.item(items["notes#7"]["id"])["chunks"][0]["text"]
        assert "before" in row7 and "after" in row7
        # git: the LFS pointer is indexed as what it is; the submodule is no item
        pointer = next(r for u, r in items.items() if u.endswith("photo.png"))
        assert pointer["status"] == "ok" and idx.item(pointer["id"])["meta"]["lfs_pointer"]
        assert not any("vendor" in u for u in items)
        # tar: odd names read in place, links and devices are no items, nothing extracted
        members = {u.split("::")[0] for u in (r["uri"] for r in _items(idx))
                   if u.startswith("tar://")}
        assert members == {"tar://docs/ok.md", "tar://../../escape.md", "tar:///etc/evil.md"}
        assert not (tmp_path / "escape.md").exists() and not Path("/etc/evil.md").exists()
        assert [r.source for r in idx.search("harbour lighthouse", k=1)] == ["nulls"]
        assert [r.source for r in idx.search("copper kettle collection", k=1)] == ["repo"]
        assert idx.check().findings == []
