"""Loading every model a query can need, and running each once, before the first query
(a server at start-up): the first user does not pay for it."""

from __future__ import annotations

import tempfile
import wave
from pathlib import Path
from typing import TYPE_CHECKING

from .engine import Query, Searcher

if TYPE_CHECKING:
    from ..core import OpenIndex


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


def write_silence(path: Path, seconds: float = 0.5, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
