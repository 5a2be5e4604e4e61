"""Tesseract 5 (Debian's `tesseract-ocr` + `tesseract-ocr-eng`), through its command line:
one process per image, its TSV output read back as words with boxes and confidences,
grouped into its own lines. It keeps the spaces between words; it reads dark text on a
light ground best (white titles on coloured slides it can miss)."""

from __future__ import annotations

import io
import shutil
import subprocess
from typing import Any

from ..errors import ConfigError
from .base import MIN_CONFIDENCE, OcrEngine, OcrLine, bounded, clean, reading_order

READ_SIDE = 2560
TIMEOUT_S = 120.0  # one image; the item gets an error past it


class TesseractEngine(OcrEngine):
    name = "tesseract"

    def __init__(self, language: str = "eng", binary: str | None = None):
        self.language = language
        self.binary = binary or shutil.which("tesseract")
        if self.binary is None:
            raise ConfigError("the tesseract OCR engine needs the `tesseract` command "
                              "(Debian: apt-get install tesseract-ocr tesseract-ocr-eng)")

    def identity(self) -> dict[str, Any]:
        done = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                              timeout=30)
        first = (done.stdout or done.stderr).splitlines()[:1]
        return {"engine": self.name, "version": first[0] if first else "",
                "language": self.language}

    def read(self, image: Any) -> list[OcrLine]:
        image = bounded(image, READ_SIDE)
        width, height = image.size
        png = io.BytesIO()
        image.save(png, format="PNG", compress_level=1)
        try:
            done = subprocess.run([self.binary, "stdin", "stdout", "-l", self.language,
                                   "--psm", "3", "tsv"], input=png.getvalue(),
                                  capture_output=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"tesseract took over {TIMEOUT_S:g} s") from None
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode(errors="replace").strip()[-300:])
        return reading_order(lines_of(done.stdout.decode("utf-8", "replace"), width, height))


def lines_of(tsv: str, width: int, height: int) -> list[OcrLine]:
    """Tesseract's TSV (level 5 rows are words) grouped by (block, paragraph, line)."""
    grouped: dict[tuple[str, str, str], list[tuple[str, float, int, int, int, int]]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        try:
            left, top, w, h = (int(c) for c in cols[6:10])
            conf = float(cols[10]) / 100
        except ValueError:
            continue
        grouped.setdefault((cols[2], cols[3], cols[4]), []).append(
            (cols[11], conf, left, top, left + w, top + h))
    lines = []
    for words in grouped.values():
        text = clean(" ".join(w[0] for w in words))
        confidence = sum(w[1] for w in words) / len(words)
        if not text or confidence < MIN_CONFIDENCE:
            continue
        x0, y0 = min(w[2] for w in words), min(w[3] for w in words)
        x1, y1 = max(w[4] for w in words), max(w[5] for w in words)
        lines.append(OcrLine(text, (x0 / width, y0 / height, x1 / width, y1 / height),
                             confidence))
    return lines
