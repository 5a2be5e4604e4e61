"""`anyfind check [--repair]`: each kind of damage is found, and repaired without
re-embedding where that is possible (missing vectors: the next sync re-embeds)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from crashkit import copy_index
from procs import anyfind, text_corpus

from anyfind import Index
from anyfind.store.faiss_store import FaissVectorStore


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("check")
    docs = base / "docs"
    text_corpus(docs, 6)
    with Index.open(base / "idx", tagger=False, transcriber=None) as idx:
        idx.add([docs])
    return base / "idx", docs


@pytest.fixture
def damaged(pristine, tmp_path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        dest = tmp_path / name
        copy_index(pristine[0], dest)
        return dest

    return make


def sql(index: Path, *statements: str) -> None:
    db = sqlite3.connect(index / "meta.db")
    db.execute("PRAGMA foreign_keys=OFF")
    for s in statements:
        db.execute(s)
    db.commit()
    db.close()


def run_check(index: Path, repair: bool = False):
    with Index.open(index, create=False) as idx:
        return idx.check(repair=repair)


def assert_found_then_repaired(index: Path, code: str, severity: str = "error") -> None:
    report = run_check(index)
    assert code in report.codes(), report.summary()
    assert any(f.code == code and f.severity == severity for f in report.findings)
    fixed = run_check(index, repair=True)
    assert next(f for f in fixed.findings if f.code == code).repaired, fixed.summary()
    assert run_check(index).findings == []


def test_a_healthy_index_is_ok(pristine):
    report = run_check(pristine[0])
    assert report.ok and report.findings == []
    assert report.stats["items"] == 6 and report.stats["spaces"]["text"]["file"] == 6
    cli = anyfind("check", "--index", str(pristine[0]), "--json")
    assert cli.returncode == 0 and json.loads(cli.stdout)["ok"] is True


@pytest.mark.parametrize("code, damage", [
    ("orphan-vectors", "INSERT INTO embeddings VALUES (99999, 'text', zeroblob(1536))"),
    ("orphan-chunks", "INSERT INTO chunks(item_id, ordinal, modality, text) "
                      "VALUES (99999, 0, 'text', 'lost')"),
    ("orphan-items", "INSERT INTO items(source_id, uri, path, status, fingerprint, meta, "
                     "indexed_at) VALUES (999, 'file:///x', '/x', 'ok', '', '{}', 0)"),
    ("chunks-of-failed-items", "UPDATE items SET status = 'error' WHERE id = "
                               "(SELECT min(id) FROM items)"),
    ("unknown-space", "INSERT INTO embeddings SELECT chunk_id, 'ghost', vector FROM embeddings"),
])
def test_store_damage(damaged, code, damage):
    index = damaged(code)
    sql(index, damage)
    assert_found_then_repaired(index, code)


def test_missing_and_malformed_vectors_are_re_embedded_by_the_next_sync(damaged, pristine):
    index = damaged("missing")
    sql(index, "DELETE FROM embeddings WHERE chunk_id = (SELECT min(id) FROM chunks)",
        "UPDATE embeddings SET vector = zeroblob(40) WHERE chunk_id = (SELECT max(id) FROM chunks)")
    report = run_check(index)
    assert {"missing-vectors", "vector-size"} <= report.codes()
    cli = anyfind("check", "--index", str(index), "--repair")
    assert cli.returncode == 1 and "re-embedded by the next sync" in cli.stdout
    fixed = run_check(index)
    assert fixed.codes() == {"missing-vectors"} and fixed.findings[0].repair is None
    with Index.open(index, create=False) as idx:
        again = idx.add([pristine[1]])
        assert again.updated == 2 and again.chunks == 2
        assert idx.check().findings == []


def _file(index: Path) -> FaissVectorStore:
    vi = FaissVectorStore(index / "vectors", "text", 384)
    assert vi.load()
    return vi


def test_vector_file_damage(damaged):
    index = damaged("garbage")
    (index / "vectors" / "text.faiss").write_bytes(b"not a faiss index")
    assert_found_then_repaired(index, "vector-file-unreadable", "warning")

    index = damaged("mismatch")  # claims the store's generation, lacks a vector
    vi = _file(index)
    vi.remove(vi.ids()[:1])
    vi.save()
    assert_found_then_repaired(index, "vector-file-mismatch")

    index = damaged("duplicates")
    vi = _file(index)
    vi.index.add_with_ids(np.ones((1, 384), np.float32), vi.ids()[:1])
    vi.save()
    assert_found_then_repaired(index, "vector-file-duplicates")

    index = damaged("content")  # same ids, other vectors
    vi = _file(index)
    ids = vi.ids()
    vi.remove(ids)
    vi.add(ids, np.eye(len(ids), 384, dtype=np.float32))
    vi.save()
    assert_found_then_repaired(index, "vector-file-content")

    index = damaged("stale")  # an older generation: harmless, caught up on open
    vi = _file(index)
    vi.generation -= 1
    vi.save()
    assert_found_then_repaired(index, "vector-file-stale", "warning")

    index = damaged("missing-file")
    (index / "vectors" / "text.faiss").unlink()
    assert_found_then_repaired(index, "vector-file-missing", "warning")


def test_temp_files_left_by_a_killed_writer(damaged, pristine):
    index = damaged("temp")
    leftovers = [index / "vectors" / ".text.faiss.x1.tmp", index / ".config.json.x2.tmp"]
    for p in leftovers:
        p.write_bytes(b"half written")
    assert_found_then_repaired(index, "temp-files", "warning")
    assert not any(p.exists() for p in leftovers)
    # the next writer removes those of its own folders by itself, and in the index folder
    # those whose writer (named in the file) has exited: a killed writer's config.json
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (index / "vectors" / ".text.json.x3.tmp").write_bytes(b"")
    killed = index / f".config.json.{gone}.x4.tmp"
    writing = index / f".config.json.{os.getpid()}.x5.tmp"  # a live process's, mid-write
    for p in (killed, writing):
        p.write_bytes(b"{")
    with Index.open(index, create=False) as idx:
        idx.add([pristine[1]])
    assert not (index / "vectors" / ".text.json.x3.tmp").exists()
    assert not killed.exists() and writing.exists()
    writing.unlink()


def test_lexical_index(damaged):
    index = damaged("fts")
    # an entry of the full-text index goes missing behind the chunks' back
    sql(index, "INSERT INTO chunks_fts(chunks_fts, rowid, text) SELECT 'delete', id, text "
               "FROM chunks WHERE id = (SELECT min(id) FROM chunks)")
    assert_found_then_repaired(index, "lexical-index")
    with Index.open(index, create=False) as idx:
        assert idx.search("river", k=3, mode="lexical")


def test_config_and_store_disagree(damaged):
    index = damaged("dims")
    sql(index, "UPDATE spaces SET dim = 768 WHERE name = 'text'")
    report = run_check(index, repair=True)
    finding = next(f for f in report.findings if f.code == "space-dim")
    assert not finding.repaired and "reindex" in finding.message
    cli = anyfind("check", "--index", str(index))
    assert cli.returncode == 1 and "space-dim" in cli.stdout
