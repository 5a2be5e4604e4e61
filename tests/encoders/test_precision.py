"""Document precision: bf16 and the fp32 ONNX graph against fp32 torch (fidelity), what
`auto` resolves to, and the setting through Index.open, the CLI, status and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_onnx import text_export  # noqa: F401 (a fixture)

from anyfind.config import IndexConfig, default_text_space
from anyfind.encoders import precision
from anyfind.encoders.onnx import load_document_encoder
from anyfind.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
FIDELITY = 0.9999  # issue 17: document vectors within this cosine of fp32 torch


def cli_run(*args: str) -> str:
    from click.testing import CliRunner

    from anyfind.cli import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def real_texts(enc) -> dict[str, list[str]]:
    """The project's own prose (README, docs), cut three ways: short lines, texts of
    exactly the model's token budget, and texts over it (the model truncates them)."""
    prose = " ".join((REPO / name).read_text(encoding="utf-8")
                     for name in ("README.md", "docs/ARCHITECTURE.md", "docs/SCALE.md"))
    words = prose.split()
    tok = enc.tokenizer()
    budget = enc.max_tokens() - 2  # [CLS] and [SEP]
    short = [" ".join(words[i:i + n]) for i, n in zip(range(0, 4000, 400), (1, 2, 3, 5, 8) * 2,
                                                  strict=True)]
    at_budget, over = [], []
    for start in range(0, 6000, 600):
        ids = tok.encode(" ".join(words[start:start + 400])).ids[:budget]
        at_budget.append(tok.decode(ids))
        over.append(" ".join(words[start:start + 900]))
    assert all(len(tok.encode(t).ids) > budget for t in over)
    return {"short": short, "at budget": at_budget, "over budget": over}


def test_bf16_documents_match_fp32_torch_at_every_length(text_export):  # noqa: F811
    _, _, enc = text_export
    bf16 = precision.Bf16Documents(enc)
    for kind, texts in real_texts(enc).items():
        want = enc.encode_documents(texts)
        got = bf16.encode_documents(texts)
        assert got.dtype == np.float32 and got.shape == want.shape
        cos = cosines(got, want)
        assert cos.min() >= FIDELITY, (kind, cos.min())
        assert cos.min() < 1.0 - 1e-7, kind  # really bf16: not the fp32 vectors again
    # queries are left to the fp32 encoder
    np.testing.assert_array_equal(bf16.encode_query(["library"]), enc.encode_query(["library"]))


def test_onnx_documents_match_fp32_torch_at_every_length(text_export):  # noqa: F811
    index_dir, space, enc = text_export
    docs, reason = load_document_encoder(index_dir, "text", space.identity, int8=False)
    assert reason is None and docs.precision == "onnx"
    assert docs.loaded == {} and docs.batch_size == 8
    for kind, texts in real_texts(enc).items():
        cos = cosines(docs.encode_documents(texts), enc.encode_documents(texts))
        assert cos.min() >= 0.99999, (kind, cos.min())
    # the export's optimised graph, on onnxruntime's default threads (not a query's one)
    assert docs.loaded == {"text.onnx": "text.opt.onnx"}
    assert docs.session("text.onnx").get_session_options().intra_op_num_threads == 0


def test_auto_resolves_by_cpu_and_torch(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert precision.resolve_cpu_precision("auto", torch_available=True) == "bf16"
    assert "bf16 on this CPU" in precision.explain_auto()
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert precision.resolve_cpu_precision("auto", torch_available=True) == "fp32"
    assert precision.resolve_cpu_precision("auto", torch_available=False) == "onnx"
    for explicit in ("fp32", "bf16", "onnx", "int8"):
        assert precision.resolve_cpu_precision(explicit, torch_available=True) == explicit
    with pytest.raises(ConfigError, match="unknown document precision 'fp8'"):
        precision.check_precision("fp8")


def test_cpu_flags_read_from_proc_cpuinfo():
    flags = precision.cpu_flags()
    if Path("/proc/cpuinfo").is_file():
        text = Path("/proc/cpuinfo").read_text()
        assert ("flags" in text) == bool(flags)
        assert precision.cpu_has_native_bf16() == any(
            f in flags for f in ("amx_bf16", "avx512_bf16"))


def test_index_keeps_the_precision_and_reports_it(tmp_path):
    from anyfind import Index

    corpus = tmp_path / "docs"
    corpus.mkdir()
    for i, name in enumerate(("README.md", "docs/SCALE.md", "docs/RELIABILITY.md")):
        (corpus / f"{i}.md").write_text((REPO / name).read_text(encoding="utf-8"))
    idx = tmp_path / "idx"
    with Index.open(str(idx), precision="bf16", tagger=False, transcriber=None) as index:
        report = index.add([corpus])
        assert report.precision == {"text": "bf16"} and report.chunks > 10
        assert "text bf16)" in report.summary()
        ids, stored = index.store.vectors("text")
        rows = index.store.chunk_rows(ids.tolist())
        fp32 = index.spaces["text"].encoder.encode_documents([rows[int(i)]["text"] for i in ids])
        cos = cosines(stored, fp32)
        assert cos.min() >= FIDELITY and cos.min() < 1.0 - 1e-7
    config = json.loads((idx / "config.json").read_text())
    assert config["document_precision"] == "bf16" and config["onnx_int8"] is False

    # the CLI changes it for the index (kept), and status says it
    (corpus / "new.md").write_text("A new note about bfloat16 and onnxruntime graphs.")
    out = cli_run("sync", "--index", str(idx), "--precision", "onnx", "--json")
    assert json.loads(out.splitlines()[-1])["precision"] == {"text": "onnx"}
    status = json.loads(cli_run("status", "--index", str(idx), "--json"))
    assert status["document_precision"] == "onnx"
    assert "precision onnx (documents)" in cli_run("status", "--index", str(idx))
    with Index.open(str(idx)) as index:  # kept: the next open encodes the same way
        assert index.config.document_precision == "onnx"
        assert index.spaces["text"].precision == "onnx"


def test_config_written_before_the_setting_keeps_int8(tmp_path):
    data = IndexConfig(spaces={"text": default_text_space()}).to_json()
    data.pop("document_precision")
    data["onnx_int8"] = True
    assert IndexConfig.from_json(data).document_precision == "int8"
    data["onnx_int8"] = False
    assert IndexConfig.from_json(data).document_precision == "auto"


def test_unusable_onnx_export_falls_back_to_fp32_torch(tmp_path, caplog):
    from anyfind import Index

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Alpha text about catalogues and their subject headings.")
    idx = tmp_path / "idx"
    with Index.open(str(idx), precision="onnx", tagger=False, transcriber=None) as index:
        (idx / "onnx").write_text("a file where the export folder should be")
        report = index.add([corpus])
        assert report.failed == 0 and report.precision == {"text": "fp32"}
        assert index.spaces["text"].document_encoder is index.spaces["text"].encoder
    assert "onnx document encoding is off for space 'text'" in caplog.text


def test_small_sync_skips_torch_and_a_large_one_does_not(tmp_path):
    """Under auto, a fresh process syncing a few items encodes on the ONNX export and
    never imports torch; one syncing more than SMALL_SYNC_ITEMS takes auto's torch path."""
    import subprocess
    import sys

    from anyfind.encoders.space import SMALL_SYNC_ITEMS

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Subject headings in a library catalogue.")
    idx = tmp_path / "idx"
    script = ("import json, sys\n"
              "from anyfind import Index\n"
              "with Index.open(sys.argv[1], tagger=False, transcriber=None) as index:\n"
              "    report = index.add([sys.argv[2]])\n"
              "print(json.dumps({'precision': report.precision, 'added': report.added,\n"
              "                  'torch': 'torch' in sys.modules}))\n")

    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", script, str(idx), str(corpus)],
                             capture_output=True, text=True, timeout=300, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    with __import__("anyfind").Index.open(str(idx), tagger=False, transcriber=None) as index:
        index.add([corpus])
        index.export_onnx()
    (corpus / "b.txt").write_text("A second note, about thesauri and controlled vocabularies.")
    small = run()
    assert small == {"precision": {"text": "onnx"}, "added": 1, "torch": False}
    for i in range(SMALL_SYNC_ITEMS + 1):
        (corpus / f"n{i}.txt").write_text(f"Note {i} on classification number {i * 7}.")
    large = run()
    assert large["added"] == SMALL_SYNC_ITEMS + 1 and large["torch"] is True
    assert large["precision"]["text"] in ("bf16", "fp32")
    with __import__("anyfind").Index.open(str(idx)) as index:  # both kinds of vectors agree
        ids, stored = index.store.vectors("text")
        rows = index.store.chunk_rows(ids.tolist())
        fp32 = index.spaces["text"].encoder.encode_documents([rows[int(i)]["text"] for i in ids])
        assert cosines(stored, fp32).min() >= FIDELITY
