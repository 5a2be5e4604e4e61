"""The text inside images and scanned pages (ocr/): read offline, indexed as passages of
the same item, found by its words, shown with the boxes of the lines that matched."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from ocr_fixtures import photo_without_text, scanned_page_pdf, slide
from PIL import Image

from anyfind import Index
from anyfind.cli import cli

pytest.importorskip("rapidocr_onnxruntime")

SLIDES = {
    "qloss.png": ("Q-Loss and the TD Error", ["the loss is the temporal difference error",
                                             "a target network is updated slowly"]),
    "replay.png": ("Experience Replay", ["transitions are stored in a buffer",
                                         "minibatches are sampled uniformly"]),
    "pricing.png": ("Pricing Strategy", ["charge higher prices to loyal customers",
                                         "discount the second purchase"]),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ocr-docs")
    colours = [(31, 78, 121), (150, 40, 40), (40, 120, 60)]
    for i, (name, (title, bullets)) in enumerate(SLIDES.items()):
        slide(root / name, title, bullets, background=colours[i], busy=i == 1, seed=i)
    photo_without_text(root / "meadow.jpg")
    scanned_page_pdf(root / "invoice.pdf", ["Invoice 4471 from the Harbour Bakery",
                                            "Sourdough loaves delivered on Tuesday",
                                            "Total due 128.40 euros"])
    (root / "notes.md").write_text("Reinforcement learning notes: policies and rewards.")
    return root


@pytest.fixture(scope="module")
def index(folder, tmp_path_factory):
    idx = Index.open(tmp_path_factory.mktemp("ocr-idx") / "idx", transcriber=None)
    report = idx.add([folder])
    assert report.failed == 0, report.errors
    yield idx
    idx.close()


def by_name(idx, query: str, k: int = 3, **kw) -> list[str]:
    return [Path(r.path).name for r in idx.search(query, k=k, **kw)]


@pytest.mark.parametrize("query, want", [
    ("temporal difference error", "qloss.png"),
    ("transitions stored in a buffer", "replay.png"),
    ("charge higher prices loyal customers", "pricing.png"),
    ("Harbour Bakery invoice", "invoice.pdf"),
])
def test_an_image_or_a_scan_is_found_by_the_words_it_shows(index, query, want):
    assert by_name(index, query)[0] == want
    assert by_name(index, query, mode="lexical")[0] == want  # its words are indexed words


def test_the_matching_lines_come_with_their_boxes(index):
    (hit,) = index.search("temporal difference error", k=1)
    assert hit.regions, hit
    region = hit.regions[0]
    assert "temporal" in region["text"].lower() and region["highlights"]
    x0, y0, x1, y1 = region["box"]
    # the first bullet was drawn at x = 1/14 of the width, y = 1/6 + 1/12 of the height
    assert 0.03 < x0 < 0.12 and 0.2 < y0 < 0.3 and y1 - y0 < 0.1 and x1 > 0.4
    title = next(line for line in index.item(hit.item_id)["meta"]["ocr"]["lines"]
                 if "Loss" in line["text"])
    assert title["box"][1] < 0.1  # the title band is at the top
    result = CliRunner().invoke(cli, ["search", "temporal difference error", "--index",
                                      str(index.path), "--json", "-k", "1"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.splitlines()[0])
    assert row["regions"][0]["box"] == region["box"] and "_read_lines" not in row


def test_words_are_separated_for_lexical_search(index, folder):
    (item_id,) = index.item_ids_at([str(folder / "pricing.png")])
    text = " ".join(line["text"] for line in index.item(item_id)["meta"]["ocr"]["lines"])
    assert "higher prices" in text.lower() and "loyal customers" in text.lower()


def test_a_photo_without_text_is_not_sent_to_recognition(index, folder):
    (item_id,) = index.item_ids_at([str(folder / "meadow.jpg")])
    read = index.item(item_id)["meta"]["ocr"]
    assert read["gate"] is False and read["lines"] == []


def test_the_scan_keeps_its_page_and_show_prints_what_was_read(index, folder):
    (hit,) = index.search("sourdough loaves delivered", k=1)
    assert Path(hit.path).name == "invoice.pdf" and hit.page == 1
    (item_id,) = index.item_ids_at([str(folder / "qloss.png")])
    shown = CliRunner().invoke(cli, ["show", str(item_id), "--index", str(index.path)])
    assert shown.exit_code == 0 and "read by rapidocr" in shown.output
    assert "temporal difference" in shown.output.lower()


def test_a_renamed_screenshot_is_not_read_again(folder, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(folder, docs)
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False) as idx:
        idx.add([docs])
        (docs / "qloss.png").rename(docs / "renamed.png")
        report = idx.sync()
        assert report.renamed == 1 and report.added == 0 and report.chunks == 0
        assert by_name(idx, "temporal difference error")[0] == "renamed.png"


def test_ocr_off_reads_nothing(folder, tmp_path):
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False, ocr="off") as idx:
        idx.add([folder / "qloss.png"])
        assert "temporal" not in " ".join(by_name(idx, "temporal difference error"))
        (item_id,) = idx.item_ids_at([str(folder / "qloss.png")])
        assert "ocr" not in idx.item(item_id)["meta"]


def test_the_tesseract_engine_reads_a_slide_too(folder, tmp_path):
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed (apt-get install tesseract-ocr)")
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False, ocr="tesseract") as idx:
        idx.add([folder / "pricing.png"])
        assert by_name(idx, "higher prices loyal customers", mode="lexical") == ["pricing.png"]


def test_bad_images_cost_an_error_or_nothing_and_the_run_goes_on(tmp_path):
    docs = tmp_path / "bad"
    docs.mkdir()
    Image.new("RGB", (60_000, 1), (255, 255, 255)).save(docs / "strip.png")
    rng = random.Random(0)
    noise = Image.frombytes("RGB", (900, 700), rng.randbytes(900 * 700 * 3))
    noise.save(docs / "noise.png")
    good = slide(docs / "good.png", "Quarterly Planning", ["hire two engineers"])
    data = good.read_bytes()
    (docs / "corrupt.png").write_bytes(data[: len(data) // 3])
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False) as idx:
        report = idx.add([docs])
        errors = {Path(e["path"]).name: e["error"] for e in report.errors}
        assert set(errors) == {"corrupt.png"}, errors
        assert by_name(idx, "quarterly planning engineers")[0] == "good.png"


def test_reindex_ocr_reads_the_images_again_with_another_engine(folder, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(folder / "replay.png", docs)
    (docs / "notes.md").write_text("Minibatches and buffers in reinforcement learning.")
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False, ocr="off") as idx:
        idx.add([docs])
        assert by_name(idx, "transitions stored buffer", mode="lexical") != ["replay.png"]
    done = CliRunner().invoke(cli, ["reindex", "--ocr", "rapidocr", "--index",
                                    str(tmp_path / "idx"), "--json"])
    assert done.exit_code == 0, done.output
    with Index.open(tmp_path / "idx", create=False) as idx:
        assert idx.config.ocr == "rapidocr"
        assert by_name(idx, "transitions stored buffer", mode="lexical")[0] == "replay.png"
        assert idx.status()["ocr"] == "rapidocr"


def test_the_engine_that_read_the_pixels_is_recorded_and_a_change_is_said(folder, tmp_path):
    with Index.open(tmp_path / "idx", transcriber=None, tagger=False, ocr="rapidocr") as idx:
        assert idx.config.ocr_read_with == {}
        idx.add([folder / "qloss.png"])
        read_with = idx.config.ocr_read_with
        assert read_with["engine"] == "rapidocr" and read_with["version"]
        assert idx.status()["ocr_change"] is None
    # The index was read by an older release of the engine (here: another machine's).
    config = json.loads((tmp_path / "idx" / "config.json").read_text())
    config["ocr_read_with"]["version"] = "0.9.0"
    (tmp_path / "idx" / "config.json").write_text(json.dumps(config))
    with Index.open(tmp_path / "idx", create=False) as idx:
        change = idx.status()["ocr_change"]
        assert "rapidocr 0.9.0" in change and "reindex --ocr" in change
        assert "ocr-changed" in idx.check().codes()
    done = CliRunner().invoke(cli, ["reindex", "--ocr", "--index", str(tmp_path / "idx")])
    assert done.exit_code == 0, done.output
    with Index.open(tmp_path / "idx", create=False) as idx:
        assert idx.config.ocr_read_with == read_with
        assert idx.status()["ocr_change"] is None
        assert "ocr-changed" not in idx.check().codes()


def test_a_distributed_read_task_leaves_the_pixels_to_the_ocr_pool(folder, index):
    """On Ray, OCR is its own actor pool: a read task defers what has pixels to read (an
    image, a scanned page) and reads the rest; the OCR stage's reader reads it whole."""
    from anyfind.connectors.base import Blob
    from anyfind.indexer.prepare import OCR, Preparer

    read_task = Preparer(index.opened, defer_pixels=True)
    ocr_actor = Preparer(index.opened)
    for name, waits in [("qloss.png", True), ("invoice.pdf", True), ("notes.md", False)]:
        blob = Blob.from_bytes((folder / name).read_bytes(), path=name)
        item = read_task.prepare(blob, blob.ref, None, None)
        assert (item.status, item.waits_for) == (("deferred", OCR) if waits else ("ok", "")), name
        assert item.chunks == [] if waits else item.chunks
        if waits:
            again = ocr_actor.prepare(blob, blob.ref, None, None)
            assert again.status == "ok" and ("ocr" in again.meta or "ocr_pages" in again.meta)
