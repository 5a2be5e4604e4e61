"""Images with printed text, made here: slides (a title and bullets on a coloured or busy
background, several fonts and sizes), a scanned-looking page, a photo without text."""

from __future__ import annotations

import glob
import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """A TrueType font: DejaVu where Debian installed it, else Pillow's bundled one."""
    names = ["DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", "DejaVuSerif.ttf"]
    for name in names:
        found = glob.glob(f"/usr/share/fonts/**/{name}", recursive=True)
        if found:
            return ImageFont.truetype(found[0], size)
    return ImageFont.load_default(size=size)


def slide(path: Path, title: str, bullets: list[str], *, size=(1280, 720),
          background=(31, 78, 121), busy: bool = False, seed: int = 0) -> Path:
    """A lecture slide: a white title on a coloured band, dark bullets on a light body
    (a noisy, gradient body when `busy`)."""
    rng = random.Random(seed)
    w, h = size
    img = Image.new("RGB", size, (245, 245, 240))
    draw = ImageDraw.Draw(img)
    if busy:
        for y in range(h):
            shade = 200 + int(40 * y / h)
            draw.line([(0, y), (w, y)], fill=(shade, shade - 10, 230 - int(30 * y / h)))
        for _ in range(60):
            x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(4, 30)
            draw.ellipse([x - r, y - r, x + r, y + r], outline=(170, 170, 200))
    draw.rectangle([0, 0, w, h // 6], fill=background)
    draw.text((w // 20, h // 24), title, font=font(h // 12, bold=True), fill=(255, 255, 255))
    y = h // 6 + h // 12
    for line in bullets:
        draw.text((w // 14, y), "\u2022 " + line, font=font(h // 22), fill=(20, 20, 30))
        y += h // 11
    img.save(path)
    return path


def scanned_page_pdf(path: Path, lines: list[str], seed: int = 0) -> Path:
    """A one-page PDF holding only an image of a printed page (grey paper, a slight blur
    and tilt, as a scanner gives): no text layer."""
    rng = random.Random(seed)
    page = Image.new("L", (1240, 1754), 235)
    draw = ImageDraw.Draw(page)
    y = 150
    for line in lines:
        draw.text((120, y), line, font=font(34), fill=25)
        y += 60
    page = page.rotate(rng.uniform(-1.0, 1.0), fillcolor=235).filter(ImageFilter.GaussianBlur(0.6))
    page.convert("RGB").save(path, "PDF", resolution=150)
    return path


def photo_without_text(path: Path, size=(1024, 768), seed: int = 0) -> Path:
    """Smooth colour fields and soft shapes, as a landscape photo has: no letters."""
    rng = random.Random(seed)
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=(int(90 + 120 * t), int(150 - 40 * t), int(220 - 120 * t)))
    for _ in range(12):
        x, y, r = rng.randrange(w), rng.randrange(h // 2, h), rng.randrange(40, 160)
        draw.ellipse([x - r, y - r // 2, x + r, y + r // 2],
                     fill=(rng.randrange(30, 90), rng.randrange(90, 160), rng.randrange(30, 80)))
    img.filter(ImageFilter.GaussianBlur(6)).save(path, quality=90)
    return path


def png_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
