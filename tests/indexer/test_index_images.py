"""Images through the whole engine: offline tags, query by text and by example image,
one ranked list with documents, the CLIP space from a real (tiny) checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from anyfind import Index
from anyfind.cli import cli

PHOTOS = Path(__file__).parents[1] / "fixtures" / "images"


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
    from tests.support.clip_fixtures import make_tiny_clip_checkpoint

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


def test_image_models_set_the_decode_size_and_their_prep_runs_in_the_workers(tagged):
    """The prepare workers get each model's per-image preprocessing and decode JPEGs only as
    large as the models (the tagger: timm's 256 px short side) and thumbnails need."""
    import io

    from PIL import Image

    from anyfind.encoders.imageprep import PreparedImage
    from anyfind.extract.image import DecodeSize, extract_image
    from anyfind.indexer.chunks import make_chunks
    from anyfind.indexer.prepare import Prepared
    from anyfind.store.thumbnails import SIZE

    opened = tagged.opened
    prep = opened.tagger.image_prep()
    assert opened.extract_context().image_decode_size == DecodeSize(prep.min_side, SIZE)
    photo = Image.open(PHOTOS / "coffee.jpg").convert("RGB").resize((4000, 2667))
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=90)
    import copy

    without_ocr = copy.copy(opened.extract_context())
    without_ocr._ocr = None
    extracted = extract_image(out.getvalue(), "image/jpeg", without_ocr)
    assert extracted.image.size == (500, 334)
    # With OCR (the default) the models see the same pixels: the gate looks at them too.
    gated = extract_image(out.getvalue(), "image/jpeg", opened.extract_context())
    assert gated.image.size == (500, 334) and gated.metadata["ocr"]["engine"]
    assert (extracted.metadata["width"], extracted.metadata["height"]) == (4000, 2667)
    item = Prepared(ref=None, replace_id=None, content_hash=None)  # what _prepare fills
    make_chunks(opened, extracted, item)
    ready = item.images[0]
    assert isinstance(ready, PreparedImage) and ready.image is extracted.image
    assert list(ready.pixels) == [prep] and ready.pixels[prep].shape == (224, 224, 3)


def test_a_12mp_jpeg_is_indexed_from_a_draft_decode(tmp_path):
    from PIL import Image

    from anyfind.encoders.tagger import get_tagger

    folder = tmp_path / "big"
    folder.mkdir()
    photo = Image.open(PHOTOS / "coffee.jpg").convert("RGB").resize(
        (4000, 2667), Image.Resampling.BICUBIC)
    photo.save(folder / "espresso.jpg", quality=90)
    with Index.open(tmp_path / "idx") as idx:
        assert idx.add([folder]).added == 1
        top = idx.search("espresso", k=1)[0]
        assert (top.width, top.height) == (4000, 2667)  # the original size, from the header
        full_decode_tags = get_tagger().tag([photo])[0]
        assert top.tags[0] == full_decode_tags[0][0] == "espresso"
        with Image.open(idx.thumbnail(top.item_id)) as thumb:
            assert thumb.size == (256, 171)


def test_clip_only_index_decodes_to_clip_and_thumbnail_sizes(tmp_path):
    from anyfind.extract.image import DecodeSize
    from tests.support.clip_fixtures import TINY_CONFIG, make_tiny_clip_checkpoint

    arch, ckpt = make_tiny_clip_checkpoint(tmp_path / "clip")
    config = tmp_path / "clip" / "configs" / f"{arch}.json"
    with Index.open(tmp_path / "idx", tagger=False, clip_config=str(config),
                    clip_weights=str(ckpt)) as idx:
        side = TINY_CONFIG["vision_cfg"]["image_size"]
        assert idx.opened.extract_context().image_decode_size == DecodeSize(side, 256)
        with_tags = Index.open(tmp_path / "idx2", clip_config=str(config), clip_weights=str(ckpt))
        with with_tags:
            assert with_tags.opened.extract_context().image_decode_size == DecodeSize(256, 256)
