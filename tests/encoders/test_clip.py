"""OpenClipEncoder against open_clip itself, on a tiny real checkpoint (no downloads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("open_clip")
Image = pytest.importorskip("PIL.Image")

from anyfind.encoders import encoders  # noqa: E402
from anyfind.encoders.clip import OpenClipEncoder  # noqa: E402
from anyfind.errors import ConfigError  # noqa: E402
from tests.support.clip_fixtures import make_tiny_clip_checkpoint  # noqa: E402

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
TEXTS = [
    "a photo of a cat",
    "an espresso in a white cup",
    "",
    "rocket launch " * 60,  # far past the 77-token context: must truncate, not fail
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[str, Path]:
    return make_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def reference(tiny):
    """open_clip's own model, transform and tokenizer for the same checkpoint."""
    import open_clip

    arch, checkpoint = tiny
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint))
    return model.eval(), preprocess, open_clip.get_tokenizer(arch)


def photos() -> list:
    return [Image.open(p) for p in sorted(IMAGES.glob("*.jpg"))]


def test_registered_under_open_clip():
    assert encoders.get("open-clip") is OpenClipEncoder


def test_image_embeddings_equal_open_clip(tiny, reference):
    import torch

    model, preprocess, _ = reference
    images = photos()
    with torch.no_grad():
        expected = model.encode_image(torch.stack([preprocess(i) for i in images]), normalize=True)
    enc = OpenClipEncoder(tiny[0], weights=str(tiny[1]), device="cpu")
    got = enc.encode_documents(images, "image")
    assert got.shape == (len(images), 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
    # paths go through the same preprocessing as PIL images
    by_path = enc.encode_query([str(p) for p in sorted(IMAGES.glob("*.jpg"))], "image")
    np.testing.assert_allclose(by_path, got, atol=1e-6)


def test_text_embeddings_equal_open_clip(tiny, reference):
    import torch

    model, _, tokenizer = reference
    with torch.no_grad():
        expected = model.encode_text(tokenizer(TEXTS), normalize=True)
    enc = OpenClipEncoder(tiny[0], weights=str(tiny[1]), device="cpu")
    got = enc.encode_query(TEXTS)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batches_split_without_changing_results(tiny):
    enc = OpenClipEncoder(tiny[0], weights=str(tiny[1]), device="cpu", batch_size=1)
    whole = OpenClipEncoder(tiny[0], weights=str(tiny[1]), device="cpu")
    np.testing.assert_allclose(
        enc.encode_documents(TEXTS), whole.encode_documents(TEXTS), atol=1e-5
    )


def test_checkpoint_is_really_loaded_from_the_file(tiny, tmp_path):
    import torch

    arch, checkpoint = tiny
    state = torch.load(checkpoint, weights_only=True)
    state["visual.proj"] = state["visual.proj"] + 0.5
    state["text_projection"] = state["text_projection"].flip(1)
    changed = tmp_path / "changed.pt"
    torch.save(state, changed)

    original = OpenClipEncoder(arch, weights=str(checkpoint), device="cpu")
    edited = OpenClipEncoder(arch, weights=str(changed), device="cpu")
    img = photos()[:1]
    assert not np.allclose(
        original.encode_documents(img, "image"), edited.encode_documents(img, "image")
    )
    assert not np.allclose(original.encode_query(TEXTS[:1]), edited.encode_query(TEXTS[:1]))
    assert original.identity()["sha256"] != edited.identity()["sha256"]


def test_metadata_without_loading_the_model(tiny):
    arch, checkpoint = tiny
    enc = OpenClipEncoder(arch, weights=str(checkpoint))
    assert enc.dim == 32
    assert enc.max_tokens() == 77
    assert enc.tokenizer() is None
    ident = enc.identity()
    assert ident["kind"] == "open-clip" and ident["model"] == arch and ident["dim"] == 32
    assert ident["weights"] == checkpoint.name and len(ident["sha256"]) == 16
    assert enc._model is None
    assert enc.encode_query(["x"]).shape == (1, enc.dim)  # the config's dim is the real one


def test_custom_architecture_from_a_config_file(tiny):
    arch, checkpoint = tiny
    config = checkpoint.parent / "configs" / f"{arch}.json"
    enc = OpenClipEncoder(model_config=str(config), weights=str(checkpoint), device="cpu")
    assert enc.model_name == arch
    assert enc.encode_query(["hello"]).shape == (1, 32)


def test_local_dir_checkpoint(tiny, tmp_path):
    import json

    arch, checkpoint = tiny
    folder = tmp_path / "model"
    folder.mkdir()
    cfg = json.loads((checkpoint.parent / "configs" / f"{arch}.json").read_text())
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    shutil.copy(checkpoint, folder / "open_clip_pytorch_model.bin")
    by_dir = OpenClipEncoder(arch, weights=str(folder), device="cpu")
    by_file = OpenClipEncoder(arch, weights=str(checkpoint), device="cpu")
    assert by_dir.dim == 32
    np.testing.assert_allclose(by_dir.encode_query(TEXTS), by_file.encode_query(TEXTS), atol=1e-6)


def test_bad_inputs(tiny):
    arch, checkpoint = tiny
    with pytest.raises(ConfigError):
        OpenClipEncoder(arch, weights="/nonexistent/model.pt")
    with pytest.raises(ConfigError, match="no weights"):
        OpenClipEncoder(arch, pretrained=None).encode_query(["x"])
    enc = OpenClipEncoder(arch, weights=str(checkpoint), device="cpu")
    with pytest.raises(ValueError):
        enc.encode_documents(["x"], "audio")
    assert enc.encode_documents([], "image").shape == (0, 32)
