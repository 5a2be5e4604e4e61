"""Filters written inside the query: `cats ext:pdf after:2024-01-01 size:>1MB`.

A filter is `key:value` (or `-key:value` to exclude) at the start of a word; the value
may be quoted (`path:"my reports/**"`) and may list alternatives with commas
(`ext:pdf,docx`). Words whose `key` is not a filter key stay free text (`10:30`,
`http://...`), and so does anything inside quotes that starts the word (`"type:image"`).

| key | value | matches |
|---|---|---|
| `modality:` (`type:`) | `text`, `image`, `audio`, `video` | the item's modality |
| `media:` | media type, `*` allowed | `media:application/pdf`, `media:image/*` |
| `source:` | source name, `*` allowed | `source:photos` |
| `ext:` | file extension | `ext:pdf`, `ext:.md` |
| `path:` | glob on the path | `path:"reports/**"`, `path:/home/me/notes`, `path:*.py` |
| `lang:` | language code | `lang:en` matches `en`, `en-US` (meta.language) |
| `after:` / `before:` / `date:` | `YYYY`, `YYYY-MM`, `YYYY-MM-DD` (local time) | the item's date, inclusive |
| `size:` | `>N`, `>=N`, `<N`, `<=N`, `A..B`; units B, KB, MB, GB (1 KB = 1024 B) | the item's size |
| `tag:` | a note's tag (front matter, `#tag`, `Tags: [[x]]`) | `tag:rl` |
| `linked:` | a note, by name or path | items linking to it or linked from it |
| `in:` | a note, by name or path | items embedded in it (its screenshots, recordings) |

The same key given twice: alternatives (OR) for names (`ext:pdf ext:md`), all must hold
for ranges (`size:>1MB size:<10MB`). Different keys must all hold. The item's date is
meta.taken (seconds since the epoch, set by extractors that know when content was made,
e.g. EXIF DateTimeOriginal) when present, else the file's modification time. Paths and
names match case-insensitively.

Filters become SQL over items, sources and chunks (see `filter_sql.condition`): the search
asks the store for the allowed chunk ids and passes them to FAISS and to the lexical query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from ..store.sqltext import like_escape

if TYPE_CHECKING:
    pass

MODALITIES = ("text", "image", "audio", "video")
ALIASES = {"type": "modality"}
NAME_KEYS = ("modality", "media", "source", "ext", "path", "lang",  # repeated: OR
             "tag", "linked", "in")
RANGE_KEYS = ("after", "before", "date", "size")  # repeated: AND
KEYS = NAME_KEYS + RANGE_KEYS + tuple(ALIASES)

# A filter starts a word: optional '-', a known key, ':', then a quoted or bare value.
_FILTER = re.compile(r'(?<!\S)(-?)([A-Za-z]+):("(?:[^"\\]|\\.)*("?)(?!\S)|\S*)')
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
          "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.I)
_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_LANG = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{1,8})*", re.I)
_EXT = re.compile(r"[\w+\-.~]+")


@dataclass(frozen=True)
class Clause:
    """One filter as written, with its parsed values."""

    key: str  # canonical key (aliases resolved)
    values: tuple[Any, ...]
    negated: bool = False
    text: str = ""  # the token as typed
    start: int = 0  # its position in the query

    def __str__(self) -> str:
        return self.text


@dataclass
class Filters:
    clauses: list[Clause] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.clauses)

    def __add__(self, other: Filters) -> Filters:
        return bounded(Filters(self.clauses + other.clauses))


@dataclass
class ParsedQuery:
    text: str  # the free text, filters taken out
    filters: Filters


def parse_query(query: str) -> ParsedQuery:
    """Split a query into free text and filters; QueryError names the bad token."""
    clauses: list[Clause] = []
    keep: list[str] = []
    pos = 0
    for m in _FILTER.finditer(query):
        key = m.group(2).lower()
        if key not in KEYS:
            continue
        clauses.append(_clause(query, m))
        keep.append(query[pos : m.start()])
        pos = m.end()
    keep.append(query[pos:])
    return ParsedQuery(" ".join(" ".join(keep).split()), bounded(Filters(clauses)))


def parse_filters(expr: str) -> Filters:
    """Only filters (as for a --filter option): free text is an error."""
    parsed = parse_query(expr)
    if parsed.text:
        raise QueryError(f"not a filter: {parsed.text!r} (filters look like key:value; "
                         f"keys: {', '.join(KEYS)})")
    return parsed.filters


MAX_ALTERNATIVES = 100  # values in one filter (`ext:a,b,...`)
MAX_VALUES = 300  # values in all a query's filters: each is a condition of the store's SQL
SHOWN = 120  # characters of a query or a token an error message shows


def _short(text: str, limit: int = SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _error(query: str, start: int, end: int, message: str) -> QueryError:
    if len(query) > 2 * SHOWN:  # a window around the bad token, not a whole huge query
        lo = max(0, start - 20)
        shown = ("..." if lo else "") + query[lo : lo + SHOWN] + "..."
        start, end = start - lo + (3 if lo else 0), min(end, lo + SHOWN) - lo + (3 if lo else 0)
        query = shown
    caret = " " * start + "^" * max(1, end - start)
    return QueryError(f"{message}\n  {query}\n  {caret}")


def bounded(filters: Filters) -> Filters:
    """QueryError when the filters hold more values than a store's SQL can take."""
    count = sum(len(c.values) for c in filters.clauses)
    if count > MAX_VALUES:
        raise QueryError(f"too many filter values ({count}; at most {MAX_VALUES} in a query)")
    return filters


def _clause(query: str, m: re.Match[str]) -> Clause:
    negated, raw_key, raw = m.group(1) == "-", m.group(2), m.group(3)
    key = ALIASES.get(raw_key.lower(), raw_key.lower())
    token = m.group(0)
    if raw.startswith('"'):
        if not m.group(4) or len(raw) < 2:
            raise _error(query, m.start(), m.end(), f"unbalanced quotes in filter {_short(token)}")
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
    if not raw.strip():
        raise _error(query, m.start(), m.end(),
                     f"filter {raw_key}: needs a value, e.g. {_EXAMPLES[key]} (to search for the "
                     f"word itself, put it in quotes)")
    try:
        values = _parse_values(key, raw.strip())
    except ValueError as exc:
        raise _error(query, m.start(), m.end(), f"bad filter {_short(token)}: {exc}") from None
    return Clause(key, values, negated, token, m.start())


_EXAMPLES = {
    "modality": "modality:image", "media": "media:application/pdf", "source": "source:notes",
    "ext": "ext:pdf", "path": 'path:"reports/**"', "lang": "lang:en",
    "after": "after:2024-01-01", "before": "before:2024-06-30", "date": "date:2024-05",
    "size": "size:>1MB", "tag": "tag:reinforcement-learning", "linked": 'linked:"Deep Q"',
    "in": 'in:"RL - Deep Q Learning"',
}


def _parse_values(key: str, raw: str) -> tuple[Any, ...]:
    if key in ("after", "before", "date"):
        return (parse_period(raw),)
    if key == "size":
        return (parse_size(raw),)
    values = [v.strip() for v in raw.split(",")] if key != "path" else [raw]
    if any(not v for v in values):
        raise ValueError("empty value in a comma list")
    if len(values) > MAX_ALTERNATIVES:
        raise ValueError(f"at most {MAX_ALTERNATIVES} alternatives in one filter "
                         f"(got {len(values)})")
    if key == "modality":
        bad = [v for v in values if v.lower() not in MODALITIES]
        if bad:
            raise ValueError(f"unknown modality '{bad[0]}' (use {', '.join(MODALITIES)})")
        return tuple(v.lower() for v in values)
    if key == "ext":
        values = [v.lower().lstrip(".") for v in values]
        if any(not _EXT.fullmatch(v) for v in values):
            raise ValueError("an extension is letters and digits, e.g. ext:pdf")
    if key == "lang" and any(not _LANG.fullmatch(v) for v in values):
        raise ValueError("a language is a code like en, de or pt-BR")
    if key == "tag":
        values = [v.lstrip("#") for v in values]
    return tuple(values)


def parse_period(raw: str) -> tuple[float, float]:
    """[start, end) of a year, month or day in local time, as epoch seconds (year 1 to
    9999: the end of 9999 is open)."""
    m = _DATE.fullmatch(raw)
    if not m:
        raise ValueError("a date is YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    try:
        if day is not None:
            start = datetime(year, int(month), int(day))
            end = (year, int(month), int(day) + 1)
        elif month is not None:
            start = datetime(year, int(month), 1)
            end = (year + (start.month == 12), start.month % 12 + 1, 1)
        else:
            start, end = datetime(year, 1, 1), (year + 1, 1, 1)
    except ValueError:
        raise ValueError(f"{raw} is not a valid date") from None
    return _epoch(start), _epoch_of(end)


def _epoch_of(ymd: tuple[int, int, int]) -> float:
    """The epoch seconds of a (year, month, day) that may be one past a month's or the
    calendar's end (the day after 9999-12-31 is +inf)."""
    year, month, day = ymd
    try:
        return _epoch(datetime(year, month, day))
    except ValueError:
        pass
    try:  # a day past the month's end: the first of the next month
        return _epoch(datetime(year + (month == 12), month % 12 + 1, 1))
    except ValueError:
        return float("inf")


def _epoch(moment: datetime) -> float:
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):  # before 1970 or past 2038 on some C libraries
        offset = datetime.now().astimezone().utcoffset()
        seconds = (moment - datetime(1970, 1, 1)).total_seconds()
        return seconds - (offset.total_seconds() if offset else 0.0)


def parse_size(raw: str) -> tuple[str, float, float]:
    """('range', lo, hi) with inclusive bounds in bytes (inf for open ends)."""
    inf = float("inf")
    if ".." in raw:
        lo, _, hi = raw.partition("..")
        a, b = _bytes(lo) if lo else 0.0, _bytes(hi) if hi else inf
        return ("range", a, b)
    for op in (">=", "<=", ">", "<"):
        if raw.startswith(op):
            n = _bytes(raw[len(op):])
            return {">=": ("range", n, inf), "<=": ("range", 0.0, n),
                    ">": ("gt", n, inf), "<": ("lt", 0.0, n)}[op]
    raise ValueError("use size:>N, size:<N, size:>=N, size:<=N or size:A..B (e.g. size:>1MB)")


def _bytes(raw: str) -> float:
    m = _SIZE.fullmatch(raw.strip())
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"'{raw}' is not a size (a number with an optional unit: B, KB, MB, GB)")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


# -- SQL -------------------------------------------------------------------------------


def glob_to_like(pattern: str) -> str:
    """`*` (and `**`) any characters including '/', `?` one character; the rest literal."""
    out = []
    for ch in pattern.lower():
        out.append("%" if ch == "*" else "_" if ch == "?" else like_escape(ch))
    return re.sub("%+", "%", "".join(out))
