"""The item fields a vector service keeps beside each chunk's vector, so that a search's
filters run inside the engine (search/filter_milvus.py writes them as expressions)
instead of as a list of allowed chunk ids read from the metadata store first.

Values are normalised the way the filters compare them in SQL (search/filter_sql.py):
names lower-cased, the date is meta.taken when it is a number else the file's mtime, an
unknown size or date is a sentinel below every real one, a language's `_` is `-`.
"""

from __future__ import annotations

from typing import Any

UNKNOWN_DATE = -1e308  # below every real date: `date > KNOWN_DATE` means "has a date"
KNOWN_DATE = -1e300
UNKNOWN_SIZE = -1

# name -> (kind, VARCHAR length). Paths longer than the limit are kept cut: a filter on
# such a path is answered from the metadata store instead (search/filter_milvus.py).
FIELDS: dict[str, tuple[str, int]] = {
    "item_id": ("int64", 0),
    "modality": ("varchar", 16),
    "media": ("varchar", 128),
    "source": ("varchar", 200),
    "ext": ("varchar", 64),
    "path": ("varchar", 4096),
    "lang": ("varchar", 32),
    "date": ("double", 0),
    "size": ("int64", 0),
}
DEFAULTS: dict[str, Any] = {"item_id": -1, "modality": "", "media": "", "source": "", "ext": "",
                            "path": "", "lang": "", "date": UNKNOWN_DATE, "size": UNKNOWN_SIZE}


def extension(path: str) -> str:
    """What `ext:` compares: the text after the last '.' of the last path segment."""
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


def fields_of(item_id: int, modality: str | None, media_type: str | None, path: str,
              size: int | None, mtime: float | None, meta: dict[str, Any] | None,
              source: str) -> dict[str, Any]:
    meta = meta or {}
    taken = meta.get("taken")
    date = taken if isinstance(taken, int | float) and not isinstance(taken, bool) else mtime
    lang = meta.get("language")
    row = {
        "item_id": int(item_id),
        "modality": (modality or "").lower(),
        "media": (media_type or "").lower(),
        "source": (source or "").lower(),
        "ext": extension(path or ""),
        "path": (path or "").lower(),
        "lang": lang.lower().replace("_", "-") if isinstance(lang, str) else "",
        "date": float(date) if date is not None else UNKNOWN_DATE,
        "size": int(size) if size is not None else UNKNOWN_SIZE,
    }
    for name, (kind, length) in FIELDS.items():  # a value past its column is cut
        if kind == "varchar" and len(row[name].encode()) > length:
            row[name] = row[name].encode()[:length].decode(errors="ignore")
    return row
