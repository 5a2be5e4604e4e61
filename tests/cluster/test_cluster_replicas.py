"""The cluster index from anywhere (PostgreSQL + a real Milvus server): the index folder
holds only the config and caches, so `anyfind serve` started on a folder holding nothing
but config.json answers the index; two such replicas answer the same queries with the
same results while a third process syncs; a replica started later, from another
config-only folder, needs no copy of anything (the calibration and thumbnails come from
the metadata store)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from milvus_fixtures import free_port
from postgres_fixtures import postgres_server, postgres_url  # noqa: F401 (fixtures, by name)

from anyfind import Index

pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).resolve().parents[2]
IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
QUERIES = ["the moon and the tides", "espresso extraction", "tomato plants sunlight",
           "a cup of coffee", "fibonacci numbers in python"]


class Replica:
    """`python -m anyfind serve` on a folder, on a loopback port."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anyfind", "serve", "--index", str(folder),
             "--port", str(self.port)], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120)
        deadline = time.monotonic() + 300
        while True:  # a bounded wait for start-up (the models load first)
            assert self.proc.poll() is None, self.proc.stdout.read().decode()
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)

    def search(self, q: str, k: int = 5) -> list[tuple[str, float]]:
        resp = self.http.get("/api/search", params={"q": q, "k": k})
        assert resp.status_code == 200, resp.text
        return [(r["path"], round(r["score"], 4)) for r in resp.json()["results"]]

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.communicate(timeout=60)


def config_only(writer: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in ("config.json", "secrets.json"):
        if (writer / name).exists():
            shutil.copy(writer / name, folder / name)
    return folder


def test_a_config_only_folder_opens_a_postgresql_index_with_its_calibration_and_thumbnails(
        tmp_path, corpus, postgres_url):  # noqa: F811 (a fixture)
    """In-process, FAISS vectors (a cache the config-only folder builds from the store):
    the calibration and the thumbnails come from PostgreSQL, copied into the folder as a
    cache; a refit by the writer replaces the cached calibration."""
    (corpus / "photos").mkdir()
    shutil.copy(IMAGES / "coffee.jpg", corpus / "photos" / "coffee.jpg")
    writer = tmp_path / "writer"
    with Index.open(writer, store_url=postgres_url, transcriber=None) as idx:
        idx.add([corpus])
        want = {q: [(r.path, round(r.score, 4)) for r in idx.search(q, k=5)] for q in QUERIES}
        calibration = (writer / "calibration.json").read_bytes()
    folder = config_only(writer, tmp_path / "elsewhere")
    with Index.open(folder, create=False) as idx:
        assert {q: [(r.path, round(r.score, 4)) for r in idx.search(q, k=5)]
                for q in QUERIES} == want
        assert (folder / "calibration.json").read_bytes() == calibration
        (photo,) = idx.search("a cup of coffee type:image", k=1)
        thumb = idx.thumbnail(photo.item_id)
        assert thumb is not None and Path(thumb).is_relative_to(folder)
        assert Path(thumb).read_bytes() == next((writer / "thumbnails").rglob("*.jpg")).read_bytes()
    with Index.open(writer, create=False) as idx:  # the writer refits (a forced refit)
        from anyfind.core import calibration as calib

        calib.refresh(idx.opened.fit_inputs(), force=True)
        refit = (writer / "calibration.json").read_bytes()
    with Index.open(folder, create=False) as idx:
        assert idx.opened.calibration is not None
        assert (folder / "calibration.json").read_bytes() == refit


def test_replicas_over_config_only_folders_answer_alike_while_a_sync_runs(
        tmp_path, corpus, postgres_url, milvus_server):  # noqa: F811 (fixtures)
    (corpus / "photos").mkdir()
    shutil.copy(IMAGES / "coffee.jpg", corpus / "photos" / "coffee.jpg")
    writer = tmp_path / "writer"
    uri = f"{milvus_server}&prefix=r{uuid.uuid4().hex[:12]}_"
    with Index.open(writer, store_url=postgres_url, vector_store=uri, transcriber=None) as idx:
        assert idx.add([corpus]).added == 7
        reference = {q: [(r.path, round(r.score, 4)) for r in idx.search(q, k=5)]
                     for q in QUERIES}
    replicas = [Replica(config_only(writer, tmp_path / f"replica-{n}")) for n in "ab"]
    try:
        for q in QUERIES:
            assert [r.search(q) for r in replicas] == [reference[q]] * 2, q
        # The image's thumbnail, from a folder that never had it: from the store.
        body = replicas[0].http.get("/api/search",
                                    params={"q": "a cup of coffee type:image", "k": 1}).json()
        item = body["results"][0]["item_id"]
        thumb = replicas[0].http.get(f"/api/items/{item}/thumbnail")
        assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
        assert not (tmp_path / "replica-b" / "thumbnails").exists()  # fetched by a only

        # A third process syncs while both replicas answer.
        (corpus / "notes").mkdir()
        (corpus / "notes" / "lighthouse.txt").write_text(
            "The lighthouse keeper trims the lamp wick every evening before dusk.")
        (corpus / "astro" / "moon.txt").unlink()
        errors: list[str] = []
        stop = threading.Event()

        def ask(replica: Replica) -> None:
            while not stop.is_set():
                try:
                    assert replica.search("espresso extraction")[0][0].endswith("espresso.html")
                except Exception as exc:  # noqa: BLE001 (collected, asserted below)
                    errors.append(repr(exc))
        askers = [threading.Thread(target=ask, args=(r,)) for r in replicas]
        for t in askers:
            t.start()
        sync = subprocess.run([sys.executable, "-m", "anyfind", "sync", "--index", str(writer),
                               "-q"], capture_output=True, text=True, timeout=600)
        stop.set()
        for t in askers:
            t.join(120)
        assert sync.returncode == 0, sync.stderr
        assert errors == []
        # Both see the sync (a bounded wait for Milvus to apply it for other clients).
        late = Replica(config_only(writer, tmp_path / "replica-c"))  # started after it all
        replicas.append(late)
        deadline = time.monotonic() + 60
        while True:
            found = [r.search("lighthouse keeper lamp", k=1) for r in replicas]
            gone = [r.search("the moon and the tides", k=10) for r in replicas]
            if (all(f and f[0][0].endswith("lighthouse.txt") for f in found) and
                    not any(p.endswith("moon.txt") for g in gone for p, _ in g)):
                break
            assert time.monotonic() < deadline, (found, gone)
            time.sleep(0.5)
        assert found[0] == found[1] == found[2]
        for q in QUERIES[1:]:
            assert replicas[0].search(q) == replicas[1].search(q) == late.search(q), q
        # Nothing of the index was copied: the late replica's folder holds only its
        # config and caches it made itself.
        made = {p.relative_to(late.folder).parts[0] for p in late.folder.rglob("*")}
        assert made <= {"config.json", "secrets.json", ".anyfind-index", "calibration.json",
                        "thumbnails", "onnx", "index.lock", "sources.json"}, made
    finally:
        for r in replicas:
            r.close()


def test_a_cluster_index_keeps_each_vector_in_milvus_alone(
        tmp_path, corpus, postgres_url, milvus_server):  # noqa: F811 (fixtures)
    """PostgreSQL + a real Milvus server: once applied, a vector lives in Milvus only (the
    store keeps its row, no blob), and what needs vectors by id gets them from there: the
    calibration fit, "more like this" on a config-only replica, a copy of a file (made by
    the service from its own rows). Vectors Milvus loses are found by `check`, and
    `check --repair` has their items encoded again by the next sync."""
    from sqlalchemy import func, select

    from anyfind.store.schema import Embedding

    uri = f"{milvus_server}&prefix=h{uuid.uuid4().hex[:12]}_"
    writer = tmp_path / "writer"
    with Index.open(writer, store_url=postgres_url, vector_store=uri, tagger=False,
                    transcriber=None) as idx:
        idx.add([corpus])
        with idx.store.engine.connect() as conn:
            rows, blob_bytes = conn.execute(select(func.count(), func.coalesce(
                func.sum(func.length(Embedding.vector)), 0))).one()
        assert rows == idx.opened.vectors("text").count() > 0 and blob_bytes == 0
        assert idx.opened.calibration is not None and "text" in idx.opened.calibration.spaces
        moon = idx.search("the moon and the tides", k=1)[0]
        alike = [(r.path, round(r.score, 4)) for r in idx.similar(moon.item_id, k=3)]
        assert alike and all(p != moon.path for p, _ in alike)
    shutil.copy(corpus / "astro" / "moon.txt", corpus / "moon-copy.txt")
    with Index.open(config_only(writer, tmp_path / "replica"), create=False) as replica:
        assert [(r.path, round(r.score, 4)) for r in replica.similar(moon.item_id, k=3)] == alike
    with Index.open(writer, create=False) as idx:
        assert idx.sync().copied == 1  # no model: the service copies its own rows
        hits = {r.path: round(r.score, 4) for r in idx.search("the moon and the tides", k=2)}
        assert set(hits) == {moon.path, str(corpus / "moon-copy.txt")}
        assert len(set(hits.values())) == 1  # the same vectors
        vs = idx.opened.vectors("text")
        lost = idx.store.chunks_of_item(moon.item_id)
        vs._delete([c["id"] for c in lost])  # Milvus loses them (emptied by hand)
        report = idx.check()
        assert "vector-store-mismatch" in report.codes()
        repaired = idx.check(repair=True)
        assert any(f.code == "vectors-lost" for f in repaired.findings)
        assert "vector-store-mismatch" not in repaired.codes()
        assert "missing-vectors" in repaired.codes()  # until the next sync encodes them
        assert idx.sync().updated == 1  # read and encoded again
        assert idx.check().ok and not idx.check().codes()
        assert idx.search("the moon and the tides", k=1)[0].path in hits
