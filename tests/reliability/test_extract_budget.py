"""One item's extraction has a budget (extract/budget.py): a small PDF built to parse for
hours or to expand into millions of characters becomes that item's error, and the good
files beside it are committed and found."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from anyfind import Index
from anyfind.connectors.base import Blob
from anyfind.errors import ExtractionError
from anyfind.extract import extract
from anyfind.extract.budget import Budget, spending


def shared_stream_pdf(path: Path, pages: int, operators: int, text: str = "x") -> Path:
    """A PDF whose `pages` pages all draw one content stream of `operators` text
    operators: tiny on disk, each page parses the whole stream again."""
    ops = "BT /F1 9 Tf 10 10 Td " + f"({text}) Tj " * operators + "ET"
    stream = ops.encode()
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
    ]
    font = 4 + pages
    objects += [(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 3 0 R "
                 f"/Resources << /Font << /F1 {font} 0 R >> >> >>").encode()
                for _ in range(pages)]
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    path.write_bytes(bytes(out))
    return path


def test_a_pdf_slow_to_parse_stops_at_its_time_budget(tmp_path):
    pdf = shared_stream_pdf(tmp_path / "slow.pdf", pages=400, operators=4_000)
    assert pdf.stat().st_size < 100_000
    started = time.monotonic()
    with pytest.raises(ExtractionError, match=r"stopped reading \(page \d+ of 400\): over 1 s"):
        with spending(Budget(seconds=1.0)):
            extract(Blob.from_bytes(pdf.read_bytes(), path=pdf.name), "application/pdf")
    assert time.monotonic() - started < 10  # the budget, plus one page at most


def test_a_pdf_that_expands_stops_at_its_text_budget(tmp_path):
    pdf = shared_stream_pdf(tmp_path / "wide.pdf", pages=30, operators=200, text="word " * 40)
    with pytest.raises(ExtractionError, match=r"over 50,000 characters"):
        with spending(Budget(max_chars=50_000)):
            extract(Blob.from_bytes(pdf.read_bytes(), path=pdf.name), "application/pdf")


def test_the_run_commits_the_good_files_beside_a_slow_pdf(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.md").write_text("The lighthouse keeper lit the lamp at dusk.")
    (docs / "glacier.md").write_text("A glacier carves a valley over thousands of years.")
    shared_stream_pdf(docs / "slow.pdf", pages=400, operators=4_000)
    shared_stream_pdf(docs / "wide.pdf", pages=30, operators=200, text="word " * 40)
    with Index.open(tmp_path / "idx", tagger=False, transcriber=None, extract_seconds=1.0,
                    max_item_chars=200_000) as idx:
        report = idx.add([docs])
        assert report.added == 2 and report.failed == 2
        errors = {Path(e["path"]).name: e["error"] for e in report.errors}
        assert "over 1 s" in errors["slow.pdf"] and "characters" in errors["wide.pdf"]
        assert Path(idx.search("lighthouse keeper", k=1)[0].path).name == "lighthouse.md"
        assert Path(idx.search("glacier valley", k=1)[0].path).name == "glacier.md"
