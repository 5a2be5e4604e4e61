"""Video items: what is shown (kept frames, read by OCR) and what is said (subtitles beside
the file, else the transcriber), each with its time.

The picture and the sound are independent: a video without sound is its frames, a
sound-only MP4 its transcript; a corrupt stretch of the picture costs the frames after
it (recorded in `frames_error`), never the transcript. The frame work has a deadline
from the file's size (a file that never ends, a header that lies about its duration),
on top of the item's budget for everything else.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..connectors.base import Blob
from ..errors import ExtractionError, one_line, require
from . import budget
from .base import Extracted, TimedSegment
from .pixels_text import read_pixels
from .video_frames import Frame, samples, select

FRAME_SECONDS_PER_MB = 0.5  # the frame work's deadline: this per MB of file, ...
FRAME_SECONDS_BASE = 60.0  # ... plus this (a 1-hour 720p lecture is ~200-600 MB)
READERS = 2  # kept frames read by OCR at once, beside the decoding
BAD_PACKETS = 50  # corrupt packets in a row after which the rest of the picture is given up


def extract_video(blob: Blob, media_type: str | None, ctx: Any) -> Extracted:
    from .audio_decode import probe

    subtitles = sidecar_subtitles(blob.ref.metadata.get("subtitles") or [])
    given = getattr(ctx, "video_frames", None)  # decoded by a CPU task (a Ray frames stage)
    with blob.local_path() as path:
        info = probe(path)
        if given is not None:
            frames, frames_error, picture = given.unpacked(ctx)
        else:
            frames, frames_error, picture = read_frames(path, ctx, blob.ref.size)
        segments: list[TimedSegment] = []
        metadata: dict[str, Any] = {"duration": info["duration"], "codec": info["codec"]}
        transcriber = getattr(ctx, "transcriber", None)
        if subtitles is not None:
            segments, metadata["transcript_from"] = subtitles
        elif info["has_audio"] and transcriber is not None:
            try:
                transcript = transcriber.transcribe(path)
            except ExtractionError as exc:  # the frames stand without it (or it is the error)
                if not frames:
                    raise
                metadata["transcript_error"] = one_line(exc, 200)
            else:
                segments = list(transcript.segments)
                metadata.update(duration=transcript.duration or info["duration"],
                                language=transcript.language, transcript_from="speech")
    if not frames and not segments:
        if frames_error:
            raise ExtractionError(frames_error)
        if not info["has_audio"] and not picture:
            raise ExtractionError("no picture and no sound")
        if info["has_audio"] and transcriber is None and not picture:
            raise ExtractionError("audio needs a transcriber")
    metadata["video"] = picture
    if frames_error:
        metadata["frames_error"] = frames_error
    return Extracted(modality="video", segments=segments, frames=frames, metadata=metadata)


def read_frames(path: Path, ctx: Any, size: int | None, shrink: bool = True
                ) -> tuple[list[Frame], str | None, dict[str, Any] | None]:
    """The kept frames (read by OCR when the context has an engine, then shrunk to what
    the image models and thumbnails need; `shrink` False: as decoded, packed as PNG bytes
    for OCR elsewhere),
    the error that cut the picture short (None), and the picture's facts (None: no video
    stream)."""
    import time

    av = require("av", "audio")
    allowed = FRAME_SECONDS_BASE + FRAME_SECONDS_PER_MB * (size or 0) / 1e6
    deadline = time.monotonic() + allowed
    budget.current().extend(allowed)  # OCR of the frames charges the item's budget
    engine = getattr(ctx, "ocr", None)
    need = getattr(ctx, "image_decode_size", None)
    error: list[str] = []

    # Kept frames are read on READERS threads while the picture goes on decoding (the
    # engine's sessions run one thread each); at most READERS + 1 wait full size.
    pool = ThreadPoolExecutor(READERS, thread_name_prefix="anyfind-frames") if engine else None
    slots = threading.BoundedSemaphore(READERS + 1)
    pending: list[Future] = []

    def finish(frame: Frame) -> None:
        try:
            if engine is not None:
                frame.meta["ocr"] = _read(engine, frame.image, frame)
            # hundreds are held until chunked: small, or packed losslessly
            frame.image = shrunk(frame.image, need) if shrink else _png(frame.image)
        finally:
            slots.release()

    def keep(frame: Frame) -> None:
        slots.acquire()
        if pool is None:
            finish(frame)
        else:
            pending.append(pool.submit(finish, frame))

    try:
        kept, picture = _decode_and_select(av, path, keep, deadline, allowed, error)
        for future in pending:
            future.result()  # an engine's ReadElsewhere (a distributed read task) too
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return kept, (error[0] if error else None), picture


class DecodedFrames:
    """A video's kept frames decoded in one process and finished in another (on Ray: a
    CPU task decodes and selects, an OCR actor reads them, the transcriber's actor builds
    the item): full-size pictures as lossless PNG (what OCR reads must not depend on
    where it ran), what OCR read in each, the error that cut the picture short, and the
    picture's facts."""

    def __init__(self, frames: list[Frame], error: str | None, picture: dict[str, Any] | None):
        self.frames = frames  # each image: PNG bytes (read_frames with shrink=False)
        self.error, self.picture = error, picture

    @property
    def read(self) -> bool:
        """Whether OCR has read every frame."""
        return all("ocr" in f.meta for f in self.frames)

    def read_with(self, engine: Any) -> None:
        """OCR each frame not read yet (an OCR actor)."""
        for f in self.frames:
            if "ocr" not in f.meta:
                f.meta["ocr"] = _read(engine, _image(f.image), f)

    def unpacked(self, ctx: Any) -> tuple[list[Frame], str | None, dict[str, Any] | None]:
        """As read_frames gives them: pictures decoded and shrunk, read by OCR if they
        were not (the context's engine, when it has one)."""
        engine = getattr(ctx, "ocr", None)
        need = getattr(ctx, "image_decode_size", None)
        out = []
        for f in self.frames:
            image, meta = _image(f.image), dict(f.meta)
            if engine is not None and "ocr" not in meta:
                meta["ocr"] = _read(engine, image, f)
            out.append(Frame(f.start, f.end, shrunk(image, need), f.why, meta))
        return out, self.error, self.picture


def _read(engine: Any, image: Any, frame: Frame) -> dict[str, Any]:
    """What OCR reads in a kept frame (its errors name the frame's time)."""
    return read_pixels(engine, image, where=f"the frame at {frame.start:.0f} s")


def _png(image: Any) -> bytes:
    import io

    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # fast; slides compress well
    return out.getvalue()


def _image(png: bytes) -> Any:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        return img.convert("RGB")


def decode_frames(blob: Blob) -> DecodedFrames | None:
    """A video's kept frames, full size and not read (a CPU task's share of the work);
    None when the file has no picture to decode."""
    with blob.local_path() as path:
        frames, error, picture = read_frames(path, None, blob.ref.size, shrink=False)
    return DecodedFrames(frames, error, picture) if picture is not None else None


def _decode_and_select(av: Any, path: Path, keep: Any, deadline: float, allowed: float,
                       error: list[str]) -> tuple[list[Frame], dict[str, Any] | None]:
    """Decode the picture and keep its frames (video_frames.select); what cut it short
    goes to `error`. ([], None) when there is no picture."""
    import time

    with av.open(str(path), metadata_errors="replace") as container:
        stream = next((s for s in container.streams.video
                       if not (s.disposition & av.stream.Disposition.attached_pic)), None)
        if stream is None:  # sound only (an attached cover picture is not a picture)
            return [], None
        codec = stream.codec_context
        codec.thread_type = "AUTO"
        codec.skip_frame = "NONREF"  # B-frames: nothing refers to them, never looked at
        picture = {"width": codec.width, "height": codec.height, "codec": codec.name,
                   "fps": round(float(stream.average_rate), 3) if stream.average_rate else None}
        duration = (container.duration / 1e6 if container.duration and container.duration > 0
                    else None)
        last = [0.0]  # the time of the last frame decoded

        def decoded():
            bad = 0
            for packet in container.demux(stream):
                if time.monotonic() > deadline:
                    error.append(f"stopped looking at the picture after {allowed:.0f} s "
                                 f"({FRAME_SECONDS_BASE:g} s + {FRAME_SECONDS_PER_MB:g} s/MB)")
                    return
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    bad += 1
                    if bad >= BAD_PACKETS:
                        at = (f" after {float(packet.pts * stream.time_base):.1f} s"
                              if packet.pts is not None else "")
                        error.append(f"corrupt picture{at}: {one_line(exc, 120)}")
                        return
                    continue
                bad = 0
                for frame in frames:
                    last[0] = frame.time if frame.time is not None else last[0]
                    yield frame

        try:
            kept = select(samples(decoded()), duration, on_keep=keep)
        except av.error.FFmpegError as exc:
            error.append(f"the picture could not be decoded: {one_line(exc, 160)}")
            return [], picture
    if kept:  # the last frame lasts until the last decoded one: a header may lie about
        # the duration, and a picture cut short by an error ends there
        step = 1 / float(stream.average_rate) if stream.average_rate else 0.0
        kept[-1].end = max(kept[-1].start, min(kept[-1].end, last[0] + step))
    return kept, picture


def shrunk(image: Any, need: Any) -> Any:
    """`image` no larger than the image models and the thumbnail need (need: an
    extract.image.DecodeSize, or None: MAX_SIDE on the long side)."""
    from .image import MAX_SIDE

    w, h = image.size
    short, long = min(w, h), max(w, h)
    scale = (max(need.short / short, need.long / long) if need is not None
             else MAX_SIDE / long)
    if scale >= 1.0:
        return image
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))))


SUBTITLE_SUFFIXES = (".srt", ".vtt")


def sidecar_subtitles(paths: list[str]) -> tuple[list[TimedSegment], str] | None:
    """The cues of the first readable subtitle file beside the video (the connector found
    them: `talk.srt`, `talk.vtt`, `talk.en.srt` ...), or None."""
    if not paths:
        return None
    webvtt = require("webvtt", "audio")
    for name in paths:
        p = Path(name)
        try:
            captions = (webvtt.from_srt(str(p)) if p.suffix.lower() == ".srt"
                        else webvtt.read(str(p)))
        except Exception:  # noqa: BLE001 (an unreadable one: the next, or the transcriber)
            continue
        cues = [TimedSegment(c.start_time.in_milliseconds() / 1000,  # *_in_seconds: whole s
                             c.end_time.in_milliseconds() / 1000, " ".join(c.text.split()))
                for c in captions if c.text.strip()]
        if cues:
            return cues, f"subtitles: {p.name}"
    return None
