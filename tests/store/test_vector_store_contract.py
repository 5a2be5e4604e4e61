"""The vector-store contract (anyfind/store/vector_store.py), run against every backend
registered in `vector_stores`, with the NumPy exact search as the oracle and a real
metadata MetadataStore as the source of truth. A new backend (Milvus next) arrives with these
tests already written: add it to BACKENDS' registry and they run against it."""

from __future__ import annotations

import functools
import uuid

import numpy as np
import pytest
from vector_data import DIM, SPACE, StoreWriter, normalise, sparse_ids, uniform

from anyfind.store.faiss_store import exact_search
from anyfind.store.metadata import MetadataStore
from anyfind.store.vector_store import VectorStore, open_vector_store, vector_stores

# Every registered backend, and Milvus twice: Milvus Lite (the registry's default for
# "milvus") and a real Milvus standalone server process on loopback.
BACKENDS = [*vector_stores.names(), "milvus-server"]


@pytest.fixture(params=BACKENDS)
def make(request, tmp_path):
    """A fresh store of the backend under test, for the index directory `tmp_path`."""
    kind = request.param
    if kind.startswith("milvus"):
        pytest.importorskip("pymilvus")
    if kind == "milvus-server":  # collections of their own on the shared server
        kind = f"{request.getfixturevalue('milvus_server')}&prefix=t{uuid.uuid4().hex[:12]}_"

    def new(**kwargs) -> VectorStore:
        return open_vector_store(tmp_path, SPACE, DIM, kind=kind, **kwargs)
    return new


@pytest.fixture
def meta(tmp_path):
    s = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    yield s
    s.close()


def oracle(vs: VectorStore, data: dict[int, np.ndarray], queries: np.ndarray, k: int,
           allowed=None):
    ids = np.array(sorted(i for i in data if allowed is None or i in set(allowed)), np.int64)
    matrix = np.array([data[i] for i in ids], np.float32).reshape(len(ids), DIM)
    return exact_search(matrix, ids, queries, k)


def assert_same(got, want) -> None:
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)


def test_upsert_then_search_equals_the_oracle(make):
    rng = np.random.default_rng(0)
    ids, vecs = sparse_ids(rng, 500), uniform(rng, 500)
    vs = make()
    vs.upsert(ids, vecs)
    assert vs.count() == 500
    np.testing.assert_array_equal(np.sort(vs.ids()), np.sort(ids))
    queries = uniform(rng, 8)
    assert_same(vs.search(queries, 10), oracle(vs, dict(zip(ids.tolist(), vecs, strict=True)),
                                               queries, 10))


def test_upsert_of_a_known_id_replaces_its_vector(make):
    rng = np.random.default_rng(1)
    ids, vecs = np.arange(1, 51, dtype=np.int64), uniform(rng, 50)
    vs = make()
    vs.upsert(ids, vecs)
    moved = uniform(rng, 1)
    vs.upsert(ids[[3]], moved)
    vs.upsert(ids[[3]], moved)  # a retried batch: harmless
    assert vs.count() == 50
    scores, found = vs.search(moved, 1)
    assert found[0, 0] == ids[3] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_remove_forgets_ids(make):
    rng = np.random.default_rng(2)
    ids, vecs = np.arange(1, 201, dtype=np.int64), uniform(rng, 200)
    vs = make()
    vs.upsert(ids, vecs)
    assert vs.remove(ids[:50]) == 50
    assert vs.remove(np.array([10_000], np.int64)) == 0  # absent: ignored
    data = dict(zip(ids[50:].tolist(), vecs[50:], strict=True))
    assert set(vs.ids().tolist()) == set(data)
    queries = vecs[:5]  # the removed vectors themselves must not come back
    assert_same(vs.search(queries, 7), oracle(vs, data, queries, 7))


def test_search_within_an_allowed_set(make):
    rng = np.random.default_rng(3)
    ids, vecs = sparse_ids(rng, 400), uniform(rng, 400)
    vs = make()
    vs.upsert(ids, vecs)
    allowed = rng.choice(ids, 37, replace=False)
    queries = uniform(rng, 6)
    data = dict(zip(ids.tolist(), vecs, strict=True))
    assert_same(vs.search(queries, 10, allowed=allowed), oracle(vs, data, queries, 10, allowed))
    scores, found = vs.search(queries, 100, allowed=allowed[:3])
    assert found.shape == (6, 3) and set(found.ravel()) <= set(allowed[:3].tolist())


def test_k_beyond_the_count_and_an_empty_store(make):
    vs = make()
    scores, found = vs.search(uniform(np.random.default_rng(4), 2), 10)
    assert found.shape[1] == 0 and vs.count() == 0
    vs.upsert(np.array([5, 9], np.int64), uniform(np.random.default_rng(5), 2))
    assert vs.search(uniform(np.random.default_rng(6), 1), 1000)[1].shape == (1, 2)


def test_catch_up_follows_the_metadata_store_and_persists(make, meta):
    writer = StoreWriter(meta, np.random.default_rng(7))
    writer.write(120)
    vs = make()
    assert vs.catch_up(meta) and not vs.catch_up(meta)
    assert vs.generation == meta.generation(SPACE)
    meta.delete_items(writer.item_ids()[:30])
    writer.write(40)
    assert vs.catch_up(meta)
    want = np.sort(meta.vector_ids(SPACE))
    np.testing.assert_array_equal(np.sort(vs.ids()), want)
    ids, matrix = meta.vectors(SPACE, dim=DIM)
    queries = normalise(matrix[:4] + 0.01)
    data = dict(zip(ids.tolist(), matrix, strict=True))
    assert_same(vs.search(queries, 10), oracle(vs, data, queries, 10))
    vs.persist()
    again = make()  # what a later process opens
    assert again.persisted() and again.generation == meta.generation(SPACE)
    assert_same(again.search(queries, 10), oracle(again, data, queries, 10))


def _shared_store_and_writer(make, meta, seed: int, items: int):
    """A service's store (skipped for a cache of files, which the store keeps whole) over
    a store with an outbox and `items` items written."""
    vs = make()
    if not vs.shared:
        pytest.skip("a cache of files: caught up by comparing with the store")
    meta.enable_outbox()
    writer = StoreWriter(meta, np.random.default_rng(seed))
    writer.write(items)
    return vs, writer


def test_a_shared_store_follows_the_outbox_without_listing_ids(make, meta):
    """A service (Milvus) is compared whole once (no mark yet); after that every catch-up
    applies the outbox rows after its mark: writes, deletes, a replaced item, a move; no
    id set is listed on either side. Applied rows are pruned, applied vectors leave the
    store (the service is their one holder); a later process resumes from the mark the
    collection keeps."""
    vs, writer = _shared_store_and_writer(make, meta, seed=11, items=50)
    _, written = meta.vectors(SPACE, dim=DIM)
    head = meta.outbox_head(SPACE)
    assert vs.catch_up(meta) and vs.mark == head > 0 and meta.outbox_pending(SPACE, 0) == 0
    listing = functools.partial(meta.vector_ids, SPACE)  # the test's view: catch-ups may not list
    assert len(meta.vectors(SPACE, dim=DIM)[0]) == 0  # the store let go of every vector
    assert len(meta.held_vectors(SPACE, listing())) == len(written) == vs.count()

    def no_listing(*_a, **_k):
        raise AssertionError("a full id listing")

    meta.vector_ids = no_listing  # the store side
    vs.ids = no_listing  # the service side
    gone = writer.item_ids()[:10]
    meta.delete_items(gone)
    writer.write(20)
    kept = writer.item_ids()[10]
    meta.move_item(kept, "file:///data/moved.txt", "/data/moved.txt", 10, 2.0, "m")
    head = meta.outbox_head(SPACE)
    assert meta.outbox_pending(SPACE, vs.mark) > 20  # 10 items' deletes, 20 items, the move
    assert vs.catch_up(meta) and not vs.catch_up(meta)
    assert vs.mark == head and meta.outbox_pending(SPACE, 0) == 0  # applied rows are pruned
    ids = listing()
    assert vs.count() == len(ids) and len(meta.vectors(SPACE, ids, dim=DIM)[0]) == 0
    assert sorted(vs.present(ids.tolist())) == sorted(ids.tolist())
    data = vs.fetch(ids)
    assert sorted(data) == sorted(ids.tolist())
    matrix = np.array([data[i] for i in sorted(data)], np.float32)
    queries = normalise(matrix[:4] + 0.01)
    assert_same(vs.search(queries, 10), oracle(vs, data, queries, 10))
    moved = [c["id"] for c in meta.chunks_of_item(kept)]
    assert vs.search(data[moved[0]][None, :], 1)[1][0, 0] == moved[0]  # rewritten whole
    writer.write(5)
    again = make()  # a later writer process: resumes from the saved mark
    assert again.mark == vs.mark
    again.ids = no_listing
    assert again.catch_up(meta) and again.count() == len(listing())


def test_a_copy_of_held_vectors_is_made_by_the_service(make, meta):
    """The same content at a new path is copied without a model (MetadataStore.copy_item); once
    the service is the one holder of the source's vectors the copy names its origin, and
    the service copies its own rows, even when the source is deleted in the same batch
    and when the batch is applied twice (a writer killed before saving its mark)."""
    from anyfind.store.metadata import ItemRecord

    vs, writer = _shared_store_and_writer(make, meta, seed=12, items=8)
    vs.catch_up(meta)
    source = writer.item_ids()[0]
    before = vs.fetch([c["id"] for c in meta.chunks_of_item(source)])
    mark = vs.mark
    record = ItemRecord(source_id=writer.source, uri="file:///data/twin.txt",
                        path="/data/twin.txt", modality="text", media_type="text/plain",
                        size=10, mtime=3.0, fingerprint="twin", content_hash="h1")
    twin, _ = meta.copy_item(source, record)
    meta.delete_items([source])
    copies = [c["id"] for c in meta.chunks_of_item(twin)]
    assert len(copies) == len(before) and meta.held_vectors(SPACE, copies) == copies
    prune = meta.prune_outbox
    meta.prune_outbox = lambda *_a: None  # the rows stay, as after a kill before the mark
    assert vs.catch_up(meta)
    got = vs.fetch(copies)
    assert not vs.fetch(list(before))  # the source went
    for new, old in zip(copies, sorted(before), strict=True):
        np.testing.assert_allclose(got[new], before[old], atol=1e-6)
    replay = make()  # the same rows applied again: the copies are found under their own ids
    replay.mark, replay.generation = mark, -1
    meta.prune_outbox = prune
    assert replay.catch_up(meta)
    assert sorted(replay.fetch(copies)) == sorted(copies) and replay.lost == 0
    assert meta.outbox_pending(SPACE, 0) == 0


def test_a_snapshot_is_independent(make):
    rng = np.random.default_rng(8)
    vs = make()
    vs.upsert(np.arange(1, 11, dtype=np.int64), uniform(rng, 10))
    copy = vs.snapshot()
    copy.upsert(np.array([99], np.int64), uniform(rng, 1))
    copy.remove(np.array([1], np.int64))
    if copy is not vs:  # a backend whose searches never see a change returns itself
        assert set(vs.ids().tolist()) == set(range(1, 11))
    assert 99 in set(copy.ids().tolist()) and 1 not in set(copy.ids().tolist())


# -- a whole index on another backend ---------------------------------------------------------
QUERIES = ["how often to water tomatoes", "the moon and the tides", "espresso pressure",
           "holiday days for employees", "semiconductor shortage risk", "fibonacci recursion"]


@pytest.mark.parametrize("engine", ["lite", "server"])
def test_an_index_on_milvus_answers_as_the_faiss_one(tmp_path, corpus, engine, request):
    """The same corpus indexed with FAISS and with Milvus (Lite, and a real server; exact
    search on both): the same top-10 for a fixed query set, scores to float tolerance."""
    pytest.importorskip("pymilvus")
    from anyfind import Index

    uri = (f"milvus-lite://{tmp_path / 'milvus' / 'vectors.db'}" if engine == "lite" else
           f"{request.getfixturevalue('milvus_server')}&prefix=i{uuid.uuid4().hex[:12]}_")
    tops = {}
    for name, kwargs in (("faiss", {}), ("milvus", {"vector_store": uri})):
        with Index.open(tmp_path / name, tagger=False, transcriber=None, **kwargs) as idx:
            idx.add([corpus])
            shown = uri.replace("root:Milvus", "***")  # status masks the credentials
            assert idx.status()["vector_store"] == (shown if kwargs else "faiss")
            tops[name] = [[(r.path, round(r.score, 4)) for r in idx.search(q, k=10, mode=mode)]
                          for q in QUERIES for mode in ("dense", "hybrid")]
    assert tops["milvus"] == tops["faiss"]
    with Index.open(tmp_path / "milvus", create=False) as idx:  # another process, later
        assert idx.opened.vectors("text").count() == idx.store.counts()["vectors"]["text"]
        (corpus / "astro" / "moon.txt").unlink()
        idx.sync()
        assert not any(r.path.endswith("moon.txt") for r in idx.search("the moon", k=10))
        assert idx.check().ok


def test_an_unreachable_milvus_is_one_line_naming_it_without_its_token(tmp_path, corpus):
    """Nothing listens on port 1: the sync records the source as failed with one sentence,
    a search raises it; the URI is named and its token masked."""
    pytest.importorskip("pymilvus")
    from anyfind import Index
    from anyfind.errors import ConfigError

    uri = "milvus://127.0.0.1:1?token=root:s3cret"
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None, vector_store=uri) as idx:
        report = idx.add([corpus])
        (error,) = [e["error"] for e in report.errors]
        assert error.startswith("items written, their vectors pending (the next sync catches "
                                "them up): cannot reach Milvus at milvus://127.0.0.1:1?token=***: ")
        assert "s3cret" not in error and "\n" not in error and "<" not in error
        # Nothing lost: the items and their vectors are in the metadata store, reported.
        assert report.added == 6 and report.failed_sources == [report.errors[0]["source"]]
        assert idx.store.counts()["vectors"]["text"] == idx.store.counts()["chunks"] > 0
        again = idx.sync()  # still unreachable: nothing to re-read, the vectors still pending
        assert again.unchanged == 6 and again.added == 0 and again.failed_sources
        with pytest.raises(ConfigError, match=r"cannot reach Milvus at .*token=\*\*\*") as info:
            idx.search("the moon", k=3)
        assert "s3cret" not in str(info.value)
        # Kept like the other credentials: masked in config.json, the literal in secrets.json.
        assert "s3cret" not in (idx.path / "config.json").read_text()
        assert "s3cret" in (idx.path / "secrets.json").read_text()
        assert idx.status()["vector_store"] == "milvus://127.0.0.1:1?token=***"


def test_a_token_from_the_environment_names_the_service_once(tmp_path, corpus, monkeypatch):
    """The URI kept with `${MILVUS_TOKEN}` was printed twice in one error (as its reference,
    then masked), and the CLI printed the whole line twice (a log line, then the report)."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("pymilvus")
    monkeypatch.setenv("MILVUS_TOKEN", "root:s3cret")
    done = subprocess.run(
        [sys.executable, "-m", "anyfind", "index", str(corpus), "--index", str(tmp_path / "idx"),
         "-q", "--no-tags", "--no-audio", "--vector-store",
         "milvus://127.0.0.1:1?token=${MILVUS_TOKEN}"],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    out = done.stdout + done.stderr
    assert "s3cret" not in out and "cannot reach Milvus" in out
    lines = [ln for ln in out.splitlines() if "cannot reach Milvus" in ln]
    assert len(lines) == 1, lines  # said once, in the report
    assert lines[0].count("milvus://127.0.0.1:1") == 1, lines[0]


def test_wrong_milvus_credentials_are_one_line_and_lose_nothing(tmp_path, corpus,
                                                                milvus_server):
    """The test server requires credentials: a wrong password is said as such (the URI
    named, the token masked) at the start of a sync, before any item is read or encoded,
    and at search; the sync after the credentials are mended indexes everything."""
    pytest.importorskip("pymilvus")
    import json

    from anyfind import Index
    from anyfind.errors import ConfigError

    good = f"{milvus_server}&prefix=w{uuid.uuid4().hex[:12]}_"
    wrong = good.replace("root:Milvus", "root:not-the-password")
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None, vector_store=wrong) as idx:
        with pytest.raises(ConfigError, match="refused the connection: check the credentials"
                           ) as refused:
            idx.add([corpus])
        error = str(refused.value)
        assert "token=***" in error and "not-the-password" not in error and "\n" not in error
        assert idx.sources() == []  # refused before anything was written
        with pytest.raises(ConfigError, match="refused the connection") as info:
            idx.search("the moon", k=3)
        assert "not-the-password" not in str(info.value)
    secrets = json.loads((tmp_path / "idx" / "secrets.json").read_text())
    assert secrets["vector_store"] == {"query.token": "root:not-the-password"}
    secrets["vector_store"]["query.token"] = "root:Milvus"  # the credentials mended
    (tmp_path / "idx" / "secrets.json").write_text(json.dumps(secrets))
    with Index.open(tmp_path / "idx", create=False) as idx:
        again = idx.add([corpus])
        assert again.failed_sources == [] and again.added == 6
        vectors = idx.opened.vectors("text")
        assert sorted(vectors.ids().tolist()) == sorted(idx.store.vector_ids("text").tolist())
        assert idx.search("the moon and the tides", k=1)[0].path.endswith("moon.txt")


def test_vectors_pending_while_milvus_is_down_are_caught_up_when_it_answers(
        tmp_path, corpus, milvus_server):
    """The service is down for the first sync (nothing listens at its address); when it
    answers, the next sync fills it from the metadata store: nothing re-read, nothing lost,
    no duplicate."""
    pytest.importorskip("pymilvus")
    import json

    from anyfind import Index

    down = "milvus://127.0.0.1:1"
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None, vector_store=down) as idx:
        first = idx.add([corpus])
        assert first.added == 6 and first.failed_sources
    # The service comes back (here: at the address of the running test server).
    config = json.loads((tmp_path / "idx" / "config.json").read_text())
    config["vector_store"] = f"{milvus_server}&prefix=p{uuid.uuid4().hex[:12]}_"
    (tmp_path / "idx" / "config.json").write_text(json.dumps(config))
    with Index.open(tmp_path / "idx", create=False) as idx:
        again = idx.sync()
        assert again.failed_sources == [] and again.unchanged == 6 and again.added == 0
        vectors = idx.opened.vectors("text")
        assert vectors.count() == idx.store.counts()["vectors"]["text"]
        assert sorted(vectors.ids().tolist()) == sorted(idx.store.vector_ids("text").tolist())
        assert idx.search("the moon and the tides", k=1)[0].path.endswith("moon.txt")
        assert idx.check().ok


def test_search_consistency_is_session_unless_the_uri_says(tmp_path):
    from anyfind.errors import ConfigError
    from anyfind.store.milvus_store import MilvusVectorStore

    def level(uri: str) -> str:
        return MilvusVectorStore(tmp_path, "text", 4, uri=uri).consistency

    assert level("milvus://127.0.0.1:1") == "Session"
    assert level("milvus://127.0.0.1:1?consistency=strong&prefix=a_") == "Strong"
    with pytest.raises(ConfigError, match="consistency is session, strong"):
        level("milvus://127.0.0.1:1?consistency=sometimes")


# The server variant (and its IVF_PQ) runs in `make test-long`: ~40 s of CI time, the
# same rule as Milvus Lite's.
@pytest.mark.parametrize("engine", ["lite", pytest.param("server", marks=pytest.mark.slow)])
def test_the_milvus_index_type_follows_the_collection_size(tmp_path, engine, meta, request):
    """FLAT while small, HNSW once past `exact_below` (rebuilt by the catch-up of the sync
    that crosses it, and read back by a later process), a fixed type when the URI names
    one; each answers as the oracle does (recall@10 >= 0.95)."""
    pytest.importorskip("pymilvus")
    base = (f"milvus-lite://{tmp_path}/v.db?" if engine == "lite" else
            f"{request.getfixturevalue('milvus_server')}&prefix=x{uuid.uuid4().hex[:12]}_&")
    writer = StoreWriter(meta, np.random.default_rng(5))
    writer.write(200)
    vs = open_vector_store(tmp_path, SPACE, DIM, kind=f"{base}exact_below=1000")
    vs.catch_up(meta)
    assert vs.index_in_use()[0] == "FLAT"
    writer.write(1200)  # ~2,800 vectors: past the threshold
    vs.catch_up(meta)
    assert vs.index_in_use() == ("HNSW", {"M": 16, "efConstruction": 200})
    again = open_vector_store(tmp_path, SPACE, DIM, kind=f"{base}exact_below=1000")
    assert again.index_in_use()[0] == "HNSW"  # read back from the collection

    ids, matrix = meta.vectors(SPACE, dim=DIM)
    data = dict(zip(ids.tolist(), matrix, strict=True))
    queries = normalise(matrix[::140] + 0.02)
    want = oracle(vs, data, queries, 10)[1]

    def recall(store) -> float:
        got = store.search(queries, 10)[1]
        return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want,
                                                                         strict=True)]))
    assert recall(vs) >= 0.95
    ivf = open_vector_store(tmp_path, "ivf", DIM, kind=f"{base}index=ivf_flat")
    ivf.upsert(ids, matrix)
    ivf.fit_index()
    assert ivf.index_in_use() == ("IVF_FLAT", {"nlist": 4 * int(np.sqrt(len(ids)))})
    assert recall(ivf) >= 0.95
    if engine == "lite":
        return  # Milvus Lite 3.2 builds no IVF_PQ ("reserved for a future phase")
    # IVF_PQ on vectors without clusters (where PQ's coarse ranking shows): re-ranked on
    # the stored vectors it finds more of the exact neighbours than its codes alone.
    rng = np.random.default_rng(3)
    flat = normalise(rng.standard_normal((4000, DIM)).astype(np.float32))
    flat_ids = np.arange(1, 4001, dtype=np.int64)
    pq = open_vector_store(tmp_path, "pq", DIM, kind=f"{base}index=ivf_pq")
    pq.upsert(flat_ids, flat)
    pq.fit_index()
    assert pq.index_in_use()[0] == "IVF_PQ"
    probes = normalise(flat[::400] + 0.05 * rng.standard_normal((10, DIM)).astype(np.float32))
    exact = exact_search(flat, flat_ids, probes, 10)[1]

    def pq_recall(store) -> float:
        got = store.search(probes, 10)[1]
        return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, exact,
                                                                         strict=True)]))
    coarse = open_vector_store(tmp_path, "pq", DIM, kind=f"{base}index=ivf_pq&rerank=1")
    wide = open_vector_store(tmp_path, "pq", DIM, kind=f"{base}index=ivf_pq&rerank=16")
    print("PQ recall@10 coarse / x4 / x16:", pq_recall(coarse), pq_recall(pq), pq_recall(wide))
    assert pq_recall(coarse) < pq_recall(pq) < pq_recall(wide)


@pytest.mark.parametrize("engine", ["lite", "server"])
def test_check_of_a_large_vector_service_compares_counts_and_a_sample(tmp_path, engine, meta,
                                                                    request):
    """Above `full_below` vectors `check` never lists the service's ids: a count each side,
    then ids sampled from the store looked up in the service; either way a difference is a
    mismatch that a catch-up repairs."""
    pytest.importorskip("pymilvus")
    from anyfind.checks.files import check_vector_service
    from anyfind.checks.report import CheckReport
    from anyfind.checks.snapshot import SnapshotVectors, snapshot

    uri = (f"milvus-lite://{tmp_path}/v.db" if engine == "lite" else
           f"{request.getfixturevalue('milvus_server')}&prefix=c{uuid.uuid4().hex[:12]}_")
    writer = StoreWriter(meta, np.random.default_rng(9))
    writer.write(150)
    vs = open_vector_store(tmp_path, SPACE, DIM, kind=uri)
    vs.catch_up(meta)

    def findings(**kw) -> tuple[list[str], dict]:
        report = CheckReport(str(tmp_path))
        with snapshot(meta.engine.url) as conn:
            stats = check_vector_service(vs, SnapshotVectors(conn), report, **kw)
        return [f.message for f in report.findings], stats

    sampled = {"full_below": 0, "sample": 1000}
    messages, stats = findings(**sampled)
    assert messages == [] and stats["sampled"] == stats["store"] == stats["file"] > 150
    messages, stats = findings(full_below=0, sample=100)  # runs of ids from random starts
    assert messages == [] and 50 <= stats["sampled"] <= 100
    ids = np.sort(meta.vector_ids(SPACE))
    vs.remove(ids[:3])
    assert "holds" in findings(**sampled)[0][0] and "holds" in findings()[0][0]
    vs.generation = -1  # what --repair does: a catch-up that runs whatever the generation
    vs.catch_up(meta)
    assert findings(**sampled)[0] == []
    vs.remove(ids[5:6])  # the same count, one id swapped for one the store never had
    vs.upsert(np.array([10**9], np.int64), normalise(np.ones((1, DIM), np.float32)))
    assert "lacks 1 of" in findings(**sampled)[0][0]
    assert "other ids" in findings()[0][0]


def test_milvus_vectors_of_another_model_are_refused_and_reindex_replaces_them(tmp_path,
                                                                               corpus):
    """The collection keeps the model that made its vectors: an index whose space encodes
    with another one is told to reindex (or to take its own prefix); `anyfind reindex`
    drops the collection and fills a new one."""
    pytest.importorskip("pymilvus")
    from anyfind import Index
    from anyfind.errors import ConfigError

    uri = f"milvus-lite://{tmp_path / 'milvus' / 'vectors.db'}"
    with Index.open(tmp_path / "a", tagger=False, transcriber=None, vector_store=uri) as idx:
        idx.add([corpus])
        stored = idx.store.counts()["vectors"]["text"]
        vs = idx.opened.vector_store("text")
        assert vs.client.describe_collection(vs.collection)["properties"]["anyfind.model"] == (
            vs.model) and vs.model.startswith("sentence-transformers:")
        report = idx.reindex()
        assert report.chunks == stored
        assert idx.opened.vectors("text").count() == stored and idx.check().ok
    with pytest.raises(ConfigError, match="another-model.*anyfind reindex"):  # when opened
        open_vector_store(tmp_path / "b", "text", vs.dim, kind=uri,
                          model="sentence-transformers:another-model#0123456789ab")


# The two outer windows run in `make test-long` (~20 s each of CI time): the middle one,
# Milvus written and the store still holding the copies, is the one both sides can lose.
@pytest.mark.parametrize("point", [pytest.param("batch.committed", marks=pytest.mark.slow),
                                   "milvus.upserted",
                                   pytest.param("milvus.applied", marks=pytest.mark.slow)])
def test_a_writer_killed_between_the_store_and_milvus_loses_and_duplicates_nothing(
        tmp_path, corpus, point):
    """SIGKILL after the metadata commit but before Milvus is written (batch.committed),
    after Milvus is written but before the store lets go of its copies (milvus.upserted),
    and before the mark is saved (milvus.applied): the next sync applies the outbox from
    the saved mark, and Milvus holds exactly the store's chunks (nothing missing, no
    duplicate, nothing deleted left), the store none of their vectors."""
    pytest.importorskip("pymilvus")
    import os
    import shutil
    import subprocess
    import sys

    from anyfind import Index

    uri = f"milvus-lite://{tmp_path / 'vectors.db'}"
    path = tmp_path / "idx"
    anyfind = [sys.executable, "-m", "anyfind"]
    # In processes of their own: Milvus Lite's file is held by the process that opened it.
    first = subprocess.run(anyfind + ["index", str(corpus), "--index", str(path), "-q",
                                      "--vector-store", uri],
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    # Changes for the killed sync: new files, a deleted one, a moved one.
    for i in range(8):
        (corpus / f"new{i}.txt").write_text(f"Fresh note number {i} about lighthouse keepers.")
    (corpus / "astro" / "moon.txt").unlink()
    victim = next(p for p in sorted(corpus.rglob("*.md")))
    shutil.move(victim, corpus / ("moved-" + victim.name))
    env = {**os.environ, "ANYFIND_CRASH_AT": point}
    run = subprocess.run(anyfind + ["sync", "--index", str(path), "-q"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr  # killed at the point
    with Index.open(path, create=False) as idx:
        report = idx.sync()
        assert report.failed_sources == []
        vs = idx.opened.vectors("text")
        want = sorted(idx.store.vector_ids("text").tolist())
        assert vs.count() == len(want) and sorted(vs.ids().tolist()) == want
        assert idx.store.outbox_pending("text", 0) == 0
        assert len(idx.store.vectors("text")[0]) == 0  # every vector lives in Milvus alone
        assert idx.search("lighthouse keepers", k=1)[0].path.startswith(str(corpus / "new"))
        assert idx.check().ok


# Both run in `make test-long` (slow): each restarts a Milvus server (~65 s of CI time).
# The default suite keeps a writer killed between the store and Milvus and a Milvus down
# during a sync (the pending vectors caught up when it answers).
@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_milvus_restarted_during_a_sync_resumes_without_loss_or_duplicate(
        tmp_path, corpus, milvus_process, how):
    """The server goes away while a sync writes (stopped, or SIGKILLed; its data kept)
    and comes back on the same data: the sync that ran without it committed its items and recorded their
    vectors in the outbox; the next one applies them from the collection's mark: Milvus
    then holds exactly the store's chunks, the deleted file's gone, nothing twice."""
    pytest.importorskip("pymilvus")
    from anyfind import Index

    path = tmp_path / "idx"
    uri = f"{milvus_process.uri}&prefix=s{uuid.uuid4().hex[:12]}_"
    with Index.open(path, tagger=False, transcriber=None, vector_store=uri) as idx:
        assert idx.add([corpus]).added == 6
        mark = idx.opened.vectors("text").mark
    for i in range(5):
        (corpus / f"ferry{i}.txt").write_text(f"Ferry timetable {i}: the harbour crossing at dawn.")
    (corpus / "astro" / "moon.txt").unlink()
    milvus_process.command(how)
    try:
        with Index.open(path, create=False) as idx:
            report = idx.sync()
            assert (report.added, report.removed) == (5, 1) and report.failed_sources
            (error,) = [e["error"] for e in report.errors]  # one line naming the service
            assert f"{milvus_process.uri.split('?')[0]}?token=***" in error, error
            assert "root:Milvus" not in error and "\n" not in error
            assert idx.store.outbox_pending("text", mark) >= 6  # 5 files' chunks + a delete
    finally:
        milvus_process.command("start")
    with Index.open(path, create=False) as idx:
        again = idx.sync()
        assert again.failed_sources == [] and again.added == again.removed == 0, again.errors
        vs = idx.opened.vectors("text")
        want = sorted(idx.store.vector_ids("text").tolist())
        assert vs.count() == len(want) and sorted(vs.ids().tolist()) == want
        assert idx.store.outbox_pending("text", 0) == 0
        assert idx.search("harbour crossing ferry timetable", k=1)[0].path.startswith(
            str(corpus / "ferry"))
        assert not any(r.path.endswith("moon.txt") for r in idx.search("the moon", k=10))
        assert idx.check().ok


def test_a_v5_store_gains_the_outbox_origin_and_keeps_its_rows(tmp_path):
    """Migration v6 on a store made at v5 (its outbox had no origin column): the column is
    added, the rows waiting in the outbox stay and read with no origin."""
    from sqlalchemy import text

    from anyfind.store.migrations import LATEST

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    store = MetadataStore(url)
    store.enable_outbox()
    StoreWriter(store, np.random.default_rng(3)).write(4)
    waiting = store.outbox_since(SPACE, 0, 100)
    with store.engine.begin() as conn:  # as an anyfind of schema v5 left it
        conn.execute(text("ALTER TABLE vector_outbox DROP COLUMN origin"))
        conn.execute(text("UPDATE meta SET value = '5' WHERE key = 'schema_version'"))
    store.close()
    again = MetadataStore(url)
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")
                            ).scalar() == str(LATEST)
    assert LATEST >= 6  # v6 (the outbox's origin) ran, and every step after it
    assert again.outbox_since(SPACE, 0, 100) == waiting and all(r[3] is None for r in waiting)
    again.close()


def test_a_milvus_lite_file_held_by_another_process_is_one_sentence(tmp_path):
    """Milvus Lite serves one process: a second one (a search while `anyfind serve` runs)
    is told who holds the file, in one line, not a DataDirLockedError traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from anyfind import Index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe Moon raises the tides twice a day.")
    root = Path(__file__).resolve().parents[2]
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None,
                    vector_store=f"milvus-lite://{tmp_path / 'v.db'}") as idx:
        idx.add([docs])
        assert idx.search("tides", k=1)  # this process holds the Lite file now
        done = subprocess.run([sys.executable, "-m", "anyfind", "search", "tides", "--index",
                               str(tmp_path / "idx")], capture_output=True, text=True,
                              cwd=root, timeout=300)
    assert done.returncode != 0
    assert f"in use by process {os.getpid()}" in done.stderr
    assert "Traceback" not in done.stderr and "DataDirLockedError" not in done.stderr
