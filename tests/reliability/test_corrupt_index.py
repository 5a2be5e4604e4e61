"""A damaged index never answers wrongly: a truncated meta.db, a config.json with wrong
types, each said in one line by every command (and found by `check`), exit code 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from procs import anyfind, text_corpus

from anyfind import Index


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("corrupt")
    text_corpus(base / "docs", 6)
    with Index.open(base / "idx", tagger=False, transcriber=None) as idx:
        idx.add([base / "docs"])
    return base / "idx"


def damaged(pristine: Path, tmp_path: Path, how) -> Path:
    copy = tmp_path / "idx"
    shutil.copytree(pristine, copy)
    how(copy)
    return copy


def truncate_meta(index: Path) -> None:
    data = (index / "meta.db").read_bytes()
    (index / "meta.db").write_bytes(data[: len(data) // 2])
    for extra in ("meta.db-wal", "meta.db-shm"):
        (index / extra).unlink(missing_ok=True)


def wrong_types(index: Path) -> None:
    config = json.loads((index / "config.json").read_text())
    config["batch_chunks"] = "many"
    (index / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("how, said", [
    (truncate_meta, "meta.db is damaged"),
    (wrong_types, "'batch_chunks' should be int"),
])
def test_every_command_says_the_damage_in_one_line(pristine, tmp_path, how, said):
    index = damaged(pristine, tmp_path, how)
    for args in (["search", "note"], ["status"], ["sync"], ["check"]):
        done = anyfind(*args, "--index", str(index))
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert said in done.stdout + done.stderr, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_deleted_milvus_lite_segment_is_an_error_that_repair_and_sync_mend(tmp_path):
    """A Milvus Lite data file deleted under the index: `check` said ok (a warning) and a
    sync re-embedded nothing. Now it is an error naming the repair; repair and a sync
    bring every vector back. (Each step in its own process: Milvus Lite keeps a file's
    data in memory for as long as the process that opened it lives.)"""
    pytest.importorskip("pymilvus")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(21):
        (docs / f"n{i}.md").write_text(f"# Note {i}\n\nHarbour log entry {i}: tides, gulls.")
    lite, idx = tmp_path / "v.db", str(tmp_path / "idx")
    done = anyfind("index", str(docs), "--index", idx, "-q", "--no-tags", "--no-audio",
                   "--vector-store", f"milvus-lite://{lite}")
    assert done.returncode == 0, done.stderr
    segments = [p for p in lite.rglob("*") if p.is_file() and "/data/" in str(p)]
    assert segments, sorted(str(p) for p in lite.rglob("*"))
    for p in segments:
        p.unlink()
    checked = anyfind("check", "--index", idx)
    assert checked.returncode != 0, checked.stdout
    assert "vector-store-mismatch" in checked.stdout and "--repair" in checked.stdout
    repaired = anyfind("check", "--repair", "--index", idx)  # the rest is the sync's
    assert "re-encoded by the next sync" in repaired.stdout + repaired.stderr
    again = anyfind("sync", "--index", idx, "--json")
    assert again.returncode == 0 and '"updated": 21' in again.stdout, again.stdout
    assert anyfind("check", "--index", idx).returncode == 0
    with Index.open(idx, create=False) as index:
        assert len(index.search("harbour gulls", k=30, mode="dense", floor=False)) == 21
