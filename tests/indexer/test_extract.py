"""The text-extraction layer, on real files built in tmp_path."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import anyfind.extract as ext
from anyfind.connectors.base import Blob, ItemRef
from anyfind.errors import ExtractionError
from anyfind.extract import Extracted, extract, modality_of, sniff_blob, sniff_media_type
from anyfind.extract.sniff import DOCX, EPUB

PAGES = ["Alpha appears on the first page.", "Beta is page two.", "Gamma closes page three."]


def blob_of(p: Path) -> Blob:
    return Blob(ItemRef(uri=p.as_uri(), path=str(p)), lambda: open(p, "rb"), local_path=p)


def write(tmp_path: Path, name: str, data: bytes) -> Blob:
    p = tmp_path / name
    p.write_bytes(data)
    return blob_of(p)


def pdf_bytes(pages: list[str], title: str | None = "Quarterly Report") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def png_bytes() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1 RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def pdf_file(tmp_path: Path) -> Path:
    p = tmp_path / "report.pdf"
    p.write_bytes(pdf_bytes(PAGES))
    return p


@pytest.fixture
def docx_file(tmp_path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Project Plan", level=1)
    document.add_paragraph("The first milestone is design.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Owner"
    table.cell(0, 1).text = "Due"
    merged = table.cell(1, 0).merge(table.cell(1, 1))
    merged.text = "Everyone, by Friday"
    document.add_paragraph("Closing remarks after the table.")
    p = tmp_path / "plan.docx"
    document.save(str(p))
    return p


# --- PDF ---------------------------------------------------------------------------------


def test_pdf_one_section_per_page(pdf_file: Path) -> None:
    result = extract(blob_of(pdf_file))
    assert result.modality == "text"
    assert [s.page for s in result.sections] == [1, 2, 3]
    for section, expected in zip(result.sections, PAGES, strict=True):
        assert section.text == expected
    assert result.title == "Quarterly Report"
    assert result.metadata["pages"] == 3


def test_pdf_without_text_has_no_sections(tmp_path: Path) -> None:
    result = extract(write(tmp_path, "scan.pdf", pdf_bytes(["", ""], title=None)))
    assert result.sections == []
    assert result.metadata == {"pages": 2}
    assert result.title is None


def test_truncated_pdf_is_an_error(tmp_path: Path) -> None:
    data = pdf_bytes(PAGES)
    with pytest.raises(ExtractionError, match="^PDF could not be parsed: "):
        extract(write(tmp_path, "cut.pdf", data[: len(data) // 2]))


def test_password_protected_pdf(tmp_path: Path) -> None:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf_bytes(PAGES)))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(ExtractionError, match="encrypted"):
        extract(write(tmp_path, "locked.pdf", out.getvalue()))


def test_owner_only_encryption_still_opens(tmp_path: Path) -> None:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf_bytes(PAGES)))
    writer.encrypt("", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    result = extract(write(tmp_path, "restricted.pdf", out.getvalue()))
    assert [s.page for s in result.sections] == [1, 2, 3]


# --- DOCX --------------------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_order(docx_file: Path) -> None:
    result = extract(blob_of(docx_file))
    paragraphs = result.text.split("\n\n")
    assert paragraphs == [
        "Project Plan",
        "The first milestone is design.",
        "Owner",
        "Due",
        "Everyone, by Friday",  # the merged cell once, not once per spanned column
        "Closing remarks after the table.",
    ]
    assert result.title == "Project Plan"


def test_docx_title_from_core_properties(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Official Title"
    document.add_heading("Some Heading", level=1)
    p = tmp_path / "titled.docx"
    document.save(str(p))
    assert extract(blob_of(p)).title == "Official Title"


# --- HTML --------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="iso-8859-1"><title>Caf\xe9 news</title>
<style>body { color: red }</style><script>var tracking = "secret";</script></head>
<body>
<header><a href="/">Home</a> | <a href="/about">About</a></header>
<nav><ul><li>Menu item</li></ul></nav>
<article>
  <header><h1>Le caf\xe9</h1></header>
  <p>First <b>bold</b> paragraph,
     wrapped over lines.</p>
  <ul><li>one</li><li>two</li></ul>
  <table><tr><th>Name</th><td>Value</td></tr></table>
  <!-- a comment -->
</article>
<aside>Related links</aside>
<footer>Copyright</footer>
<noscript>Enable JS</noscript>
</body></html>
"""


def test_html_main_text_without_boilerplate(tmp_path: Path) -> None:
    result = extract(write(tmp_path, "page.html", HTML.encode("latin-1")))
    assert result.title == "Café news"
    assert result.text.split("\n\n") == [
        "Le café",
        "First bold paragraph, wrapped over lines.",
        "one",
        "two",
        "Name",
        "Value",
    ]
    for junk in ("tracking", "color", "Menu item", "Home", "Related", "Copyright", "Enable JS"):
        assert junk not in result.text
    assert result.metadata["language"] == "fr"


def test_html_title_falls_back_to_h1(tmp_path: Path) -> None:
    data = b"<html><body><h1>Heading Title</h1><div>text<br>more</div></body></html>"
    result = extract(write(tmp_path, "x.htm", data))
    assert result.title == "Heading Title"
    assert result.text == "Heading Title\n\ntext\nmore"


# --- text --------------------------------------------------------------------------------


def test_markdown_title_and_newlines(tmp_path: Path) -> None:
    data = (
        b"Intro line\r\n\r\n```sh\r\n# not a heading\r\n```\r\n\r\n# Real Title #\r\n\r\nBody\r\n"
    )
    result = extract(write(tmp_path, "notes.md", data))
    assert result.title == "Real Title"
    assert "\r" not in result.text
    assert result.text.startswith("Intro line\n\n```sh")


def test_markdown_title_from_front_matter(tmp_path: Path) -> None:
    blob = write(tmp_path, "post.md", b'---\ntitle: "From YAML"\ntags: [a]\n---\n# Heading\n')
    assert extract(blob).title == "From YAML"
    untitled = write(tmp_path, "page.md", b"---\nauthor: me\n---\nSetext Title\n============\n")
    assert extract(untitled).title == "Setext Title"


def test_plain_text_has_no_title(tmp_path: Path) -> None:
    result = extract(write(tmp_path, "script.py", b"# a comment, not a title\nprint(1)\n"))
    assert result.title is None
    assert result.text == "# a comment, not a title\nprint(1)\n"


TEXT = "Grüße aus München. Ça va très bien, merci. Hello world!\n" * 3


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-16"),  # with BOM
        TEXT.encode("utf-16-le"),
        TEXT.encode("utf-16-be"),
        TEXT.encode("utf-8-sig"),
        TEXT.encode("latin-1"),
        TEXT.encode("cp1252"),
    ],
    ids=["utf16-bom", "utf16le", "utf16be", "utf8-bom", "latin1", "cp1252"],
)
def test_text_encodings(tmp_path: Path, data: bytes) -> None:
    blob = write(tmp_path, "letter.txt", data)
    assert sniff_blob(blob) == "text/plain"
    assert extract(blob).text == TEXT


def test_short_latin1_text(tmp_path: Path) -> None:
    assert extract(write(tmp_path, "menu.txt", "café crème".encode("latin-1"))).text == "café crème"


def test_invalid_utf8_is_replaced_not_rejected(tmp_path: Path) -> None:
    data = "Grüße aus München — ok.\n".encode() * 3 + b"a stray \xff byte\n"
    result = extract(write(tmp_path, "broken.txt", data))
    assert result.text.startswith("Grüße aus München")
    assert "a stray \ufffd byte" in result.text


def test_whitespace_only_text_has_no_sections(tmp_path: Path) -> None:
    assert extract(write(tmp_path, "blank.txt", b"  \n\n\t\n")).sections == []


# --- errors ------------------------------------------------------------------------------


def test_binary_junk_named_txt(tmp_path: Path) -> None:
    blob = write(tmp_path, "junk.txt", random.Random(7).randbytes(4096))
    assert sniff_blob(blob) == "application/octet-stream"
    with pytest.raises(ExtractionError, match="binary"):
        extract(blob)
    with pytest.raises(ExtractionError, match="binary"):  # even when told it is text
        extract(blob, "text/plain")


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="empty file"):
        extract(write(tmp_path, "empty.pdf", b""))
    with pytest.raises(ExtractionError, match="empty file"):
        extract(Blob.from_bytes(b""), "text/plain")


def test_unreadable_file_is_an_extraction_error(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="could not read"):
        extract(blob_of(tmp_path / "vanished.txt"))


def test_parser_exceptions_become_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(blob: Blob, media_type: str, ctx: object | None) -> Extracted:
        raise ValueError("bad\nthing")

    monkeypatch.setattr(ext, "_extractors", dict(ext._extractors))
    ext.register_extractor("application/x-test", broken)
    with pytest.raises(ExtractionError) as info:
        extract(Blob.from_bytes(b"data"), "application/x-test")
    assert str(info.value) == "application/x-test could not be parsed: ValueError: bad thing"


def test_ctx_is_passed_through_and_family_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, object]] = []

    def fake(blob: Blob, media_type: str, ctx: object | None) -> Extracted:
        seen.append((media_type, ctx))
        return Extracted(modality="image")

    monkeypatch.setattr(ext, "_extractors", dict(ext._extractors))
    ext.register_extractor("image/*", fake)
    ctx = object()
    assert extract(Blob.from_bytes(png_bytes(), "pic.jpg"), ctx=ctx).modality == "image"
    assert seen == [("image/png", ctx)]


def test_extractor_module_not_there_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ext, "_extractors", dict(ext._extractors))
    ext.register_extractor("image/*", "anyfind.extract._not_written_yet:extract_image")
    with pytest.raises(ExtractionError, match=r"^no extractor for image/png$"):
        extract(Blob.from_bytes(png_bytes(), "pic.png"))


def test_unsupported_type() -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(ExtractionError, match="no extractor for application/zip"):
        extract(Blob.from_bytes(data.getvalue(), "archive.zip"))


# --- sniffing ----------------------------------------------------------------------------


def test_sniff_by_content_not_name(tmp_path: Path, pdf_file: Path, docx_file: Path) -> None:
    assert sniff_blob(write(tmp_path, "notes.txt", pdf_file.read_bytes())) == "application/pdf"
    pdf_as_txt = extract(write(tmp_path, "a.txt", pdf_file.read_bytes()))
    assert [s.page for s in pdf_as_txt.sections] == [1, 2, 3]
    assert sniff_blob(write(tmp_path, "photo.jpg", png_bytes())) == "image/png"
    assert sniff_blob(write(tmp_path, "doc.zip", docx_file.read_bytes())) == DOCX
    assert extract(write(tmp_path, "doc.bin", docx_file.read_bytes())).title == "Project Plan"


def test_sniff_zip_family() -> None:
    def zipped(entries: dict[str, str]) -> bytes:
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as zf:
            for name, body in entries.items():
                zf.writestr(name, body)
        return data.getvalue()

    epub = zipped({"mimetype": EPUB, "META-INF/container.xml": "<x/>"})
    assert sniff_blob(Blob.from_bytes(epub, "book")) == EPUB
    pptx = zipped({"[Content_Types].xml": "<x/>", "ppt/presentation.xml": "<x/>"})
    assert sniff_blob(Blob.from_bytes(pptx, "deck.zip")).endswith("presentationml.presentation")
    plain = zipped({"readme.txt": "hi"})
    assert sniff_blob(Blob.from_bytes(plain, "fake.docx")) == "application/zip"


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"# Title\n", "README.md", "text/markdown"),
        (b"import os\n", "tool.py", "text/x-python"),
        (b"a,b\n1,2\n", "data.csv", "text/csv"),
        (b'{"a": 1}', "data.json", "application/json"),
        (b"a: 1\n", "conf.yml", "application/yaml"),
        (b"[tool]\n", "pyproject.toml", "application/toml"),
        (b"BMW and MZ are just words\n", "cars.txt", "text/plain"),  # not image/bmp
        (b"<!DOCTYPE html><html></html>", "index", "text/html"),
        (b"#!/usr/bin/env python3\nprint(1)\n", "run", "text/x-python"),
        (b"plain words", "noext", "text/plain"),
        (bytes(range(256)) * 4, "x.txt", "application/octet-stream"),
        (b"", "x.txt", "application/x-empty"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "a.bin", "audio/wav"),
        (b"fLaC\x00\x00\x00\x22", "a", "audio/flac"),
        (b"\x1aE\xdf\xa3\x93B\x82\x88matroska", "v", "video/x-matroska"),
    ],
)
def test_sniff_media_type(head: bytes, name: str, expected: str) -> None:
    assert sniff_media_type(head, name) == expected


@pytest.mark.parametrize(
    ("media_type", "modality"),
    [
        ("image/png", "image"),
        ("image/heic", "image"),
        ("audio/x-wav", "audio"),
        ("audio/opus", "audio"),
        ("video/mp4", "video"),
        ("video/webm", "video"),
        ("text/x-python", "text"),
        ("text/html; charset=utf-8", "text"),
        ("application/pdf", "text"),
        (DOCX, "text"),
        ("application/json", "text"),
        ("application/zip", None),
        ("application/octet-stream", None),
        ("image/svg+xml", None),
    ],
)
def test_modality_of(media_type: str, modality: str | None) -> None:
    assert modality_of(media_type) == modality


# --- property ----------------------------------------------------------------------------

PREFIXES = [b"", b"%PDF-1.4\n", b"PK\x03\x04", b"<html><body>", b"\xff\xfe", b"\xef\xbb\xbf", b"# "]
NAMES = ["x.txt", "x.pdf", "x.html", "x.docx", "x.md", "x.json", "x"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=2048), name=st.sampled_from(NAMES))
def test_extract_never_raises_anything_else(prefix: bytes, body: bytes, name: str) -> None:
    with pytest.MonkeyPatch.context() as mp:  # keep other modules' extractors out of it
        own = {
            k: v
            for k, v in ext._extractors.items()
            if not k.startswith(("image", "audio", "video"))
        }
        mp.setattr(ext, "_extractors", own)
        try:
            result = extract(Blob.from_bytes(prefix + body, name))
        except ExtractionError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(result, Extracted)
