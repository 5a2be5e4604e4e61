"""Audio and video items: probe the container, then transcribe with the context's Whisper."""

from __future__ import annotations

from typing import Any

from ..connectors.base import Blob
from ..errors import ExtractionError
from .base import Extracted


def extract_audio(blob: Blob, media_type: str | None, ctx: Any) -> Extracted:
    """Timed transcript segments of a recording (or a video's sound track).

    ctx.transcriber (an anyfind.audio.Transcriber, or anything with a compatible
    transcribe(path)) does the speech to text; without one the item cannot be indexed.
    """
    from .audio_decode import probe

    transcriber = getattr(ctx, "transcriber", None)
    with blob.local_path() as path:
        info = probe(path)
        if not info["has_audio"]:
            raise ExtractionError(f"{blob.ref.path}: no audio track")
        if transcriber is None:
            raise ExtractionError("audio needs a transcriber")
        transcript = transcriber.transcribe(path)
    return Extracted(
        modality="audio",
        segments=list(transcript.segments),
        metadata={
            "duration": transcript.duration or info["duration"],
            "language": transcript.language,
            "codec": info["codec"],
            "sample_rate": info["sample_rate"],
            "channels": info["channels"],
        },
    )
