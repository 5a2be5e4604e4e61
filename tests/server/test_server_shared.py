"""An index opened for concurrent use (the server's): copy-on-write vector snapshots and
model calls safe from many threads."""

from __future__ import annotations

import threading

import pytest

from anyfind import Index
from anyfind.encoders.serialised import Serialised


@pytest.fixture
def small_index(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, topic in enumerate(("harbour", "glacier", "orchard")):
        (folder / f"{topic}.md").write_text(f"A note about the {topic}, number {i}.")
    path = tmp_path / "index"
    with Index.open(path, tagger=False, transcriber=None) as idx:
        idx.add([folder])
    return path, folder


def test_a_running_search_keeps_its_snapshot(small_index):
    path, folder = small_index
    with Index.open(path, create=False, concurrent=True) as shared:
        before = shared.opened.vectors("text")
        assert shared.opened.vectors("text") is before  # nothing changed: same object
        count = len(before)
        (folder / "comet.md").write_text("A note about the comet.")
        with Index.open(path, create=False) as writer:  # any other writer, any process
            writer.add([folder])
        after = shared.opened.vectors("text")
        assert after is not before and len(after) == count + 1
        assert len(before) == count  # never changed under whoever still holds it
        hits = shared.search("comet", k=1)
        assert hits[0].path.endswith("comet.md")


def test_models_are_wrapped_and_searches_run_from_many_threads(small_index):
    path, _ = small_index
    with Index.open(path, create=False, concurrent=True) as shared:
        assert isinstance(shared.spaces["text"].encoder, Serialised)
        assert shared.spaces["text"].encoder.dim == 384  # plain attributes pass through
        shared.warm()
        errors: list[BaseException] = []
        tops: list[str] = []

        def worker(n: int) -> None:
            try:
                for _ in range(10):
                    topic = ("harbour", "glacier", "orchard")[n % 3]
                    hit = shared.search(f"the {topic}", k=1)[0]
                    tops.append(hit.path.rsplit("/", 1)[-1] == f"{topic}.md")
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors[:3]
        assert len(tops) == 80 and all(tops)


@pytest.mark.slow  # one ONNX export of MiniLM (~20 s here)
def test_a_replica_makes_its_own_onnx_export_at_start(tmp_path, monkeypatch):
    """docs/SCALE.md: a replica started from a copied config makes the export itself. It
    did not: each encoded its queries with torch. Now the start-up warm-up writes it once
    and the queries after it run on onnxruntime."""
    import shutil

    from fastapi.testclient import TestClient

    from anyfind import Index
    from anyfind.server import create_app

    monkeypatch.setenv("ANYFIND_ONNX_EXPORT", "auto")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe Moon raises the tides twice a day.")
    with Index.open(tmp_path / "writer", tagger=False, transcriber=None) as idx:
        idx.add([docs])  # the library writes no export
    replica = tmp_path / "replica"
    shutil.copytree(tmp_path / "writer", replica)
    shutil.rmtree(replica / "onnx", ignore_errors=True)
    app = create_app(replica)
    with TestClient(app) as client:
        assert "onnx export" in app.state.warmed
        assert (replica / "onnx" / "text" / "export.json").exists()
        hits = client.get("/api/search", params={"q": "lunar tides"}).json()
        assert hits["results"] and hits["results"][0]["path"].endswith("tides.md")
        assert not app.state.index.opened.spaces["text"].queries_use_torch
