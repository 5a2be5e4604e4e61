"""Inputs a hostile user makes: zip-based bombs of every office/e-book kind, tag-dense
markup, long CSV fields, HTTP servers that misbehave. Real files and real sockets."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from badinputs import zip_of_zeros


def _rezip(path: Path, member: str, size: int, head: bytes, tail: bytes) -> None:
    """Rewrite the zip at `path` with `member` replaced by `size` bytes (blanks between
    head and tail): a real document of its kind whose one part is a bomb."""
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist() if n != member}
    bomb = zipfile.ZipFile(io.BytesIO(zip_of_zeros(member, size, head, tail)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if "mimetype" in parts:  # an EPUB's first member, stored
            zf.writestr("mimetype", parts.pop("mimetype"), compress_type=zipfile.ZIP_STORED)
        for name, data in parts.items():
            zf.writestr(name, data)
        with bomb.open(member) as src, zf.open(member, "w") as dst:
            while block := src.read(1 << 20):
                dst.write(block)


def rezip_member(path: Path, member: str, data: bytes) -> Path:
    """Rewrite the zip at `path` with `member` holding `data` (deflated, EPUB rules kept)."""
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist() if n != member}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if "mimetype" in parts:  # an EPUB's first member, stored
            zf.writestr("mimetype", parts.pop("mimetype"), compress_type=zipfile.ZIP_STORED)
        for name, body in parts.items():
            zf.writestr(name, body)
        zf.writestr(member, data)
    return path


def tag_dense_epub(path: Path, megabytes: float) -> Path:
    """An EPUB whose chapter is `megabytes` of `<i>x</i>`: ~1,000 times smaller packed,
    under the zip guard's ratio (the markup, not the container, is the bomb)."""
    make_epub(path, ["Dense."])
    with zipfile.ZipFile(path) as zf:
        member = next(n for n in zf.namelist() if n.endswith("ch1.xhtml"))
    unit = b"<i>x</i>"
    body = unit * int(megabytes * (1 << 20) / len(unit))
    return rezip_member(path, member, b"<html><body><p>" + body + b"</p></body></html>")


def run_dense_docx(path: Path, megabytes: float) -> Path:
    """A DOCX (made by python-docx) whose one paragraph is `megabytes` of one-letter runs."""
    from makers import make_docx

    make_docx(path, "Dense", ["x"])
    unit = b"<w:r><w:t>x</w:t></w:r>"
    body = unit * int(megabytes * (1 << 20) / len(unit))
    return rezip_member(path, "word/document.xml", (
        b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        b'wordprocessingml/2006/main"><w:body><w:p>' + body + b"</w:p></w:body></w:document>"))


def pptx_bomb(path: Path, size: int = 200 << 20) -> Path:
    """A PPTX (made by python-pptx) whose one slide unpacks to `size` bytes."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly plan"
    deck.save(str(path))
    head = (b'<?xml version="1.0"?><p:sld xmlns:p="http://schemas.openxmlformats.org/'
            b'presentationml/2006/main"><p:cSld><p:spTree>')
    _rezip(path, "ppt/slides/slide1.xml", size, head, b"</p:spTree></p:cSld></p:sld>")
    return path


def make_epub(path: Path, chapters: list[str]) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("hostile-1")
    book.set_title("A book")
    book.set_language("en")
    items = []
    for i, text in enumerate(chapters, start=1):
        chapter = epub.EpubHtml(title=f"Chapter {i}", file_name=f"ch{i}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>Chapter {i}</h1><p>{text}</p></body></html>"
        book.add_item(chapter)
        items.append(chapter)
    book.toc = items
    book.spine = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(path), book)
    return path


def epub_bomb(path: Path, size: int = 200 << 20) -> Path:
    """An EPUB whose first chapter unpacks to `size` bytes."""
    make_epub(path, ["Bomb."])
    with zipfile.ZipFile(path) as zf:
        member = next(n for n in zf.namelist() if n.endswith("ch1.xhtml"))
    _rezip(path, member, size, b"<html><body><p>", b"</p></body></html>")
    return path


def spread_bomb(path: Path, members: int = 30_000) -> Path:
    """A zip-based document of many tiny members (a member-count bomb)."""
    from pptx import Presentation

    Presentation().save(str(path))
    with zipfile.ZipFile(path, "a") as zf:
        for i in range(members):
            zf.writestr(f"ppt/media/x{i}.bin", b"")
    return path


def tag_dense_html(megabytes: int, tag: str = "i") -> bytes:
    unit = f"<{tag}>x</{tag}> ".encode()
    return b"<html><body>" + unit * (megabytes * (1 << 20) // len(unit)) + b"</body></html>"


# -- misbehaving HTTP servers --------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def log_message(self, *args) -> None:  # quiet
        return None

    def do_GET(self) -> None:  # noqa: N802
        kind, body = self.routes.get(self.path, ("missing", b""))
        if kind == "missing":
            self.send_error(404)
            return
        if kind == "silent":  # accept, never answer: the client's deadline must end it
            self.server.stop.wait(60)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if kind != "trickle":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "trickle":  # one byte per half second, forever: no read ever times out
            with contextlib.suppress(OSError):
                while not self.server.stop.is_set():
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    self.server.stop.wait(0.5)
            return
        self.wfile.write(body)


@contextlib.contextmanager
def http_server(routes: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def elapsed(fn) -> tuple[float, object]:
    start = time.monotonic()
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001 (the caller asserts on it)
        value = exc
    return time.monotonic() - start, value
