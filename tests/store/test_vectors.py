"""FaissVectorStore (FAISS) against the NumPy oracle, and its crash recovery against a real MetadataStore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vector_data import DIM, SPACE, StoreWriter, clustered, normalise, sparse_ids, uniform  # noqa: F401

from anyfind.store import faiss_store
from anyfind.store.faiss_store import FaissVectorStore, choose_factory, exact_search
from anyfind.store.metadata import MetadataStore


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


def new_index(tmp_path: Path, factory: str = "auto", dim: int = DIM) -> FaissVectorStore:
    return FaissVectorStore(tmp_path / "vectors", SPACE, dim, factory)


# -- oracle ------------------------------------------------------------------------------


def test_choose_factory_by_size():
    assert choose_factory(0, DIM) == "Flat"
    assert choose_factory(faiss_store.FLAT_MAX, DIM) == "Flat"
    big = choose_factory(1_000_000, DIM)
    assert big.startswith("IVF") and big.endswith(",Flat")
    assert int(big[3:].split(",")[0]) == 4000  # 4 * sqrt(n)
    assert choose_factory(faiss_store.FLAT_MAX + 1, DIM) == "IVF894,Flat"


def test_flat_equals_oracle_exactly(tmp_path):
    rng = np.random.default_rng(1)
    data, ids = uniform(rng, 3000), sparse_ids(rng, 3000)
    vi = new_index(tmp_path)
    vi.rebuild(ids, data, generation=1)
    assert vi.built_factory == "Flat" and len(vi) == 3000
    queries = uniform(rng, 40)
    scores, found = vi.search(queries, 10)
    want_scores, want_ids = exact_search(data, ids, queries, 10)
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # a stored vector is its own best match, with cosine 1
    s, i = vi.search(data[[7]], 1)
    assert i[0, 0] == ids[7] and s[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_ivf_recall_against_oracle(tmp_path):
    rng = np.random.default_rng(2)
    data, ids = clustered(rng, 5000), sparse_ids(rng, 5000)
    vi = new_index(tmp_path, factory="IVF64,Flat")
    vi.rebuild(ids, data, generation=1)
    assert vi.built_factory == "IVF64,Flat" and len(vi) == 5000
    import faiss

    assert faiss.extract_index_ivf(vi.index).nprobe == 8  # the default: max(8, nlist // 32)
    # queries near the data (a paraphrase lands near its passage), plus a few far off
    near = normalise(data[rng.choice(5000, 150, replace=False)]
                     + rng.standard_normal((150, DIM)) * (0.3 / np.sqrt(DIM)))
    queries = np.vstack([near, uniform(rng, 50)])
    scores, found = vi.search(queries, 10)
    _, want = exact_search(data, ids, queries, 10)
    assert recall(found, want) >= 0.9
    # IVF,Flat keeps the vectors exactly: every returned score is the true cosine
    by_id = dict(zip(ids.tolist(), data, strict=True))
    for q, row_ids, row_scores in zip(queries[:20], found[:20], scores[:20], strict=True):
        exact = np.array([by_id[int(i)] @ q for i in row_ids])
        np.testing.assert_allclose(row_scores, exact, atol=1e-5)


def test_exact_search_empty():
    s, i = exact_search(np.zeros((0, DIM), np.float32), np.zeros(0, np.int64),
                        np.ones((2, DIM), np.float32), 5)
    assert s.shape == (2, 0) and i.shape == (2, 0)


def test_empty_index_and_k_zero(tmp_path):
    vi = new_index(tmp_path)
    s, i = vi.search(np.ones((1, DIM), np.float32), 5)
    assert s.shape == (1, 0) and i.shape == (1, 0)
    assert len(vi) == 0 and vi.ids().size == 0 and vi.remove(np.array([1])) == 0
    vi.add(np.array([5]), normalise(np.ones((1, DIM))))
    assert vi.search(np.ones((1, DIM), np.float32), 0)[1].shape == (1, 0)
    assert vi.search(np.ones((1, DIM), np.float32), 50)[1].tolist() == [[5]]  # k capped


# -- add / remove ------------------------------------------------------------------------


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat"])
def test_add_and_remove(tmp_path, factory):
    rng = np.random.default_rng(3)
    data, ids = clustered(rng, 2000, clusters=20), sparse_ids(rng, 2000)
    vi = new_index(tmp_path, factory)
    vi.add(ids[:1500], data[:1500])  # the first add trains an IVF on its batch
    vi.add(ids[1500:], data[1500:])
    assert len(vi) == 2000
    assert sorted(vi.ids().tolist()) == sorted(ids.tolist())

    gone = ids[::4]
    assert vi.remove(gone) == len(gone)
    assert vi.remove(gone) == 0  # already removed
    assert vi.remove(np.array([-99, 10**12])) == 0  # never there
    keep = np.setdiff1d(ids, gone)
    assert len(vi) == len(keep)
    assert sorted(vi.ids().tolist()) == sorted(keep.tolist())
    # a removed vector never comes back, even when it is the query itself
    _, found = vi.search(data[::4][:50], 10)
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    if factory == "Flat":
        mask = np.isin(ids, keep)
        _, want = exact_search(data[mask], ids[mask], data[:30], 10)
        np.testing.assert_array_equal(vi.search(data[:30], 10)[1], want)


# -- allowed ids -------------------------------------------------------------------------


def test_allowed_flat_returns_all_top_allowed(tmp_path):
    rng = np.random.default_rng(4)
    data, ids = uniform(rng, 2000), sparse_ids(rng, 2000)
    vi = new_index(tmp_path)
    vi.rebuild(ids, data, generation=1)
    allowed = rng.choice(ids, 120, replace=False)
    mask = np.isin(ids, allowed)
    for q in uniform(rng, 10):
        scores, found = vi.search(q[None, :], 10, allowed=allowed)
        want_scores, want = exact_search(data[mask], ids[mask], q[None, :], 10)
        np.testing.assert_array_equal(found, want)
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # fewer allowed ids than k: exactly those, no -1 padding for a single query
    few = ids[[3, 99, 1500]]
    _, found = vi.search(data[[99]], 10, allowed=few)
    assert found.shape == (1, 3) and found[0, 0] == ids[99]
    assert sorted(found[0].tolist()) == sorted(few.tolist())
    # several queries: padded with -1 where fewer than k are allowed; never another id
    _, found = vi.search(data[:5], 10, allowed=few)
    assert set(found.ravel().tolist()) <= set(few.tolist()) | {-1}
    # an allowed id that is not in the index is simply absent
    _, found = vi.search(data[[0]], 5, allowed=np.array([10**9]))
    assert found.shape == (1, 0)


def test_allowed_ivf_only_allowed(tmp_path):
    rng = np.random.default_rng(5)
    data, ids = clustered(rng, 3000, clusters=30), sparse_ids(rng, 3000)
    vi = new_index(tmp_path, "IVF32,Flat")
    vi.rebuild(ids, data, generation=1)
    allowed = rng.choice(ids, 300, replace=False)
    queries = data[np.isin(ids, allowed)][:20]  # each query's own vector is allowed
    for q, own in zip(queries, ids[np.isin(ids, allowed)][:20], strict=True):
        _, found = vi.search(q[None, :], 10, allowed=allowed)
        assert found.size and set(found[0].tolist()) <= set(allowed.tolist())
        assert found[0, 0] == own


# -- persistence ---------------------------------------------------------------------------


@pytest.mark.parametrize("factory", ["auto", "IVF16,Flat"])
def test_save_load_round_trip(tmp_path, factory):
    rng = np.random.default_rng(6)
    data, ids = clustered(rng, 1000, clusters=16), sparse_ids(rng, 1000)
    vi = new_index(tmp_path, factory)
    vi.rebuild(ids, data, generation=7)
    vi.save()
    assert vi.path.is_file() and vi.sidecar.is_file()
    assert not [p for p in vi.directory.iterdir() if p.name.endswith(".tmp")]

    back = new_index(tmp_path, factory)
    assert back.load()
    assert back.generation == 7 and back.built_factory == vi.built_factory
    assert sorted(back.ids().tolist()) == sorted(ids.tolist())
    queries = uniform(rng, 10)
    for a, b in zip(vi.search(queries, 10), back.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    if factory != "auto":  # nprobe travels with the file
        import faiss

        assert faiss.extract_index_ivf(back.index).nprobe == faiss.extract_index_ivf(vi.index).nprobe


def test_load_missing_or_wrong_dim(tmp_path):
    assert not new_index(tmp_path).load()
    vi = new_index(tmp_path)
    vi.rebuild(np.array([1, 2]), uniform(np.random.default_rng(0), 2), generation=1)
    vi.save()
    assert not new_index(tmp_path, dim=DIM + 1).load()
    vi.path.write_bytes(b"not a faiss file")
    assert not new_index(tmp_path).load()


def test_save_of_empty_index_writes_nothing(tmp_path):
    vi = new_index(tmp_path)
    vi.save()
    assert not vi.path.exists()


# -- catch_up against a real store -----------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    s = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    yield s
    s.close()


@pytest.fixture
def writer(store):
    return StoreWriter(store, np.random.default_rng(7))


def assert_mirrors(vi: FaissVectorStore, store: MetadataStore) -> None:
    want = np.sort(store.vector_ids(SPACE))
    np.testing.assert_array_equal(np.sort(vi.ids()), want)
    assert len(vi) == len(want) and vi.generation == store.generation(SPACE)
    # and the vectors are the store's: each stored vector finds itself first
    ids, matrix = store.vectors(SPACE, want[:25].tolist(), dim=DIM)
    _, found = vi.search(matrix, 1)
    np.testing.assert_array_equal(found[:, 0], ids)


def reopen(tmp_path: Path, factory: str) -> FaissVectorStore:
    vi = new_index(tmp_path, factory)
    vi.load()
    return vi


FACTORIES = ["auto", "IVF16,Flat"]


@pytest.mark.parametrize("factory", FACTORIES)
def test_catch_up_file_older_than_store(tmp_path, store, writer, factory):
    writer.write(300)
    vi = new_index(tmp_path, factory)
    assert vi.catch_up(store) and not vi.catch_up(store)  # second call: nothing to do
    assert_mirrors(vi, store)
    vi.save()
    writer.write(40)  # committed to the store, then "crash" before the vector file is saved
    vi = reopen(tmp_path, factory)
    assert vi.generation < store.generation(SPACE)
    assert vi.catch_up(store)
    assert_mirrors(vi, store)


@pytest.mark.parametrize("factory", FACTORIES)
def test_catch_up_sidecar_missing(tmp_path, store, writer, factory):
    writer.write(300)
    vi = new_index(tmp_path, factory)
    vi.catch_up(store)
    vi.save()
    writer.write(10)
    vi.sidecar.unlink()
    vi = new_index(tmp_path, factory)
    assert not vi.load()
    assert vi.catch_up(store)
    assert_mirrors(vi, store)


@pytest.mark.parametrize("factory", FACTORIES)
def test_catch_up_vector_file_deleted(tmp_path, store, writer, factory):
    writer.write(300)
    vi = new_index(tmp_path, factory)
    vi.catch_up(store)
    vi.save()
    vi.path.unlink()
    vi = new_index(tmp_path, factory)
    assert not vi.load()
    assert vi.catch_up(store)
    assert_mirrors(vi, store)


@pytest.mark.parametrize("factory", FACTORIES)
def test_catch_up_file_holds_deleted_ids(tmp_path, store, writer, factory):
    writer.write(300)
    vi = new_index(tmp_path, factory)
    vi.catch_up(store)
    vi.save()
    stale = set(vi.ids().tolist())
    # items deleted (and others added) in the store after the file was written
    store.delete_items(writer.item_ids()[::3])
    writer.write(20)
    vi = reopen(tmp_path, factory)
    gone = stale - set(store.vector_ids(SPACE).tolist())
    assert gone and gone <= set(vi.ids().tolist())  # the file still has them
    assert vi.catch_up(store)
    assert_mirrors(vi, store)
    ids, matrix = store.vectors(SPACE, sorted(stale - gone)[:40], dim=DIM)
    _, found = vi.search(matrix, 10)
    assert not set(found.ravel().tolist()) & gone


def test_catch_up_empty_store(tmp_path, store, writer):
    vi = new_index(tmp_path)
    assert vi.catch_up(store)
    assert len(vi) == 0 and vi.search(np.ones((1, DIM), np.float32), 3)[1].shape == (1, 0)
    writer.write(5)
    assert vi.catch_up(store)
    assert_mirrors(vi, store)


def test_catch_up_grows_flat_into_ivf(tmp_path, store, writer, monkeypatch):
    """With factory auto, crossing the size threshold rebuilds the index as IVF."""
    monkeypatch.setattr(faiss_store, "FLAT_MAX", 300)
    writer.write(100)
    vi = new_index(tmp_path)
    vi.catch_up(store)
    assert vi.built_factory == "Flat"
    writer.write(700)  # ~1400 vectors: past FLAT_MAX
    assert vi.catch_up(store)
    assert vi.built_factory.startswith("IVF")
    assert_mirrors(vi, store)
