"""PPTX, EPUB, e-mail with attachments, CSV/TSV and notebooks, built with real libraries."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from anyfind.connectors.base import Blob
from anyfind.extract import extract, modality_of, sniff_blob
from anyfind.extract.sniff import EML, EPUB, IPYNB, PPTX


def blob(path) -> Blob:
    return Blob.from_bytes(path.read_bytes(), path=path.name)


def make_pptx(path):
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = "Quarterly review"
    s1 = deck.slides.add_slide(deck.slide_layouts[1])
    s1.shapes.title.text = "Sales"
    s1.placeholders[1].text = "Sales of umbrellas doubled during the rainy season."
    s1.notes_slide.notes_text_frame.text = "Mention the new umbrella factory."
    s2 = deck.slides.add_slide(deck.slide_layouts[5])
    s2.shapes.title.text = "Costs"
    table = s2.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    table.cell(0, 0).text, table.cell(0, 1).text = "Item", "Cost"
    table.cell(1, 0).text, table.cell(1, 1).text = "Shipping containers", "1200"
    deck.save(str(path))
    return path


def make_epub(path):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("id-1")
    book.set_title("The Lighthouse Keeper")
    book.set_language("en")
    book.add_author("M. Shore")
    chapters = []
    for i, text in enumerate(["The lamp is lit at dusk and trimmed at midnight.",
                              "Storms bring ships close to the rocks of the bay."], start=1):
        ch = epub.EpubHtml(title=f"Chapter {i}", file_name=f"ch{i}.xhtml", lang="en")
        ch.content = f"<html><body><h1>Chapter {i}</h1><p>{text}</p></body></html>"
        book.add_item(ch)
        chapters.append(ch)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)
    return path


def test_pptx(tmp_path):
    b = blob(make_pptx(tmp_path / "deck.pptx"))
    assert sniff_blob(b) == PPTX and modality_of(PPTX) == "text"
    out = extract(b)
    assert out.title == "Quarterly review" and out.metadata["slides"] == 2
    assert [s.page for s in out.sections] == [1, 2]
    assert "umbrellas doubled" in out.sections[0].text and "umbrella factory" in out.sections[0].text
    assert "Shipping containers | 1200" in out.sections[1].text


def test_epub(tmp_path):
    b = blob(make_epub(tmp_path / "book.epub"))
    assert sniff_blob(b) == EPUB and modality_of(EPUB) == "text"
    out = extract(b)
    assert out.title == "The Lighthouse Keeper" and out.metadata["author"] == "M. Shore"
    assert "lamp is lit at dusk" in out.text and "rocks of the bay" in out.text
    assert [s.page for s in out.sections][-2:] == [out.metadata["chapters"] - 1,
                                                    out.metadata["chapters"]]


def test_email_with_attachments(tmp_path):
    from makers import make_pdf

    pdf = make_pdf(tmp_path / "invoice.pdf", ["Invoice 77: three crates of oranges, 45 euros."])
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "Order update", "ana@example.org", "bo@example.org"
    msg.set_content("Hi Bo,\n\nThe oranges ship on Monday.\n\nAna")
    msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                       filename="invoice.pdf")
    msg.add_attachment(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, maintype="image", subtype="png",
                       filename="logo.png")
    path = tmp_path / "order.eml"
    path.write_bytes(bytes(msg))
    b = blob(path)
    assert sniff_blob(b) == EML and modality_of(EML) == "text"
    out = extract(b)
    assert out.title == "Order update" and out.metadata["from"] == "ana@example.org"
    assert "ship on Monday" in out.text
    # Attachments are child items (test_mail_children.py): named here, not inlined.
    assert "Attachments: invoice.pdf, logo.png" in out.text
    assert "three crates of oranges" not in out.text
    assert [(c.name, c.media_type) for c in out.children] == [
        ("invoice.pdf", "application/pdf"), ("logo.png", "image/png")]
    assert out.children[0].data == pdf.read_bytes()
    assert [a["name"] for a in out.metadata["attachments"]] == ["invoice.pdf", "logo.png"]


@pytest.mark.parametrize("name,data", [
    ("stock.csv", "product,colour,count\nkayak,red,3\npaddle,,12\n"),
    ("stock.tsv", "product\tcolour\tcount\nkayak\tred\t3\npaddle\t\t12\n"),
])
def test_csv_and_tsv_rows_as_text(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(data)
    out = extract(blob(path))
    assert out.text == "product: kayak; colour: red; count: 3\n\nproduct: paddle; count: 12"
    assert out.metadata["rows"] == 2


def test_notebook(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Penguin census\n\nCounting colonies by drone."),
                nbformat.v4.new_code_cell("colonies = load('antarctica.csv')\nlen(colonies)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="4200 noisy output\n")]
    path = tmp_path / "census.ipynb"
    path.write_text(nbformat.writes(nb))
    b = blob(path)
    assert sniff_blob(b) == IPYNB and modality_of(IPYNB) == "text"
    out = extract(b)
    assert out.title == "Penguin census"
    assert "Counting colonies by drone" in out.text and "load('antarctica.csv')" in out.text
    assert "noisy output" not in out.text


def test_broken_documents_are_item_errors(tmp_path):
    from anyfind.errors import ExtractionError

    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(ExtractionError, match="notebook"):
        extract(blob(tmp_path / "bad.ipynb"))


def test_documents_indexed_and_found(index, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    make_pptx(root / "deck.pptx")
    make_epub(root / "book.epub")
    (root / "stock.csv").write_text("product,colour,count\nkayak,red,3\n")
    report = index.add([root])
    assert (report.added, report.failed, report.skipped) == (3, 0, 0)
    hit = index.search("umbrella sales in the rain", k=1)[0]
    assert hit.path.endswith("deck.pptx") and hit.page == 1
    assert index.search("lighthouse lamp at dusk", k=1)[0].path.endswith("book.epub")
