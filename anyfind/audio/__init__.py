"""Audio support: streaming decode (PyAV), Whisper transcription, subtitles, chunking.

Submodules import their heavy backends (av, faster_whisper, ctranslate2) lazily.
"""

from __future__ import annotations

from ..extract.audio_decode import SAMPLE_RATE, decode_blocks, probe
from .chunking import group_segments
from .subtitles import to_srt, to_vtt
from .transcribe import Transcriber, Transcript
from .wer import normalize_words, wer

__all__ = [
    "SAMPLE_RATE",
    "Transcriber",
    "Transcript",
    "decode_blocks",
    "group_segments",
    "normalize_words",
    "probe",
    "to_srt",
    "to_vtt",
    "wer",
]
