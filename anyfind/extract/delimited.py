"""CSV and TSV: one paragraph per row, each value labelled with its column name."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from .base import Extracted, Section
from .text import decode_text, normalise_newlines

if TYPE_CHECKING:
    from ..connectors.base import Blob

SAMPLE = 16384
# A quoted field may be as long as the file (csv's default stops at 128 KiB, failing
# legitimate files with long notes or embedded documents); the file size cap bounds it.
FIELD_LIMIT = 2**31 - 1


def extract_delimited(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
    text, encoding = decode_text(blob.read())
    text = normalise_newlines(text)
    sample = text[:SAMPLE]
    delimiter = "\t" if media_type == "text/tab-separated-values" else _delimiter(sample)
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        return Extracted(metadata={"encoding": encoding})
    try:
        has_header = csv.Sniffer().has_header(sample)
    except csv.Error:
        has_header = True
    header = [h.strip() for h in rows[0]] if has_header else []
    body = rows[1:] if has_header else rows
    paragraphs = [_row(header, row) for row in body]
    # Rows are separated by blank lines, so chunks break between rows.
    joined = "\n\n".join(p for p in paragraphs if p)
    metadata = {"encoding": encoding, "rows": len(body), "columns": header or len(rows[0])}
    return Extracted(sections=[Section(joined)] if joined else [], metadata=metadata)


def _delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _row(header: list[str], row: list[str]) -> str:
    if not header:
        return " | ".join(c.strip() for c in row if c.strip())
    parts = []
    for i, value in enumerate(row):
        if value.strip():
            name = header[i] if i < len(header) and header[i] else f"column {i + 1}"
            parts.append(f"{name}: {value.strip()}")
    return "; ".join(parts)
