"""Search behaviour on a real index: modes, fusion, paging, snippets, similar items,
reranking and bad input."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anyfind import Index
from anyfind.errors import QueryError
from tests.conftest import write_corpus

SKU_DOC = ("Warehouse note: the replacement part for the conveyor motor is SKU XJ-4471. "
           "Order it from the usual supplier.")


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("corpus"))
    (root / "warehouse.txt").write_text(SKU_DOC)
    shutil.copy(root / "astro" / "moon.txt", root / "astro" / "moon-copy.txt")
    idx = Index.open(tmp_path_factory.mktemp("idx") / "idx")
    idx.add([root])
    yield idx
    idx.close()


def names(results) -> list[str]:
    return [os.path.basename(r.path) for r in results]


def item_id(index, name: str) -> int:
    (found,) = [row.id for s in index.store.sources()
                for row in index.store.items_of_source(s["id"]).values()
                if os.path.basename(row.path) == name]
    return found


def test_modes_and_their_scores(index):
    q = "chip shortage delaying deliveries"
    hybrid = index.search(q, k=3)
    dense = index.search(q, k=3, mode="dense")
    lexical = index.search(q, k=3, mode="lexical")
    assert names(hybrid)[0] == names(dense)[0] == names(lexical)[0] == "report.pdf"
    top = hybrid[0]
    assert set(top.spaces) == {"text", "lexical"}
    assert index.search(q, k=1, fusion="rrf")[0].fused == pytest.approx(1.0)  # first in both
    assert all(0 < r.score <= 1 for r in hybrid)
    # The raw signals, and each one's calibrated score: hybrid's is their union.
    cos, bm25 = top.signals["text"], top.signals["lexical"]
    assert cos["cosine"] == pytest.approx(top.spaces["text"], abs=1e-5)
    assert bm25["bm25"] == pytest.approx(top.spaces["lexical"], abs=1e-5)
    assert top.score == pytest.approx(1 - (1 - cos["score"]) * (1 - bm25["score"]), abs=1e-5)
    assert cos["rank"] == bm25["rank"] == 1 and cos["cosine"] > cos["floor"]
    assert dense[0].score == pytest.approx(dense[0].signals["text"]["score"], abs=1e-5)
    assert dense[0].spaces["text"] == pytest.approx(cos["cosine"], abs=1e-5)
    assert lexical[0].score == pytest.approx(bm25["score"], abs=1e-5)
    assert 0 < lexical[0].score < 1 and 0 < dense[0].score < 1
    assert set(lexical[0].spaces) == {"lexical"} and set(dense[0].spaces) == {"text"}


def test_lexical_signal_rescues_exact_identifiers(index):
    lexical = index.search("XJ-4471", k=3, mode="lexical")
    assert names(lexical) == ["warehouse.txt"]  # only the document holding the code
    assert names(index.search("XJ-4471", k=1))[0] == "warehouse.txt"


def test_one_result_per_item_unless_chunks(index):
    q = "quarterly revenue and semiconductor risks"
    grouped = index.search(q, k=10)
    assert len({r.item_id for r in grouped}) == len(grouped)
    passages = index.search(q, k=10, chunks=True)
    pages = sorted(r.page for r in passages if r.path.endswith("report.pdf"))
    assert pages == [1, 2]
    assert len({r.chunk_id for r in passages}) == len(passages)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_paging_and_ranks(index, mode):
    q = "the moon, tides, tomatoes, holiday and espresso"
    whole = index.search(q, k=4, mode=mode, floor=False)
    pages = (index.search(q, k=2, mode=mode, floor=False)
             + index.search(q, k=2, offset=2, mode=mode, floor=False))
    assert [r.item_id for r in pages] == [r.item_id for r in whole]
    assert [r.rank for r in pages] == [1, 2, 3, 4]
    assert index.search(q, k=0, mode=mode) == []


def test_min_score(index):
    q = "how much paid holiday do employees get"
    everything = index.search(q, k=20)
    cut = sorted({r.score for r in everything})[len(everything) // 2]
    kept = index.search(q, k=20, min_score=cut)
    assert kept and all(r.score >= cut for r in kept)
    assert [r.item_id for r in kept] == [r.item_id for r in everything if r.score >= cut]


def test_weights_and_score_fusion(index):
    q = "espresso pressure crema"
    dense = index.search(q, k=6, mode="dense")
    no_lexical = index.search(q, k=6, weights={"lexical": 0})
    assert [r.item_id for r in no_lexical] == [r.item_id for r in dense]
    scored = index.search(q, k=6, fusion="score")
    assert names(scored)[0] == "espresso.html"
    assert scored[0].fused == pytest.approx(1.0) and all(0 <= r.score <= 1 for r in scored)
    with pytest.raises(QueryError, match="unknown fusion"):
        index.search(q, fusion="max")


def test_highlights_mark_query_terms_in_the_passage(index):
    (hit,) = index.search("watering tomato plants", k=1)
    marked = [hit.text[a:b].lower() for a, b in hit.highlights]
    assert {"water", "tomatoes", "plant"} <= set(marked)  # stems match
    assert all(a < b for a, b in hit.highlights)
    assert hit.highlights == sorted(hit.highlights)
    (dense_hit,) = index.search("sunshine for fruit", k=1, mode="dense")
    assert all(dense_hit.text[a:b].lower() in {"sunshine", "fruit"}
               for a, b in dense_hit.highlights)


def test_similar_items(index):
    moon = item_id(index, "moon.txt")
    similar = index.similar(moon, k=3)
    assert moon not in [r.item_id for r in similar]
    assert names(similar)[0] == "moon-copy.txt"
    assert similar[0].score == pytest.approx(1.0, abs=1e-4)
    assert [r.rank for r in similar] == [1, 2, 3]
    only_pdf = index.similar(moon, k=3, filters="ext:pdf")
    assert names(only_pdf) == ["report.pdf"]
    assert [r.item_id for r in index.similar(moon, k=2, offset=1)] == [
        r.item_id for r in similar[1:3]]
    with pytest.raises(QueryError, match="no item 999999"):
        index.similar(999999)


@pytest.mark.parametrize("query, message", [
    ("", "empty query"),
    ("   \n\t", "empty query"),
    ("?! ... ;", "no words"),
    ("ext:pdf", "filters only narrow"),
    ("size:huge", "bad filter"),
])
def test_bad_queries_are_clear_errors(index, query, message):
    with pytest.raises(QueryError, match=message):
        index.search(query)


@pytest.mark.parametrize("query", [
    "the of and", 'NEAR("moon" tides) AND *', 'moon" OR "x', "moon:*", "((( moon",
    "moon " * 5000 + "tides", "x" * 100_000,
])
@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_odd_queries_give_results_not_errors(index, query, mode):
    results = index.search(query, k=3, mode=mode)
    assert isinstance(results, list)
    if "moon" in query:
        assert "moon.txt" in names(results) or "moon-copy.txt" in names(results)


def test_unknown_mode(index):
    with pytest.raises(QueryError, match="unknown mode"):
        index.search("moon", mode="fuzzy")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_lexical_search_only_raises_query_errors(index, text):
    try:
        index.search(text, k=3, mode="lexical")
    except QueryError:
        pass


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_hybrid_search_only_raises_query_errors(index, text):
    try:
        index.search(text, k=3)
    except QueryError:
        pass


# -- reranking -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A randomly initialised one-layer BERT cross-encoder with MiniLM's tokenizer, saved
    as a real model folder so that the real loading code runs."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from anyfind.encoders.text import resolve_text_model

    folder = tmp_path_factory.mktemp("tiny-ce")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    minilm = resolve_text_model("all-MiniLM-L6-v2")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        if os.path.exists(os.path.join(minilm, name)):
            shutil.copy(os.path.join(minilm, name), folder / name)
    return folder


def test_rerank_orders_by_cross_encoder(index, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    q = "moon tides sunlight coffee holiday"
    fused = index.search(q, k=6, floor=False)
    reranked = index.search(q, k=6, rerank=str(tiny_cross_encoder), floor=False)
    assert {r.item_id for r in reranked} <= {r.item_id for r in
                                             index.search(q, k=50, floor=False)}
    expected = CrossEncoder(str(tiny_cross_encoder)).predict([(q, r.text) for r in reranked])
    assert [r.score for r in reranked] == pytest.approx([float(s) for s in expected], abs=1e-5)
    assert [r.score for r in reranked] == sorted((r.score for r in reranked), reverse=True)
    assert all({"rerank", "fused"} <= set(r.spaces) for r in reranked)
    assert [r.rank for r in reranked] == list(range(1, 7))
    assert len(fused) == 6


def test_rerank_with_a_missing_model_is_a_clear_error(index, tmp_path):
    from anyfind.errors import ConfigError

    with pytest.raises(ConfigError, match="could not be loaded"):
        index.search("moon", rerank=str(tmp_path / "no-such-model"))
