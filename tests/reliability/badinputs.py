"""A corpus of bad inputs, generated: every kind of file (and non-file) the world throws
at an indexer, each with what must become of it, beside good files that must all stay
searchable.

Expectations: "ok" (indexed), "error" (a per-item error in the store), "skipped" (an
unsupported format, recorded), "scan" (the scan could not list or stat it: an error in
the run's report), "absent" (not a regular file: ignored). "a|b" allows either.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import wave
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from crashkit import PHOTOS, speak
from makers import make_docx, make_pdf

GOOD = {
    "good/tomatoes.md": "# Tomatoes\n\nWater tomato plants deeply twice a week at the base.",
    "good/moon.txt": "The Moon drifts away from the Earth by almost four centimetres a year.",
    "good/espresso.md": "# Espresso\n\nNine bars of pressure push hot water through the puck.",
    "good/bikes.md": "# Bicycles\n\nOil the bicycle chain every two hundred kilometres.",
    "good/tides.txt": "Spring tides happen when the Sun and the Moon line up with the Earth.",
}
# A query for each good file that must find it first.
GOOD_QUERIES = {
    "good/tomatoes.md": "how often to water tomatoes",
    "good/moon.txt": "moon moving away from earth",
    "good/espresso.md": "espresso pressure",
    "good/bikes.md": "chain lubrication for a bike",
    "good/tides.txt": "why spring tides happen",
}


@dataclass
class Bad:
    kind: str
    rel: str | bytes  # path relative to the corpus root (bytes: a non-UTF-8 name)
    expect: str
    says: str = ""  # words the error must contain

    def path(self, root: Path) -> Path:
        rel = os.fsdecode(self.rel) if isinstance(self.rel, bytes) else self.rel
        return root / rel


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 20_000) -> bytes:
    """A real 1-bit PNG of side x side pixels (400 MP): a few dozen KB on disk."""
    z = zlib.compressobj(9)
    row = b"\0" * (1 + (side + 7) // 8)
    idat = b"".join(z.compress(row * 500) for _ in range(side // 500)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def zip_of_zeros(name: str, size: int, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """A zip whose one member unpacks to `size` bytes, nearly all zeros (a zip bomb)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w") as member:
        member.write(prefix)
        block = b" " * (1 << 20)
        for _ in range((size - len(prefix) - len(suffix)) >> 20):
            member.write(block)
        member.write(suffix)
    return out.getvalue()


def docx_bomb(path: Path) -> None:
    """A DOCX whose document.xml unpacks to 120 MB."""
    make_docx(path, "Bomb", ["x"])
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist() if n != "word/document.xml"}
    head = (b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>')
    tail = b"</w:t></w:r></w:p></w:body></w:document>"
    bomb = zipfile.ZipFile(io.BytesIO(zip_of_zeros("word/document.xml", 120 << 20, head, tail)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
        info = bomb.getinfo("word/document.xml")
        with bomb.open(info) as src, zf.open("word/document.xml", "w") as dst:
            while block := src.read(1 << 20):
                dst.write(block)


def wav(path: Path, samples: np.ndarray, rate: int = 16_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())


def encode_audio(samples: np.ndarray, dest: Path, codec: str, rate: int = 16_000) -> None:
    """Float samples in [-1, 1] as an MP3 or FLAC file, encoded by PyAV."""
    import av

    with av.open(str(dest), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.reshape(1, -1), dtype=np.float32), format="flt",
            layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def video_without_audio(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            img = np.full((64, 64, 3), i * 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def password_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Confidential salaries for next year.")
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.output(str(path))


def long_path(root: Path, levels: int = 22, width: int = 200) -> bytes:
    """A file whose absolute path is over 4,096 bytes, made through directory fds."""
    fd = os.open(root, os.O_RDONLY)
    rel = []
    try:
        for i in range(levels):
            name = f"{i:02d}" + "L" * (width - 2)
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            rel.append(name)
        out = os.open("far.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"# Far away\n\nA note at the end of a very long path.")
        os.close(out)
    finally:
        os.close(fd)
    return os.fsencode("/".join([*rel, "far.md"]))


def build(root: Path) -> list[Bad]:
    """Write the corpus under root; return the bad kinds and what must become of each."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in GOOD.items():
        _write(root / rel, text)
    bad: list[Bad] = []

    def add(kind: str, rel: str | bytes, expect: str, data: bytes | str | None = None,
            says: str = "") -> Path:
        item = Bad(kind, rel, expect, says)
        if data is not None:
            _write(item.path(root), data)
        bad.append(item)
        return item.path(root)

    for ext in ("txt", "md", "pdf", "docx", "jpg", "png", "mp3", "wav", "flac"):
        add(f"zero-byte .{ext}", f"empty/empty.{ext}", "skipped", b"", "empty")

    photo = (PHOTOS / "coffee.jpg").read_bytes()
    add("truncated JPEG", "broken/photo.jpg", "error", photo[:2000], "truncated")
    png = io.BytesIO()
    from PIL import Image

    Image.open(PHOTOS / "rocket.jpg").save(png, format="PNG")
    add("truncated PNG", "broken/rocket.png", "error", png.getvalue()[: len(png.getvalue()) // 2])
    pdf = make_pdf(root / "tmp-report.pdf", ["Page one of a report.", "Page two of it."])
    data = pdf.read_bytes()
    pdf.unlink()
    add("truncated PDF", "broken/report.pdf", "ok|error", data[: len(data) // 2])
    speech = root / "tmp-speech.wav"
    if speak("The budget meeting moves to Thursday afternoon.", speech):
        from anyfind.audio import decode_blocks

        samples = np.concatenate(list(decode_blocks(speech)))
        speech.unlink()
    else:
        samples = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16_000 * 3) / 16_000)
    for codec in ("mp3", "flac"):
        full = root / f"tmp-speech.{codec}"
        encode_audio(samples, full, codec)
        data = full.read_bytes()
        full.unlink()
        add(f"truncated {codec.upper()}", f"broken/speech.{codec}", "ok|error",
            data[: len(data) // 2])

    add("decompression-bomb PNG", "bombs/bomb.png", "error", png_bomb(), "decompression bomb")
    add("zip bomb", "bombs/bomb.zip", "skipped", zip_of_zeros("zeros.bin", 100 << 20))
    docx_bomb(root / "bombs" / "bomb.docx")
    add("zip-bomb DOCX", "bombs/bomb.docx", "error", says="bomb")
    add("corrupt DOCX", "broken/corrupt.docx", "error", b"PK\x03\x04" + os.urandom(3000))

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    add("binary named .txt", "mislabelled/noise.txt", "error", noise)
    add("binary named .md", "mislabelled/noise.md", "error", noise)
    add("binary named .pdf", "mislabelled/noise.pdf", "error", noise, "not application/pdf")
    add("text named .mp3", "mislabelled/song.mp3", "error",
        "This is a shopping list, not a song.", "text")
    add("invalid UTF-8", "encodings/broken-utf8.txt", "ok",
        "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e recipe. ".encode() * 20 + b"\xff\xfe\xc3(")
    add("UTF-16 without BOM", "encodings/utf16.txt", "ok",
        "A note written in UTF-16 about lighthouse keepers.".encode("utf-16-le"))
    add("NUL bytes in CSV", "encodings/nul.csv", "ok|error", b"a,b\n1,\x002\n" * 50)
    add("one 2 MB word", "huge/no-spaces.txt", "ok", "a" * (2 << 20))
    add("HTML nested 20,000 deep", "huge/deep.html", "ok|error",
        "<html><body>" + "<div>" * 20_000 + "deep text" + "</div>" * 20_000 + "</body></html>")

    sparse = add("2 GB sparse file", "huge/sparse.txt", "error", says="too large")
    with open(sparse, "wb") as fh:
        fh.truncate(2 << 30)

    deep = root / "deep" / "/".join(["d"] * 300)
    deep.mkdir(parents=True)
    (deep / "bottom.md").write_text("# Bottom\n\nA note three hundred folders down.")
    bad.append(Bad("300 folders deep", str((deep / "bottom.md").relative_to(root)), "ok"))
    (root / "longpath").mkdir()
    bad.append(Bad("path over 4,096 bytes", b"longpath/" + long_path(root / "longpath"),
                   "scan"))

    loops = root / "links"
    loops.mkdir()
    os.symlink("b.md", loops / "a.md")
    os.symlink("a.md", loops / "b.md")
    bad.append(Bad("symlink loop", "links/a.md", "scan"))
    os.symlink("..", loops / "parent")
    bad.append(Bad("symlink to an ancestor folder", "links/parent", "absent"))
    os.symlink("nowhere.md", loops / "dangling.md")
    bad.append(Bad("dangling symlink", "links/dangling.md", "scan"))
    os.symlink("/dev/zero", loops / "zero.txt")
    bad.append(Bad("symlink to /dev/zero", "links/zero.txt", "absent"))
    os.mkfifo(root / "links" / "pipe.txt")
    bad.append(Bad("named pipe", "links/pipe.txt", "absent"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "links" / "sock.txt"))
    sock.close()
    bad.append(Bad("socket", "links/sock.txt", "absent"))

    locked = add("unreadable file", "perms/locked.md", "error", "secret", "Permission")
    locked.chmod(0)
    closed = root / "perms" / "closed"
    closed.mkdir()
    (closed / "inside.md").write_text("Behind a closed door.")
    closed.chmod(0)
    bad.append(Bad("unreadable folder", "perms/closed", "scan"))

    add("newline in the name", "names/two\nlines.md", "ok", "# Two lines\n\nA file name "
        "with a newline in it, about kettles.")
    add("non-UTF-8 name", b"names/caf\xe9-latin1.md", "ok", "# Caf\u00e9\n\nLatin-1 name.")

    (root / "secure").mkdir()
    password_pdf(root / "secure" / "salaries.pdf")
    bad.append(Bad("PDF with a password", "secure/salaries.pdf", "error", "encrypted"))
    wav(root / "audio" / "silence.wav", np.zeros(16_000 * 3))
    bad.append(Bad("pure silence", "audio/silence.wav", "ok"))
    video_without_audio(root / "audio" / "no-sound.mp4")
    bad.append(Bad("video without audio", "audio/no-sound.mp4", "ok"))  # its frames

    add("file rewritten during the scan", "changing/grow.log", "ok|error", "line 0\n")
    add("file that vanishes during the scan", "changing/vanish.md", "ok|error|absent",
        "# Here and gone\n")
    return bad


def mutate_forever(root: Path, stop) -> int:
    """Rewrite one file and delete/recreate another until `stop` is set; returns rounds."""
    grow, vanish = root / "changing" / "grow.log", root / "changing" / "vanish.md"
    n = 0
    while not stop.wait(0.005):  # pacing, not synchronisation
        n += 1
        with open(grow, "a") as fh:
            fh.write(f"line {n}\n")
        if n % 2:
            vanish.unlink(missing_ok=True)
        else:
            vanish.write_text(f"# Here and gone\n\nround {n}\n")
    return n


# -- bad inputs behind other connectors --------------------------------------------------------
def database_with_nulls(path: Path) -> None:
    """Rows with NULL everywhere, empty strings, a number and bytes in a text column, NUL
    characters, and (SQLite allows it) a NULL primary key in a TEXT-keyed table."""
    import sqlite3

    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT, body TEXT, extra BLOB);
        INSERT INTO notes VALUES (1, NULL, NULL, NULL);
        INSERT INTO notes VALUES (2, 'Only a title', NULL, NULL);
        INSERT INTO notes VALUES (3, NULL, 'The harbour lighthouse is painted red and white.',
                                  NULL);
        INSERT INTO notes VALUES (4, '', '', x'00ff00ff');
        INSERT INTO notes VALUES (5, 'A number in a text column', 12345, NULL);
        INSERT INTO notes VALUES (6, 'Bytes in a text column', x'fffe0041', NULL);
        INSERT INTO notes VALUES (7, 'NUL inside', 'before' || char(0) || 'after', NULL);
        CREATE TABLE odd (key TEXT PRIMARY KEY, body TEXT);
        INSERT INTO odd VALUES (NULL, 'A row whose key is NULL, about walnut trees.');
        INSERT INTO odd VALUES ('k2', NULL);
    """)
    db.commit()
    db.close()


def git_repo_with_submodule_and_lfs(path: Path) -> None:
    """A repository holding a note, a Git LFS pointer (named .png, as LFS files are) and a
    submodule entry whose repository is not there."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    path.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "Test")
    (path / "README.md").write_text("# Repo\n\nNotes about the copper kettle collection.")
    (path / ".gitattributes").write_text("*.png filter=lfs diff=lfs merge=lfs -text\n")
    (path / "photo.png").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:"
        + "ab" * 32 + "\nsize 123456\n")
    (path / ".gitmodules").write_text(
        '[submodule "vendor/lib"]\n\tpath = vendor/lib\n\turl = https://example.com/lib.git\n')
    git("add", "README.md", ".gitattributes", "photo.png", ".gitmodules")
    git("update-index", "--add", "--cacheinfo", "160000," + "1" * 40 + ",vendor/lib")
    git("commit", "-q", "-m", "a note, an LFS pointer and a submodule")


def hostile_tar(path: Path) -> None:
    """Members named ../ and /absolute, a symlink and a hard link member, a device node."""
    import tarfile

    def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
               link: str = "") -> tuple[tarfile.TarInfo, io.BytesIO | None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.size = kind, link, len(data)
        return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None

    with tarfile.open(path, "w:gz") as tar:
        for info, data in (
            member("docs/ok.md", b"# Fine\n\nA normal member about saddles."),
            member("../../escape.md", b"I try to get out of the archive."),
            member("/etc/evil.md", b"An absolute path inside an archive."),
            member("docs/link.md", kind=tarfile.SYMTYPE, link="/etc/passwd"),
            member("docs/hard.md", kind=tarfile.LNKTYPE, link="/etc/shadow"),
            member("docs/dev", kind=tarfile.CHRTYPE),
        ):
            tar.addfile(info, data)


def build_sources(root: Path) -> dict[str, tuple[str, dict]]:
    """Sources beyond folders, as name -> (uri, options)."""
    root.mkdir(parents=True, exist_ok=True)
    database_with_nulls(root / "nulls.db")
    git_repo_with_submodule_and_lfs(root / "repo")
    hostile_tar(root / "hostile.tar.gz")
    (root / "bomb.zip").write_bytes(zip_of_zeros("zeros.txt", 300 << 20))
    db = f"sqlite:///{root / 'nulls.db'}"
    return {
        "nulls": (db, {"table": "notes", "title_column": "title"}),
        "nullkey": (db, {"table": "odd"}),
        "repo": (str(root / "repo"), {}),
        "hostile": (str(root / "hostile.tar.gz"), {}),
        "bomb": (str(root / "bomb.zip"), {}),
    }
