"""Streaming decode of any audio (or a video's audio track) to 16 kHz mono float32 with PyAV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExtractionError, require

SAMPLE_RATE = 16_000
BLOCK_SECONDS = 30.0
# A strict decode that yields less than this share of the declared duration is truncated.
_MIN_DECODED_SHARE = 0.5


def _open(path: str | Path) -> Any:
    """Open a container, turning every way of failing into an ExtractionError."""
    av = require("av", "audio")
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ExtractionError(f"{p.name}: cannot read ({exc.strerror})") from exc
    if size == 0:
        raise ExtractionError(f"{p.name}: empty file")
    try:
        return av.open(str(p), mode="r", metadata_errors="replace")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise ExtractionError(f"{p.name}: not a readable audio or video file ({exc})") from exc


def _audio_stream(container: Any) -> Any | None:
    if not container.streams.audio:
        return None
    return container.streams.best("audio") or container.streams.audio[0]


def _duration(container: Any, stream: Any | None) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000  # AV_TIME_BASE
    if stream is not None and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def probe(path: str | Path) -> dict[str, Any]:
    """Container facts without decoding: duration (s, None if unknown), codec, sample_rate,
    channels and has_audio. Raises ExtractionError when the file cannot be opened."""
    with _open(path) as container:
        stream = _audio_stream(container)
        info: dict[str, Any] = {
            "duration": _duration(container, stream),
            "codec": None,
            "sample_rate": None,
            "channels": None,
            "has_audio": stream is not None,
        }
        if stream is not None:
            ctx = stream.codec_context
            info["codec"] = ctx.codec.canonical_name  # "mp3", not the decoder's "mp3float"
            info["sample_rate"] = ctx.sample_rate
            info["channels"] = ctx.layout.nb_channels if ctx.layout else ctx.channels
        return info


def decode_blocks(
    path: str | Path,
    block_seconds: float = BLOCK_SECONDS,
    sample_rate: int = SAMPLE_RATE,
    strict: bool = True,
) -> Iterator[np.ndarray]:
    """Yield the audio as mono float32 blocks of exactly block_seconds (the last one shorter).

    Memory stays at about one block whatever the file's length. strict=True raises
    ExtractionError on a corrupt packet or a file far shorter than its header declares
    (truncation); strict=False skips bad packets and yields what decodes.
    """
    av = require("av", "audio")
    block = int(block_seconds * sample_rate)
    if block <= 0:
        raise ValueError("block_seconds must be positive")
    name = Path(path).name
    container = _open(path)
    try:
        stream = _audio_stream(container)
        if stream is None:
            raise ExtractionError(f"{name}: no audio track")
        pending: list[np.ndarray] = []
        n_pending = 0
        total = 0
        for samples in _decoded_samples(av, container, stream, sample_rate, strict, name):
            pending.append(samples)
            n_pending += samples.size
            if n_pending >= block:
                joined = np.concatenate(pending)
                cut = (n_pending // block) * block
                for i in range(0, cut, block):
                    yield joined[i : i + block]
                rest = joined[cut:]
                pending, n_pending = ([rest] if rest.size else []), rest.size
                total += cut
        if n_pending:
            yield np.concatenate(pending)
            total += n_pending
        declared = _duration(container, stream)
        decoded = total / sample_rate
        if strict and declared and declared > 2.0 and decoded < _MIN_DECODED_SHARE * declared:
            raise ExtractionError(
                f"{name}: truncated (decoded {decoded:.1f} s of {declared:.1f} s declared)"
            )
    finally:
        container.close()


def _decoded_samples(
    av: Any, container: Any, stream: Any, sample_rate: int, strict: bool, name: str
) -> Iterator[np.ndarray]:
    """1-D float32 arrays at sample_rate, in order; flushes decoder and resampler."""
    resampler = None
    setup: tuple | None = None
    decoded = 0.0

    def drain(frame: Any) -> Iterator[np.ndarray]:
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1)

    try:
        # demux() ends with an empty packet whose decode() flushes the decoder.
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                if strict:
                    raise ExtractionError(
                        f"{name}: corrupt or truncated audio after {decoded:.1f} s ({exc})"
                    ) from exc
                continue
            for frame in frames:
                # Some streams change layout or rate midway; a resampler is fixed to one input.
                key = (frame.format.name, frame.layout.name, frame.sample_rate)
                if key != setup:
                    if resampler is not None:
                        yield from drain(None)
                    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
                    setup = key
                decoded += frame.samples / (frame.sample_rate or sample_rate)
                yield from drain(frame)
    except av.error.FFmpegError as exc:
        if strict:
            raise ExtractionError(f"{name}: unreadable after {decoded:.1f} s ({exc})") from exc
    if resampler is not None:
        yield from drain(None)
