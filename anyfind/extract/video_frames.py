"""The frames worth keeping from a video's picture: one per slide, scene or still, with the
time span it is shown.

Decoding every frame of an hour at 720p is most of a minute on two cores, and converting
each to pixels more: so the stream is decoded without its non-reference frames (B-frames:
nothing refers to them, libavcodec skips them whole) and one frame per `SAMPLE_SECONDS`
is looked at, as a small grey signature (`SIGNATURE` pixels wide). A frame is kept when
it differs from the last kept one and

- it is a **still**: the sample before it already showed the same picture (a slide, a
  paused screen: kept from the time the change first appeared), or
- it is a **cut**: most of the picture changed (a new scene), at least `MIN_GAP` after
  the last kept frame, or
- the picture keeps moving (a talking head, a demo) and `MOVING_GAP` has passed.

Past `MAX_FRAMES` every other kept frame is dropped and the spacing doubles (the header's
duration is not trusted for it: a file may claim ten hours for ten seconds).

A static talking head thus yields a frame a minute, a slide deck one per slide. Only kept
frames are converted to pixels, downscaled in libswscale (an 8K frame never exists here
as a full-size picture) and turned as the stream's display matrix says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLE_SECONDS = 1.0  # one frame a second is looked at
SIGNATURE = (256, 144)  # pixels of the grey signature two frames are compared by
PIXEL_CHANGE = 18  # grey levels: a signature pixel that moved more than this changed
SAME = 0.0005  # share of changed signature pixels below which two frames show the same
CUT = 0.3  # share above which the picture is a new scene
MIN_GAP = 2.0  # seconds between kept frames (a still or a cut)
MOVING_GAP = 60.0  # seconds between kept frames while the picture keeps moving
MAX_FRAMES = 600  # per video: longer ones keep their frames further apart
KEEP_SIDE = 1920  # the long side a kept frame is converted at (OCR reads it; models shrink it)


@dataclass
class Frame:
    """A kept frame: shown from `start` to `end` (seconds), its picture (PIL, RGB)."""

    start: float
    end: float
    image: Any
    why: str  # first | still | cut | moving
    meta: dict[str, Any] = field(default_factory=dict)  # what was read in it (OCR), its tags


def _signature(frame: Any) -> np.ndarray:
    grey = frame.reformat(width=SIGNATURE[0], height=SIGNATURE[1], format="gray")
    return grey.to_ndarray().astype(np.int16)


def changed_share(a: np.ndarray, b: np.ndarray) -> float:
    """The share of signature pixels that changed from `a` to `b`."""
    return float(np.mean(np.abs(a - b) > PIXEL_CHANGE))


def _picture(frame: Any, rotation: int) -> Any:
    """The frame as an RGB PIL image, at most KEEP_SIDE on its long side, upright."""
    from PIL import Image

    w, h = frame.width, frame.height
    scale = min(1.0, KEEP_SIDE / max(w, h))
    image = frame.reformat(width=max(2, round(w * scale) // 2 * 2),
                           height=max(2, round(h * scale) // 2 * 2), format="rgb24").to_image()
    turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_270}.get(rotation % 360)
    return image.transpose(turn) if turn is not None else image


def _rotation(frame: Any) -> int:
    """Degrees counter-clockwise the picture must turn to stand upright (display matrix)."""
    try:
        return int(round(getattr(frame, "rotation", 0) or 0))
    except (TypeError, ValueError):
        return 0


def samples(frames: Iterator[Any], step: float = SAMPLE_SECONDS) -> Iterator[tuple[float, Any]]:
    """(time, frame): the first decoded frame at or after each multiple of `step`."""
    due = 0.0
    for frame in frames:
        t = frame.time
        if t is None or t < due:
            continue
        yield t, frame
        due = (t // step + 1) * step


def select(sampled: Iterator[tuple[float, Any]], duration: float | None,
           max_frames: int = MAX_FRAMES, on_keep: Callable[[Frame], None] | None = None
           ) -> list[Frame]:
    """The kept frames of a stream of (time, frame) samples, with their spans; `on_keep`
    sees each as it is kept (reads it, shrinks it: only small pictures are held)."""
    def kept_(frame: Frame) -> None:
        if on_keep is not None:
            on_keep(frame)
        kept.append(frame)

    # Not from the header's duration (it may lie): past max_frames, every other kept frame
    # goes and the spacing doubles, so a long video keeps its frames further apart.
    gap = MIN_GAP
    kept: list[Frame] = []
    last_sig: np.ndarray | None = None  # the last kept frame's signature
    prev: tuple[float, np.ndarray] | None = None  # the sample before this one
    rotation = 0
    t = 0.0
    for t, frame in sampled:
        sig = _signature(frame)
        if last_sig is None:
            rotation = _rotation(frame)
            kept_(Frame(t, t, _picture(frame, rotation), "first"))
            last_sig, prev = sig, (t, sig)
            continue
        since = t - kept[-1].start
        why = None
        if changed_share(last_sig, sig) >= SAME:
            start = t
            if prev is not None and changed_share(prev[1], sig) < SAME:
                why, start = "still", prev[0]  # shown since the previous sample
            elif changed_share(last_sig, sig) >= CUT:
                why = "cut"
            elif since >= max(MOVING_GAP, gap):
                why = "moving"
            if why is not None and start - kept[-1].start >= gap:
                kept_(Frame(start, start, _picture(frame, rotation), why))
                last_sig = sig
                if len(kept) > max_frames:
                    kept[:] = kept[::2]
                    gap *= 2
        prev = (t, sig)
    end = max(duration or 0.0, t)
    for frame_, following in zip(kept, kept[1:] + [None], strict=True):
        frame_.end = following.start if following is not None else max(end, frame_.start)
    return kept
