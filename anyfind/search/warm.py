"""Loading every model a query can need, and running each once, before the first query
(a server at start-up): the first user does not pay for it."""

from __future__ import annotations

import logging
import os
import tempfile
import wave
from pathlib import Path
from typing import TYPE_CHECKING

from .engine import Query, Searcher

if TYPE_CHECKING:
    from ..core import OpenIndex

log = logging.getLogger("anyfind.server")


def warm(opened: OpenIndex) -> list[str]:
    """Names what was warmed: each space's vectors and encoder, the tagger, the transcriber."""
    warmed = []
    for name in opened.spaces:
        opened.vectors(name)
        warmed.append(f"space:{name}")
    try:
        Searcher(opened).search(Query(text="warm up", k=1))
    except Exception:  # noqa: BLE001 - an empty index still serves
        pass
    if _export_missing(opened):
        warmed.append("onnx export")
    if opened.config.tagger and opened.tagger is not None:
        from PIL import Image

        opened.tagger.tag([Image.new("RGB", (64, 64), "gray")])
        warmed.append("tagger")
    if opened.config.transcriber is not None:
        with tempfile.TemporaryDirectory(prefix="anyfind-warm-") as tmp:
            clip = Path(tmp) / "silence.wav"
            write_silence(clip)
            opened.transcriber.transcribe(str(clip))
        warmed.append("transcriber")
    return warmed


def _export_missing(opened: OpenIndex) -> bool:
    """A server whose queries went to torch for want of an ONNX export (a replica started
    from a copied config.json) makes the export once, now that torch is loaded anyway:
    its queries then run on onnxruntime, as the writer's do (docs/SCALE.md). Not where
    exports are off or the folder cannot be written; never fails the start."""
    from ..encoders.query import exports_off

    torch = [n for n, s in opened.spaces.items() if s.queries_use_torch]
    if not torch or exports_off() or not os.access(opened.path, os.W_OK):
        return False
    try:
        results = opened.export_onnx(spaces=torch)
    except Exception as exc:  # noqa: BLE001 (queries stay on torch; the log says why)
        log.warning("no ONNX export for this server's queries: %s", exc)
        return False
    for r in results:
        if r.status != "exported":
            log.warning("ONNX export of space '%s' %s: %s", r.space, r.status, r.reason)
    return any(r.status == "exported" for r in results)


def write_silence(path: Path, seconds: float = 0.5, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
