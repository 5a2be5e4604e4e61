"""Metrics against hand-computed values, in-memory records, and `anyfind eval` on a small
BEIR-format dataset built here."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from anyfind import Index
from anyfind.cli import cli
from anyfind.evaluate import evaluate, load_beir
from anyfind.search.metrics import evaluate_run, mrr_at_k, ndcg_at_k, recall_at_k

LOG3 = math.log2(3)


def test_metrics_by_hand():
    judged = {"a": 2, "b": 1, "c": 0}
    ranked = ["x", "a", "c", "b"]
    # DCG: 0 + 2/log2(3) + 0 + 1/log2(5); ideal: 2/1 + 1/log2(3)
    assert ndcg_at_k(ranked, judged, 10) == pytest.approx((2 / LOG3 + 1 / math.log2(5))
                                                          / (2 + 1 / LOG3))
    assert ndcg_at_k(ranked, judged, 10, graded=False) == pytest.approx(
        (1 / LOG3 + 1 / math.log2(5)) / (1 + 1 / LOG3))
    assert ndcg_at_k(ranked, judged, 2) == pytest.approx((2 / LOG3) / (2 + 1 / LOG3))
    assert recall_at_k(ranked, judged, 3) == 0.5 and recall_at_k(ranked, judged, 100) == 1.0
    assert mrr_at_k(ranked, judged, 10) == 0.5 and mrr_at_k(ranked, judged, 1) == 0.0
    assert ndcg_at_k(["a", "a", "b"], judged) == pytest.approx(1.0)  # duplicates count once
    assert ndcg_at_k(["a"], {"a": 0}) == 0.0
    run = {"q1": ["a"], "q2": []}
    qrels = {"q1": {"a": 1}, "q2": {"z": 1}, "q3": {"y": 0}}  # q3: nothing relevant, skipped
    assert evaluate_run(run, qrels) == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5,
                                        "queries": 2}


CORPUS = [
    {"_id": "d1", "title": "Zebras", "text": "Zebra stripes confuse biting flies."},
    {"_id": "d2", "title": "", "text": "Quokka quokka: the quokka is a small marsupial."},
    {"_id": "d3", "title": "", "text": (
        "A long survey of Australian wildlife: kangaroos, wallabies, koalas, wombats, echidnas, "
        "platypus, dingoes and one quokka seen near Perth, with notes on habitat, diet and "
        "breeding seasons across many regions.")},
    {"_id": "d4", "title": "", "text": "Volcanic soils are rich in minerals."},
    {"_id": "d5", "title": "", "text": "Marsupials carry their young in a pouch."},
    {"_id": "d6", "title": "", "text": "Tea cultivation in the highlands."},
]
QUERIES = {"q1": "zebra", "q2": "quokka", "q3": "xyzzy plugh", "q4": "tea", "q5": "unjudged"}
QRELS = [("q1", "d1", 1), ("q2", "d3", 2), ("q2", "d5", 1), ("q3", "d4", 1), ("q4", "d6", 0)]

# Lexical rankings: q1 -> [d1]; q2 -> [d2, d3] (three quokkas in a short text beat one
# in a long one); q3 -> nothing. q4 has no relevant document and q5 no judgement: skipped.
Q2_NDCG = (2 / LOG3) / (2 + 1 / LOG3)
LEXICAL = {"ndcg_at_10": (1 + Q2_NDCG + 0) / 3, "recall_at_100": (1 + 0.5 + 0) / 3,
           "mrr_at_10": (1 + 0.5 + 0) / 3, "queries": 3}


@pytest.fixture
def beir(tmp_path):
    root = tmp_path / "tiny-beir"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS))
    return root


def test_load_beir(beir):
    data = load_beir(beir)
    assert data.name == "tiny-beir" and len(data.corpus) == 6
    assert set(data.queries) == {"q1", "q2", "q3", "q4"}
    assert data.qrels["q2"] == {"d3": 2, "d5": 1}
    (beir / "qrels" / "test.tsv").unlink()
    with pytest.raises(Exception, match="missing"):
        load_beir(beir)


def test_eval_command_matches_hand_computed_metrics(beir):
    out = CliRunner().invoke(cli, ["eval", str(beir), "--json", "-q"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["documents"] == 6 and report["queries"] == 4
    lexical = report["modes"]["lexical"]
    for key, value in LEXICAL.items():
        assert lexical[key] == pytest.approx(value), key
    for mode in ("dense", "hybrid"):
        m = report["modes"][mode]
        assert m["queries"] == 3 and 0 <= m["ndcg_at_10"] <= 1 and m["p50_ms"] > 0
        assert m["ndcg_at_10"] >= 1 / 3  # "zebra" finds the zebra document in any mode
    table = CliRunner().invoke(cli, ["eval", str(beir), "--mode", "lexical", "-q"])
    assert table.exit_code == 0
    assert "nDCG@10" in table.output and f"{LEXICAL['ndcg_at_10']:.3f}" in table.output


def test_eval_into_a_shared_index_only_sees_its_corpus(beir, tmp_path, corpus):
    with Index.open(tmp_path / "idx") as index:
        index.add([corpus])  # other documents that must not take part
        index.add_documents("tiny-beir", [("d7", "", "Zebra crossing rules for drivers.")])
        (lexical,) = evaluate(index, load_beir(beir), ["lexical"])
        assert lexical.ndcg_at_10 == pytest.approx(LEXICAL["ndcg_at_10"])
        again = index.add_documents("tiny-beir", load_beir(beir).corpus)
        assert again.added == again.updated == again.removed == 0 and again.unchanged == 6


def test_add_documents_syncs_records(tmp_path, corpus):
    with Index.open(tmp_path / "idx") as index:
        first = index.add_documents("notes", [("a", "Bees", "Bees dance to share directions."),
                                              ("b", "", "Owls hunt at night.")])
        assert first.added == 2
        hit = index.search("honeybee waggle dance", k=1)[0]
        assert (hit.path, hit.title, hit.uri) == ("notes/a", "Bees", "records:notes/a")
        assert hit.text.startswith("Bees\n\nBees dance")
        changed = index.add_documents("notes", [("a", "Bees", "Bees make honey from nectar.")])
        assert (changed.updated, changed.removed) == (1, 1)
        assert index.search("owls at night", k=5, mode="lexical") == []
        index.add([corpus])
        index.sync()  # re-syncing every source leaves the records alone
        assert index.search("honey nectar", k=1, mode="lexical")[0].path == "notes/a"
