"""The services of a cluster index failing mid-sync: PostgreSQL restarted (immediate
mode: a crash, recovered from its WAL) between two write transactions of a sync. Nothing
is lost, nothing is duplicated: the items are exactly the folder's, the vectors exactly
the metadata store's, and `anyfind check` passes. (Milvus unreachable at sync and at
search, and vectors pending while it is down then caught up, are in
tests/store/test_vector_store_contract.py.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from postgres_fixtures import _pg_bin, postgres_server, postgres_url  # noqa: F401 (fixtures)

N_FILES = 40
TOPICS = ("tomato seedlings and compost", "the moon and the tides", "espresso and crema",
          "glaciers and moraines", "violin bows and rosin")


def write_notes(folder: Path) -> None:
    folder.mkdir()
    for i in range(N_FILES):
        (folder / f"n{i:02d}.txt").write_text(
            f"Note {i} about {TOPICS[i % len(TOPICS)]}, entry number {i * 13}.")


def assert_whole(idx) -> None:
    """Vectors in the service == the metadata store's, no duplicate; every file there."""
    vectors = idx.opened.vectors("text")
    ids = vectors.ids().tolist()
    assert len(ids) == len(set(ids)) == vectors.count()
    assert sorted(ids) == sorted(idx.store.vector_ids("text").tolist())
    assert idx.store.counts()["items"] == N_FILES
    assert idx.search("espresso crema", k=1, mode="dense")[0].path.endswith(".txt")
    assert idx.check().ok


@pytest.mark.timeout(600)
def test_postgres_restarted_mid_sync_resumes_with_nothing_lost(tmp_path, postgres_server,  # noqa: F811
                                                               postgres_url, monkeypatch):  # noqa: F811
    from anyfind import Index
    from anyfind.indexer import batch_writer

    _, root = postgres_server
    pg_ctl = _pg_bin("pg_ctl")
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    write_batch = batch_writer.BatchWriter.write_batch
    calls = {"n": 0}

    def write_then_restart(self, items):
        write_batch(self, items)
        calls["n"] += 1
        if calls["n"] == 1:  # one transaction committed: the database crashes and restarts
            # the server's output goes to its log: pipes it inherited would never close
            subprocess.run(prefix + [pg_ctl, "-D", str(root / "data"), "-m", "immediate",
                                     "-l", str(root / "log"), "-w", "-t", "120", "restart"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=180)

    monkeypatch.setattr(batch_writer.BatchWriter, "write_batch", write_then_restart)
    write_notes(tmp_path / "notes")
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None, store_url=postgres_url,
                    batch_chunks=8) as idx:
        first = idx.add([tmp_path / "notes"])
        assert calls["n"] > 1  # the restart came between write transactions
        # pooled connections are checked before use: the dead ones are replaced and the
        # sync goes on after the restart
        assert first.failed_sources == [] and first.failed == 0
        assert first.added == N_FILES
        assert_whole(idx)
        again = idx.sync()
        assert again.unchanged == N_FILES and again.added == 0


def test_a_server_answers_the_first_search_after_a_postgres_restart(tmp_path, postgres_server,  # noqa: F811
                                                                    postgres_url):  # noqa: F811
    """A replica after a PostgreSQL restart answered one plain-text 500 (a traceback in the
    lexical search) before recovering: the first search after it is answered as before,
    and any error is JSON."""
    from fastapi.testclient import TestClient

    from anyfind import Index
    from anyfind.server import create_app

    _, root = postgres_server
    pg_ctl = _pg_bin("pg_ctl")
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    write_notes(tmp_path / "notes")
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None,
                    store_url=postgres_url) as idx:
        idx.add([tmp_path / "notes"])
    with TestClient(create_app(tmp_path / "idx", warm=False)) as client:
        before = client.get("/api/search", params={"q": "espresso crema", "k": 3})
        assert before.status_code == 200
        subprocess.run(prefix + [pg_ctl, "-D", str(root / "data"), "-m", "immediate", "-l",
                                 str(root / "log"), "-w", "-t", "120", "restart"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
        answers = {}
        for mode in ("hybrid", "lexical", "dense"):
            after = client.get("/api/search", params={"q": "espresso crema", "k": 3,
                                                      "mode": mode})
            assert after.headers["content-type"].startswith("application/json"), after.text
            assert after.status_code == 200, (mode, after.text)
            answers[mode] = [r["path"] for r in after.json()["results"]]
        assert answers["hybrid"] == [r["path"] for r in before.json()["results"]]
