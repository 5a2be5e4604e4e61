"""The text an image shows, read by the index's OCR engine (ocr/, handed in through the
extract context): the gate first (a photo without text costs one small detection), then
the lines with their boxes. Reading never fails the image: an engine error is kept in
the result and the image is indexed by what else it has (tags, CLIP)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import one_line
from . import budget
from .base import ReadElsewhere

READ_SIDE = 2560  # the long side an image is decoded at for reading
MIN_SIDE = 8  # pixels: thinner than this holds no readable line


def read_pixels(engine: Any, image: Any, larger: Callable[[], Any] | None = None,
                where: str = "") -> dict[str, Any]:
    """{"engine", "lines": [{"text", "box", "conf"}]} (plus "gate": false when the
    detector saw no text, "error" when the engine failed). The gate looks at `image`;
    `larger()`, when given, is the same image decoded larger, read once the gate says
    there is text (a photo without any costs no large decode)."""
    result: dict[str, Any] = {"engine": engine.name, "lines": []}
    if min(image.size) < MIN_SIDE:
        result["gate"] = False
        return result
    budget.charge(0, where or "reading the image's text")
    try:
        if not engine.has_text(image):
            result["gate"] = False
            return result
        lines = engine.read(larger() if larger is not None else image)
    except ReadElsewhere:
        raise
    except Exception as exc:  # noqa: BLE001 (the image stays indexed without its text)
        result["error"] = one_line(exc, 200)
        return result
    result["lines"] = [line.to_json() for line in lines]
    budget.count(sum(len(line.text) for line in lines), where)
    return result


class _Elsewhere:
    """The OCR engine seen by a distributed read task when OCR has its own actor pool:
    meeting pixels to read sends the item there."""

    name = "elsewhere"

    def has_text(self, image: Any) -> bool:
        raise ReadElsewhere("the OCR engine runs in its own pool")

    read = has_text


ELSEWHERE = _Elsewhere()


def text_of(read: dict[str, Any] | None) -> str:
    """The read lines as one text, a line each."""
    return "\n".join(line["text"] for line in (read or {}).get("lines", []))
