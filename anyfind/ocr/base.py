"""What an OCR engine is: pixels in, lines of text out, each with its box and confidence.

An engine reads one image at a time (`read`), and says cheaply whether an image holds
any text at all (`has_text`): photos without text must cost little, so the pipeline asks
the gate first and reads only what it lets through. Boxes are normalised to the image
(0..1, x0 y0 x1 y1), so they hold for any size the image is shown at.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

MAX_SIDE = 2560  # pixels: the long side an image is read at (downscaled before detection)
MIN_CONFIDENCE = 0.5  # lines read with less are dropped (noise read as letters)


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "box": [round(v, 4) for v in self.box],
                "conf": round(self.confidence, 3)}


class OcrEngine(ABC):
    """One OCR engine. Subclasses set `name` and implement `read` (and `has_text` when
    they have something cheaper than reading)."""

    name: str = ""

    def identity(self) -> dict[str, Any]:
        """What makes its output what it is (engine, models, versions): kept in the index
        config, so a different engine is noticed and `reindex --ocr` reads again."""
        return {"engine": self.name}

    def has_text(self, image: Any) -> bool:
        """Whether `image` holds text worth reading (the gate)."""
        return bool(self.read(image))

    @abstractmethod
    def read(self, image: Any) -> list[OcrLine]:
        """The lines of text in a PIL image, in reading order."""


def bounded(image: Any, max_side: int = MAX_SIDE) -> Any:
    """An RGB copy no larger than `max_side` on its long side (memory and time bound)."""
    image = image.convert("RGB") if image.mode != "RGB" else image
    w, h = image.size
    if max(w, h) <= max_side:
        return image
    scale = max_side / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))))


def reading_order(lines: list[OcrLine]) -> list[OcrLine]:
    """Top to bottom, then left to right within a row (lines whose vertical centres are
    within half a line height share a row)."""
    if not lines:
        return lines
    heights = sorted(line.box[3] - line.box[1] for line in lines)
    tolerance = heights[len(heights) // 2] / 2
    ordered = sorted(lines, key=lambda line: (line.box[1] + line.box[3]) / 2)
    rows: list[list[OcrLine]] = []
    for line in ordered:
        centre = (line.box[1] + line.box[3]) / 2
        if rows and abs(centre - (rows[-1][0].box[1] + rows[-1][0].box[3]) / 2) <= tolerance:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda line: line.box[0])]


_SPACES = re.compile(r"\s+")


def clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()
