"""RapidOCR: PP-OCRv4 detection and recognition as ONNX models shipped inside the
`rapidocr-onnxruntime` wheel (no download), run by onnxruntime.

Its recogniser was trained on Chinese and English and often writes a line of English
words without one space ("SOONHUATMACHINERY"): words matter to lexical search, so such a
line's characters come with their positions (the recogniser's CTC columns, mapped back
to the image) and a space goes where the gap between two characters is wider than
letters of one word leave (`spaced`; SPACE_GAP chosen on the SROIE receipts,
docs/BENCHMARKS.md). In a line it wrote with spaces, only long runs are split.

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

GATE_SIDE = 512  # pixels: the detector's view for the text-presence gate (640: 1.6x slower)
GATE_MAX_HEIGHT = 0.15  # of the small copy's long side: a taller box is not a line
SPACE_GAP = 0.25  # a gap between two characters wider than this share of the line height
GLUED_RUN = 10  # characters without a space, in a line with spaces, that may be split
READ_SIDE = 1600  # the long side a full read runs at (2000: 20 % slower, no more words read)


def cuda_available() -> bool:
    """Whether onnxruntime here can run on a GPU (the onnxruntime-gpu build, a device)."""
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


class RapidEngine(OcrEngine):
    name = "rapidocr"

    def __init__(self, threads: int | None = 1):
        # One thread a session: the pipeline reads on several workers at once (two workers
        # of one thread read 1.4 slides/s here, of two threads each 0.9: they contend).
        # None: onnxruntime's default (every core), for one reader alone.
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
                    if cuda_available():  # onnxruntime-gpu on a GPU machine: all three models
                        options.update(det_use_cuda=True, cls_use_cuda=True, rec_use_cuda=True)
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
        """Whether the detector, on a small copy, finds boxes shaped like lines of text:
        one clearly wider than tall, or a few that lean that way (short words). Soft
        shapes in photos (a cloud, a blurred ball) give the detector roundish boxes."""
        self._engine()
        small = bounded(image, GATE_SIDE)
        boxes, _ = self._gate(np.asarray(small)[:, :, ::-1])  # RapidOCR works in BGR
        if boxes is None or not len(boxes):
            return False
        tallest = GATE_MAX_HEIGHT * max(small.size)
        shapes = [(float(np.linalg.norm(q[0] - q[1])), float(np.linalg.norm(q[0] - q[3])))
                  for q in boxes]
        lines = [(w, h) for w, h in shapes if 0 < h <= tallest]
        return (any(w >= 2.0 * h for w, h in lines)
                or sum(w >= 1.2 * h for w, h in lines) >= 3)

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
            if len(entry) >= 5 and entry[3] and entry[4]:
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
    shows as a gap wider than SPACE_GAP of the line's height. Where it wrote spaces, only
    runs of GLUED_RUN characters or more are split: a wide letter ("m") leaves a gap the
    average box does not cover, which would cut a word ("tem poral"), while ten letters
    without a space are mostly words glued together ("fromtheHarbour")."""
    ys = [p[1] for p in line_box]
    height = max(ys) - min(ys)
    lefts = [min(p[0] for p in quad) for quad in boxes]
    rights = [max(p[0] for p in quad) for quad in boxes]
    wrote_spaces = " " in "".join(chars).strip()
    out: list[str] = []
    start = 0
    for end in [*[i for i, c in enumerate(chars) if c == " "], len(chars)]:
        run = range(start, min(end, len(boxes)))
        split = not wrote_spaces or len(run) >= GLUED_RUN
        for i in run:
            if (split and i > start
                    and lefts[i] - rights[i - 1] > SPACE_GAP * height):
                out.append(" ")
            out.append(chars[i])
        out.extend(chars[min(end, len(boxes)):end + 1])  # the written space, if any
        start = end + 1
    return "".join(out)
