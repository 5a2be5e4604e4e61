"""Filters as a Milvus boolean expression over the fields a Milvus collection keeps beside
each vector (store/filter_fields.py), evaluated inside the engine: a filtered search on
a 10^9-chunk index never reads a list of allowed chunk ids first.

The same meaning as the SQL (search/filter_sql.py), clause for clause. What an
expression cannot say the same way returns None, and that query's dense search is
restricted by allowed ids read from the metadata store instead (still correct, only
slower): the vault filters (`tag:`, `linked:`, `in:`: relations are in the metadata
store), a glob with a wildcard anywhere but at its end, a relative or wildcard `path:`,
an extension with a dot, a value with a quote or a backslash, a value as long as its
field (stored values past it are cut). A prefix is a range of strings (`"ab" <= f < "ac"`), exact in UTF-8 order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..store.filter_fields import FIELDS, KNOWN_DATE
from .filters import NAME_KEYS, Clause


class _Unsayable(Exception):
    pass


def expression(clauses: Sequence[Clause]) -> str | None:
    """Every clause must hold; repeated name keys are alternatives (OR). None: not
    expressible (see the module docstring)."""
    try:
        parts: list[str] = []
        by_key: dict[tuple[str, bool], list[str]] = {}
        for c in clauses:
            cond = _condition(c)
            if c.key in NAME_KEYS:
                by_key.setdefault((c.key, c.negated), []).append(cond)
            else:
                parts.append(f"not ({cond})" if c.negated else cond)
        for (_, negated), conds in by_key.items():
            any_of = " or ".join(f"({x})" for x in conds)
            parts.append(f"not ({any_of})" if negated else f"({any_of})")
    except _Unsayable:
        return None
    return " and ".join(f"({p})" for p in parts) if parts else None


INT64_MAX = (1 << 63) - 1


def _int64(rounding, bound: float) -> int:
    """A size bound as an int64 (a size field holds no more): `size:>` with 400 nines is
    past every file, not an OverflowError."""
    return INT64_MAX if bound >= INT64_MAX else int(rounding(bound))


def _fits(field: str, value: str) -> str:
    """The value, when the field's stored values can be compared with it: a stored value
    past the field's length is cut (store/filter_fields.py, at a character boundary, so up
    to 3 bytes short), and a value that long could equal a longer one's cut form; such a
    filter is answered from the metadata store (a 100-character `ext:` missed and its
    negation kept everything)."""
    if len(value.encode()) >= FIELDS[field][1] - 3:
        raise _Unsayable(value)
    return value


def _literal(value: str) -> str:
    if any(ch in value for ch in '"\\') or not value.isprintable():
        raise _Unsayable(value)
    return f'"{value}"'


def _prefix(field: str, value: str) -> str:
    """`field` starts with `value`, as a range of strings (no LIKE: its wildcards '%' and
    '_' are common in paths and names, and escaping them differs between versions)."""
    if not value:
        return f'{field} != ""'
    if ord(value[-1]) >= 0x10FFFF:  # nothing sorts above it: the allowed ids instead
        raise _Unsayable(value)
    above = value[:-1] + chr(ord(value[-1]) + 1)
    return f"{field} >= {_literal(value)} and {field} < {_literal(above)}"


def _glob(field: str, pattern: str) -> str:
    """Equality, or a prefix match for a glob whose only wildcard is a final '*'."""
    pattern = pattern.lower()
    body = _fits(field, pattern.rstrip("*"))
    if "*" in body or "?" in body:
        raise _Unsayable(pattern)
    if body != pattern:
        return _prefix(field, body)
    return f"{field} == {_literal(body)}"


def _condition(c: Clause) -> str:
    k, vals = c.key, c.values
    if k == "modality":
        return f"modality in [{', '.join(_literal(v) for v in vals)}]"
    if k == "media":
        return " or ".join(f"({_glob('media', v)})" for v in vals)
    if k == "source":
        return " or ".join(f"({_glob('source', v)})" for v in vals)
    if k == "ext":
        if any("." in v for v in vals):
            raise _Unsayable(k)
        return f"ext in [{', '.join(_literal(_fits('ext', v.lower())) for v in vals)}]"
    if k == "path":
        pattern = vals[0].rstrip("/") or "/"
        if not pattern.startswith("/") or any(ch in pattern for ch in "*?"):
            raise _Unsayable(pattern)
        folder = pattern.lower()
        if len(folder.encode()) >= FIELDS["path"][1]:
            raise _Unsayable(pattern)
        return f"path == {_literal(folder)} or {_prefix('path', folder.rstrip('/') + '/')}"
    if k == "lang":
        forms = []
        for v in vals:
            v = _fits("lang", v.lower().replace("_", "-"))
            forms.append(f"lang == {_literal(v)} or {_prefix('lang', v + '-')}")
        return " or ".join(f"({f})" for f in forms)
    if k in ("after", "before", "date"):
        start, end = vals[0]
        known = f"date > {KNOWN_DATE!r}"
        after, before = f"date >= {start!r}", f"date < {end!r}"
        if end == float("inf"):
            before = known
        cond = {"after": after, "before": before, "date": f"{after} and {before}"}[k]
        return f"{known} and {cond}"
    if k == "size":
        kind, lo, hi = vals[0]  # whole bytes: integer bounds say the same of an int64
        if kind == "gt":
            cond = f"size > {_int64(math.floor, lo)}"
        elif kind == "lt":
            cond = f"size < {_int64(math.ceil, hi)}"
        else:
            cond = f"size >= {_int64(math.ceil, lo)}" + (
                f" and size <= {_int64(math.floor, hi)}" if hi != float("inf") else "")
        return f"size >= 0 and {cond}"
    if k in ("tag", "linked", "in"):  # relations live in the metadata store, not beside
        raise _Unsayable(k)  # the vectors: the allowed ids come from there
    raise AssertionError(k)  # pragma: no cover
