"""What an ONNX export is and whether it can still be trusted (torch-free, used by both the
exporter and the query-time loader).

    <index>/onnx/<space>/export.json     identity, versions, opset, sha256 + size per file
    <index>/onnx/<space>/verified.json   stat of each file when its sha256 last matched

Hashing a 100-300 MB model on every cold search would cost more than the search, so a
file whose (size, mtime, ctime, inode) still equals the recorded one is taken as verified;
any write to it changes its ctime and forces a full sha256 again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

EXPORT_DIR = "onnx"
MANIFEST = "export.json"
STAMP = "verified.json"
FORMAT = 1  # bump when the layout or the meaning of a field changes


def export_dir(index_dir: Path, space_name: str) -> Path:
    return Path(index_dir) / EXPORT_DIR / space_name


def sha256_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def canonical(obj: Any) -> str:
    """Identities compare as JSON (a tuple saved and read back is a list)."""
    return json.dumps(obj, sort_keys=True, default=str)


def read_manifest(directory: Path) -> tuple[dict[str, Any] | None, str | None]:
    path = directory / MANIFEST
    if not path.is_file():
        return None, f"no ONNX export in {directory}"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"ONNX export manifest {path} is unreadable ({exc})"
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or not isinstance(manifest.get("identity"), dict)):
        return None, f"ONNX export in {directory} has another format (re-run `anyfind export`)"
    return manifest, None


def check_files(directory: Path, manifest: dict[str, Any], *, full: bool = False) -> str | None:
    """None when every file of the export is present and matches its sha256, else why not."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files or not all(
            isinstance(v, dict) for v in files.values()):
        return f"ONNX export in {directory} lists no files"
    try:
        stamps = {} if full else json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        stamps = {}
    verified: dict[str, list[int]] = {}
    for name, info in files.items():
        path = directory / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return f"ONNX export file {name} is missing"
        key = _stat_key(path)
        if key[0] != info.get("size"):
            return f"ONNX export file {name} has the wrong size (corrupt or replaced)"
        if stamps.get(name) != key:
            if sha256_of(path) != info.get("sha256"):
                return f"ONNX export file {name} fails its checksum (corrupt or replaced)"
        verified[name] = key
    if verified != stamps:
        write_stamp(directory, verified)
    return None


def write_stamp(directory: Path, verified: dict[str, list[int]]) -> None:
    """Best effort: a read-only index is searched all the same (and hashed each time)."""
    from ..fsutil import atomic_write_bytes

    try:
        atomic_write_bytes(directory / STAMP, json.dumps(verified).encode())
    except OSError:
        pass


def stamp_all(directory: Path, manifest: dict[str, Any]) -> None:
    """After an export: its files were just hashed, record them as verified."""
    write_stamp(directory, {n: _stat_key(directory / n) for n in manifest["files"]})


def describe_files(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    return {n: {"sha256": sha256_of(directory / n), "size": os.path.getsize(directory / n)}
            for n in names}
