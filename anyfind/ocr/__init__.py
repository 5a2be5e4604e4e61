"""OCR: the text inside images, scanned pages and video frames (docs/ARCHITECTURE.md).

Engines are named in a registry (entry-point group `anyfind.ocr`): `rapidocr` (PP-OCRv4
ONNX models shipped in its wheel, the default) and `tesseract` (the Debian command). The
index config says which (`ocr = auto | off | NAME`); `auto` is the first that can run
here. Engines are built once per process and shared by the extraction threads.
"""

from __future__ import annotations

import shutil
import threading
from importlib.util import find_spec

from ..registry import Registry
from .base import OcrEngine, OcrLine

__all__ = ["OcrEngine", "OcrLine", "engines", "ocr_engine", "resolve"]

engines: Registry = Registry("OCR engine", "anyfind.ocr")
engines.register("rapidocr", "anyfind.ocr.rapid:RapidEngine")
engines.register("tesseract", "anyfind.ocr.tesseract:TesseractEngine")

OFF = "off"
_built: dict[str, OcrEngine] = {}
_lock = threading.Lock()


def resolve(choice: str | None) -> str | None:
    """The engine `choice` names ("auto": the best one installed), None for off."""
    choice = (choice or "auto").strip().lower()
    if choice in (OFF, "none", "false"):
        return None
    if choice != "auto":
        engines.get(choice)  # a ConfigError naming the known ones
        return choice
    if find_spec("rapidocr_onnxruntime") is not None:
        return "rapidocr"
    if shutil.which("tesseract"):
        return "tesseract"
    return None


def ocr_engine(name: str) -> OcrEngine:
    """The process's one engine of this name."""
    with _lock:
        engine = _built.get(name)
        if engine is None:
            engine = _built[name] = engines.get(name)()
        return engine
