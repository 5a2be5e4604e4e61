"""Videos made here: a lecture (one slide at a time, each narrated by espeak-ng), encoded
to H.264 + AAC in MP4 (or VP8 in WebM) with PyAV, with its ground-truth timeline."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ocr_fixtures import slide
from PIL import Image

RATE = 16_000  # the narration's sample rate (espeak-ng's 22,050 Hz resampled)


@dataclass
class Shown:
    """One slide of a lecture video: what it shows, what is said over it, and when."""

    title: str
    bullets: list[str]
    said: str
    start: float = 0.0
    end: float = 0.0


def narration(text: str, words_per_minute: int = 160) -> np.ndarray:
    """espeak-ng speech as 16 kHz mono float32."""
    import av

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "said.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(words_per_minute), "-w",
                        str(wav), text], check=True, capture_output=True)
        with av.open(str(wav)) as c:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            parts = [r.to_ndarray().reshape(-1) for f in c.decode(audio=0)
                     for r in resampler.resample(f)]
            parts += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32)


def lecture(path: Path, slides: list[Shown], *, size=(1280, 720), fps: int = 10,
            pause: float = 1.0, codec: str = "libx264", sound: bool = True,
            keyframe_every: int | None = None, min_seconds: float = 0.0) -> list[Shown]:
    """A lecture video at `path`: each slide shown while its narration plays (plus
    `pause` seconds, at least `min_seconds`), the slide times filled in and returned.
    `keyframe_every`: frames between forced keyframes (None: the encoder's choice,
    which puts one at each slide change)."""
    import av

    audio, frames = [], []
    t = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, s in enumerate(slides):
            said = narration(s.said) if sound and s.said else np.zeros(0, np.float32)
            seconds = max(min_seconds, len(said) / RATE + pause)
            pad = np.zeros(int(seconds * RATE) - len(said), np.float32)
            audio.append(np.concatenate([said, pad]))
            picture = Image.open(slide(Path(tmp) / f"{i}.png", s.title, s.bullets, size=size,
                                       seed=i, background=[(31, 78, 121), (120, 40, 40),
                                                           (40, 110, 60)][i % 3]))
            frames.append((picture.convert("RGB"), round(seconds * fps)))
            s.start, s.end = t, t + seconds
            t += seconds
    container_format = "webm" if codec == "libvpx" else "mp4"
    with av.open(str(path), "w", format=container_format) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        options = {"preset": "veryfast"} if codec == "libx264" else {}
        if keyframe_every:
            options.update({"g": str(keyframe_every), "sc_threshold": "0"})
            if codec == "libx264":
                options["x264-params"] = f"scenecut=0:keyint={keyframe_every}"
        video.options = options
        sound_stream = None
        if sound:
            webm = container_format == "webm"
            sound_stream = out.add_stream("libopus" if webm else "aac",
                                          rate=48_000 if webm else RATE)
            sound_stream.layout = "mono"
        n = 0
        for picture, count in frames:
            for _ in range(count):
                frame = av.VideoFrame.from_image(picture)
                frame.pts = n
                n += 1
                for packet in video.encode(frame):
                    out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound_stream is not None:
            _encode_sound(out, sound_stream, np.concatenate(audio))
    return slides


def _encode_sound(out, stream, samples: np.ndarray) -> None:
    import av

    pcm = np.clip(samples * 32767, -32768, 32767).astype(np.int16)
    resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
    for start in range(0, len(pcm), 1024):
        frame = av.AudioFrame.from_ndarray(pcm[None, start:start + 1024], format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts = RATE, start
        for resampled in resampler.resample(frame):
            for packet in stream.encode(resampled):
                out.mux(packet)
    for resampled in resampler.resample(None):
        for packet in stream.encode(resampled):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def sideways(path: Path, picture_path: Path, seconds: float = 2.0, fps: int = 5) -> Path:
    """An H.264 MP4 of one picture stored turned a quarter counter-clockwise, whose track
    header says to show it turned a quarter clockwise (a phone held sideways): upright
    only for a reader that honours the display matrix."""
    import struct

    import av
    from PIL import Image

    stored = Image.open(picture_path).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = stored.width, stored.height, "yuv420p"
        for _ in range(int(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_image(stored)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    matrix = at + 4 + (52 if data[at + 4] == 1 else 40)  # after version, times, volume
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0,
                                           0x40000000)  # 90 degrees clockwise
    path.write_bytes(data)
    return path
