"""Images through the whole engine: offline tags, query by text and by example image,
one ranked list with documents, the CLIP space from a real (tiny) checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from anyfind import Index
from anyfind.cli import cli

PHOTOS = Path(__file__).parent / "fixtures" / "images"


def name(r) -> str:
    return Path(r.path).name


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    for p in PHOTOS.glob("*.jpg"):
        shutil.copy(p, root / p.name)
    (root / "notes.md").write_text(
        "# Coffee notes\n\nA flat white has more milk foam than a cortado; both start from "
        "a double shot.")
    (root / "broken.jpg").write_bytes((PHOTOS / "coffee.jpg").read_bytes()[:2000])
    (root / "fake.png").write_text("this is not a picture at all")
    return root


@pytest.fixture(scope="module")
def tagged(gallery, tmp_path_factory):
    idx = Index.open(tmp_path_factory.mktemp("idx") / "index")
    report = idx.add([gallery])
    assert report.added == 5 and report.failed == 2
    yield idx
    idx.close()


def test_tags_stored_and_searchable_without_clip(tagged):
    assert "vision" not in tagged.spaces  # no CLIP weights offline: tags alone
    top = tagged.search("espresso", k=1)[0]
    assert name(top) == "coffee.jpg" and top.modality == "image"
    assert "espresso" in top.tags and top.width and top.height
    assert name(tagged.search("a cat sleeping", k=1)[0]) == "chelsea.jpg"
    assert name(tagged.search("rocket launch", k=1)[0]) == "rocket.jpg"


def test_query_by_example_image_returns_it_first(tagged):
    hits = tagged.search(image=str(PHOTOS / "chelsea.jpg"), k=2)
    assert name(hits[0]) == "chelsea.jpg" and hits[0].score > 0.99


def test_text_query_mixes_images_and_documents(tagged):
    hits = tagged.search("coffee", k=5)
    kinds = {h.modality for h in hits}
    assert kinds == {"image", "text"}
    assert {"coffee.jpg", "notes.md"} <= {name(h) for h in hits[:3]}


def test_bad_images_are_recorded(tagged):
    errors = {Path(e["path"]).name: e["error"] for e in tagged.errors()}
    assert set(errors) == {"broken.jpg", "fake.png"}


def test_thumbnails_cached_once(tagged):
    item_id = tagged.search("espresso", k=1)[0].item_id
    thumb = tagged.thumbnail(item_id)
    assert thumb is not None and thumb.stat().st_size > 1000
    from PIL import Image

    with Image.open(thumb) as im:
        assert max(im.size) <= 256


def test_clip_space_from_a_local_checkpoint(gallery, tmp_path):
    from tests.clip_fixtures import make_tiny_clip_checkpoint

    arch, ckpt = make_tiny_clip_checkpoint(tmp_path / "clip")
    config = tmp_path / "clip" / "configs" / f"{arch}.json"
    runner = CliRunner()
    out = runner.invoke(cli, ["index", str(gallery), "--index", str(tmp_path / "idx"),
                              "--clip-config", str(config), "--clip-weights", str(ckpt)])
    assert out.exit_code == 0, out.output
    with Index.open(tmp_path / "idx", create=False) as idx:
        vision = idx.config.spaces["vision"]
        assert vision.dim == 32 and vision.model == arch
        st = idx.status()["spaces"]
        # every image and every text chunk has a vector in the shared space
        assert st["vision"]["vectors"] == 4 + 1
        hits = idx.search(image=str(PHOTOS / "rocket.jpg"), k=3)
        assert name(hits[0]) == "rocket.jpg"
        assert set(hits[0].spaces) == {"text", "vision"}
        # a text query reaches both spaces and returns one fused list
        assert {h.modality for h in idx.search("coffee", k=6)} == {"image", "text"}
