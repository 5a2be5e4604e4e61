"""RapidOCR: PP-OCRv4 detection and recognition as ONNX models shipped inside the
`rapidocr-onnxruntime` wheel (no download), run by onnxruntime.

Its recogniser was trained on Chinese and English and often writes a line of English
words without one space ("SOONHUATMACHINERY"): words matter to lexical search, so such a
line's characters come with their positions (the recogniser's CTC columns, mapped back
to the image) and a space goes where the gap between two characters is wider than
letters of one word leave (`spaced`; SPACE_GAP chosen on the SROIE receipts,
docs/BENCHMARKS.md). A line it wrote with spaces keeps its own.

The gate runs the detector alone on a small copy of the image (GATE_SIDE on its long
side): a photo without text costs one small detection, not a full read.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import numpy as np

from ..errors import require
from .base import MIN_CONFIDENCE, OcrEngine, OcrLine, bounded, clean, reading_order

GATE_SIDE = 640  # pixels: the detector's view for the text-presence gate
GATE_MIN_BOXES = 1
SPACE_GAP = 0.25  # a gap between two characters wider than this share of the line height
READ_SIDE = 2000  # the long side a full read runs at


class RapidEngine(OcrEngine):
    name = "rapidocr"
    gate_side = GATE_SIDE

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._ocr: Any = None
        self._gate: Any = None
        self._lock = threading.Lock()

    def _engine(self):
        if self._ocr is None:
            with self._lock:
                if self._ocr is None:
                    rapidocr = require("rapidocr_onnxruntime", "ocr")
                    options: dict[str, Any] = {"print_verbose": False}
                    if self.threads:
                        options["intra_op_num_threads"] = self.threads
                    ocr = rapidocr.RapidOCR(**options)
                    gate = copy.copy(ocr.text_det)  # the same session, no upscaling
                    gate.limit_side_len = 32
                    self._gate, self._ocr = gate, ocr
        return self._ocr

    def identity(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"engine": self.name, "version": version("rapidocr-onnxruntime"),
                "models": "PP-OCRv4 det + rec (ch), mobile v2 cls", "spaces": SPACE_GAP}

    def has_text(self, image: Any) -> bool:
        self._engine()
        small = bounded(image, GATE_SIDE)
        boxes, _ = self._gate(np.asarray(small)[:, :, ::-1])  # RapidOCR works in BGR
        return boxes is not None and len(boxes) >= GATE_MIN_BOXES

    def read(self, image: Any) -> list[OcrLine]:
        ocr = self._engine()
        image = bounded(image, READ_SIDE)
        width, height = image.size
        found, _ = ocr(np.asarray(image)[:, :, ::-1], return_word_box=True)
        lines = []
        for entry in found or []:
            box, text, confidence = entry[0], entry[1], float(entry[2])
            if confidence < MIN_CONFIDENCE:
                continue
            if len(entry) >= 5 and entry[3] and entry[4] and " " not in text.strip():
                # a line the recogniser wrote without a space: put them back from the gaps
                # (where it wrote some, its spaces are better than the gaps: a wide letter
                # leaves a gap the average letter box does not cover)
                text = spaced(entry[4], entry[3], box)
            text = clean(text)
            if not text:
                continue
            xs, ys = [p[0] for p in box], [p[1] for p in box]
            lines.append(OcrLine(text, (max(0.0, min(xs) / width), max(0.0, min(ys) / height),
                                        min(1.0, max(xs) / width), min(1.0, max(ys) / height)),
                                 confidence))
        return reading_order(lines)


def spaced(chars: list[str], boxes: list[list[list[float]]], line_box: list[list[float]]
           ) -> str:
    """The line's characters joined, a space where two sit further apart than letters of
    one word do: the recogniser places each character at its CTC column (`boxes`: a box
    of the line's average letter width around each), so a space it did not write still
    shows as a gap wider than SPACE_GAP of the line's height."""
    ys = [p[1] for p in line_box]
    height = max(ys) - min(ys)
    out: list[str] = []
    previous_end: float | None = None
    for char, quad in zip(chars, boxes, strict=False):
        xs = [p[0] for p in quad]
        if char == " ":
            out.append(" ")
            previous_end = None
            continue
        if previous_end is not None and min(xs) - previous_end > SPACE_GAP * height:
            out.append(" ")
        out.append(char)
        previous_end = max(xs)
    return "".join(out)
