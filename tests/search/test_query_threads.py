"""One text query runs on `Encoder.query_threads` torch threads and one FAISS query on one
OpenMP thread; both counts come back afterwards, results do not change, and queries from
many threads at once stay correct. Thread counts are read inside the real forward pass
(a torch forward hook), nothing is timed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np
import pytest
import torch

from anyfind.store.faiss_store import FaissVectorStore, exact_search, omp_threads

QUERIES = ["chip shortage delaying deliveries", "how long to pull an espresso shot",
           "why does the moon drift away", "paid holiday carried over", "tomato blight",
           "notes on the moon"]  # a form word: the floor's second look encodes a batch
TORCH_THREADS = 3  # not 1, and not what a query asks for


@pytest.fixture(scope="module")
def index(corpus_index):
    return corpus_index


@pytest.fixture
def encoder(index, monkeypatch):
    monkeypatch.delenv("ANYFIND_QUERY_THREADS", raising=False)
    enc = index.spaces["text"].encoder
    before = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    yield enc
    enc.query_threads = None
    torch.set_num_threads(before)


@pytest.fixture
def seen(encoder):
    """torch's thread count at every forward pass of the real model."""
    counts: list[int] = []
    hook = encoder.model[0].register_forward_hook(
        lambda *_: counts.append(torch.get_num_threads()))
    yield counts
    hook.remove()


def test_one_text_query_runs_on_one_thread_and_the_count_comes_back(encoder, seen):
    encoder.encode_query(["a single query"])
    assert seen == [1]
    assert torch.get_num_threads() == TORCH_THREADS


def test_batches_and_documents_keep_every_thread(encoder, seen):
    encoder.encode_query(QUERIES[:2])
    encoder.encode_documents(["one document"])
    assert seen == [TORCH_THREADS, TORCH_THREADS]


@pytest.mark.parametrize(("setting", "env", "expected"), [
    (2, None, 2), (0, None, TORCH_THREADS), (None, "2", 2), (None, "0", TORCH_THREADS),
    (None, "many", 1), (1, "2", 1),
])
def test_query_threads_setting_and_environment(encoder, seen, monkeypatch, setting, env,
                                               expected):
    if env is not None:
        monkeypatch.setenv("ANYFIND_QUERY_THREADS", env)
    encoder.query_threads = setting
    encoder.encode_query(["a single query"])
    assert seen == [expected]
    assert torch.get_num_threads() == TORCH_THREADS


def test_count_comes_back_when_the_encoder_raises(encoder, seen):
    with pytest.raises((TypeError, ValueError)):
        encoder.encode_query([None])  # the real tokenizer refuses it
    assert torch.get_num_threads() == TORCH_THREADS

    def fail(*_):
        raise RuntimeError("forward failed")

    hook = encoder.model[0].register_forward_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="forward failed"):
            encoder.encode_query(["a single query"])
    finally:
        hook.remove()
    assert seen == [1]  # the failing pass ran limited
    assert torch.get_num_threads() == TORCH_THREADS
    encoder.encode_query(["works again"])
    assert seen == [1, 1]


def test_vectors_and_results_match_torch_own_thread_count(index, encoder):
    encoder.query_threads = 0
    vecs_all = np.stack([encoder.encode_query([q])[0] for q in QUERIES])
    results_all = [[(r.chunk_id, r.score) for r in index.search(q, k=5, mode=mode)]
                   for q in QUERIES for mode in ("hybrid", "dense")]
    encoder.query_threads = None
    vecs_one = np.stack([encoder.encode_query([q])[0] for q in QUERIES])
    results_one = [[(r.chunk_id, r.score) for r in index.search(q, k=5, mode=mode)]
                   for q in QUERIES for mode in ("hybrid", "dense")]
    np.testing.assert_allclose(vecs_one, vecs_all, atol=1e-5)
    np.testing.assert_allclose(vecs_one, encoder.encode_query(QUERIES), atol=1e-5)  # batch
    for one, every in zip(results_one, results_all, strict=True):
        assert [c for c, _ in one] == [c for c, _ in every]
        np.testing.assert_allclose([s for _, s in one], [s for _, s in every], atol=1e-5)


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat"])
def test_one_faiss_query_on_one_thread_matches_the_batch_search(tmp_path, factory):
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((2000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(10, 2010, dtype=np.int64)
    vi = FaissVectorStore(tmp_path, "text", 32, factory)
    vi.rebuild(ids, vecs, generation=1)
    if factory.startswith("IVF"):
        faiss.extract_index_ivf(vi.index).nprobe = 16  # every list: exact
    queries = vecs[:20] + 0.1 * rng.standard_normal((20, 32)).astype(np.float32)
    before = faiss.omp_get_max_threads()
    batch_scores, batch_ids = vi.search(queries, 10)  # a batch keeps every thread
    allowed = ids[::3]
    for i, q in enumerate(queries):
        scores, found = vi.search(q[None, :], 10)
        assert found[0].tolist() == batch_ids[i].tolist()
        np.testing.assert_allclose(scores[0], batch_scores[i], atol=1e-5)
        _, truth = exact_search(vecs[::3], allowed, q[None, :], 10)
        assert vi.search(q[None, :], 10, allowed=allowed)[1][0].tolist() == truth[0].tolist()
        assert faiss.omp_get_max_threads() == before


def test_omp_threads_is_per_thread_and_restored_on_error():
    before = faiss.omp_get_max_threads()
    inside, other = threading.Event(), []
    release = threading.Event()

    def limited():
        with omp_threads(faiss, 1):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=limited)
    t.start()
    inside.wait(10)
    other.append(faiss.omp_get_max_threads())  # this thread keeps its own count
    release.set()
    t.join()
    assert other == [before]
    with pytest.raises(RuntimeError), omp_threads(faiss, 1):
        assert faiss.omp_get_max_threads() == 1
        raise RuntimeError("search failed")
    assert faiss.omp_get_max_threads() == before


def test_concurrent_queries_from_threads(index, encoder, seen):
    modes = ("hybrid", "dense")
    expected, passes = {}, {}  # a search's results, and its forward passes (the floor's
    for q in QUERIES:  # second look at a query with a form word adds one: its batch)
        for m in modes:
            before = len(seen)
            expected[(q, m)] = [r.chunk_id for r in index.search(q, k=5, mode=m)]
            passes[(q, m)] = len(seen) - before
    assert max(passes.values()) > 1  # the null queries' batch is among the passes below
    vectors = {q: encoder.encode_query([q])[0] for q in QUERIES}
    seen.clear()
    start = threading.Barrier(8)

    def worker(n: int) -> list[tuple]:
        start.wait(10)
        out = []
        for i in range(6):
            q, m = QUERIES[(n + i) % len(QUERIES)], modes[(n + i) % 2]
            out.append(((q, m), [r.chunk_id for r in index.search(q, k=5, mode=m)]))
            out.append((q, encoder.encode_query([q])[0]))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [row for rows in pool.map(worker, range(8)) for row in rows]
    for key, got in results:
        if isinstance(key, tuple):
            assert got == expected[key]
        else:
            np.testing.assert_allclose(got, vectors[key], atol=1e-5)
    searched = [key for key, _ in results if isinstance(key, tuple)]
    assert len(seen) == sum(passes[key] for key in searched) + 8 * 6
    assert set(seen) == {1}  # every concurrent forward pass ran limited
    assert torch.get_num_threads() == TORCH_THREADS  # and the count came back
