"""Filters as SQL over items, sources and chunks (SQLAlchemy expressions).

Kept apart from the parser (filters.py) so that a query without filters never imports
SQLAlchemy: the cold `anyfind search` path reads the store through sqlite3 alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased

from ..store.schema import Item, Relation, Source
from ..store.sqltext import like_escape
from .filters import NAME_KEYS, Clause, glob_to_like


def condition(clauses: Sequence[Clause], dialect: str, collation: str | None = None
              ) -> ColumnElement[bool]:
    """Every clause must hold; repeated name keys are alternatives (OR). `collation`:
    the one case folding follows (MetadataStore.fold_collation)."""
    parts: list[ColumnElement[bool]] = []
    by_key: dict[tuple[str, bool], list[ColumnElement[bool]]] = {}
    for c in clauses:
        cond = _condition(c, dialect, collation)
        if c.key in NAME_KEYS:
            by_key.setdefault((c.key, c.negated), []).append(cond)
        else:
            parts.append(not_(cond) if c.negated else cond)
    for (_, negated), conds in by_key.items():
        any_of = or_(*conds)
        parts.append(not_(any_of) if negated else any_of)
    return and_(true(), *parts)


def _like(col, pattern: str, collation: str | None) -> ColumnElement[bool]:
    """The column case-folded as Python folds the pattern (str.lower): SQLite's lower()
    is Python's on anyfind's connections (store/metadata.py); PostgreSQL folds under the
    store's ICU collation (full Unicode case mapping, as Python's) where it has one."""
    folded = func.lower(col.collate(collation) if collation else col)
    return folded.like(pattern, escape="\\")



def _path_condition(pattern: str, collation: str | None) -> ColumnElement[bool]:
    """Absolute patterns anchor at the start; others may start after any '/'. A pattern
    without wildcards also matches everything under it as a folder (`path:/`: every
    absolute path)."""
    pattern = pattern.rstrip("/") or "/"
    like = glob_to_like(pattern)
    forms = [like] if any(c in pattern for c in "*?") else [like, like.rstrip("/") + "/%"]
    if not pattern.startswith("/"):
        forms += ["%/" + f for f in forms]
    return or_(*(_like(Item.path, f, collation) for f in forms))


def item_date(dialect: str) -> ColumnElement[Any]:
    """meta.taken when it is a number, else mtime."""
    if dialect == "sqlite":
        return literal_column(
            "(CASE WHEN json_type(items.meta, '$.taken') IN ('integer', 'real') "
            "THEN json_extract(items.meta, '$.taken') ELSE items.mtime END)")
    if dialect == "postgresql":
        return literal_column(
            "(CASE WHEN json_typeof(CAST(items.meta AS json) -> 'taken') = 'number' "
            "THEN CAST(CAST(items.meta AS json) ->> 'taken' AS double precision) "
            "ELSE items.mtime END)")
    return Item.mtime


def item_language(dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return literal_column("json_extract(items.meta, '$.language')")
    if dialect == "postgresql":
        return literal_column("(CAST(items.meta AS json) ->> 'language')")
    return literal_column("NULL")


def _condition(c: Clause, dialect: str, collation: str | None) -> ColumnElement[bool]:
    """The clause as SQL, never NULL (so that NOT works on items lacking the field)."""
    k, vals = c.key, c.values
    if k == "modality":
        return and_(Item.modality.isnot(None), Item.modality.in_(vals))
    if k == "media":
        return and_(Item.media_type.isnot(None),
                    or_(*(_like(Item.media_type, glob_to_like(v), collation) for v in vals)))
    if k == "source":
        return or_(*(_like(Source.name, glob_to_like(v), collation) for v in vals))
    if k == "ext":
        return or_(*(_like(Item.path, "%." + like_escape(v.lower()), collation) for v in vals))
    if k == "path":
        return _path_condition(vals[0], collation)
    if k == "lang":
        # pt_BR and pt-BR are one language: both sides compare with '-' (as the Milvus
        # fields do, store/filter_fields.py).
        raw = item_language(dialect)
        lang = func.replace(func.lower(raw.collate(collation) if collation else raw), "_", "-")
        forms = []
        for v in vals:
            v = v.lower().replace("_", "-")
            forms += [lang == v, lang.like(like_escape(v) + "-%", escape="\\")]
        return and_(raw.isnot(None), or_(*forms))
    if k in ("after", "before", "date"):
        date = item_date(dialect)
        start, end = vals[0]
        cond = {"after": date >= start, "before": date < end,
                "date": and_(date >= start, date < end)}[k]
        return and_(date.isnot(None), cond)
    if k == "size":
        kind, lo, hi = vals[0]
        if kind == "gt":
            cond = Item.size > lo
        elif kind == "lt":
            cond = Item.size < hi
        else:
            cond = and_(Item.size >= lo, Item.size <= hi) if hi != float("inf") else Item.size >= lo
        return and_(Item.size.isnot(None), cond)
    if k == "tag":
        return or_(*(_has_tag(v, dialect) for v in vals))
    if k in ("linked", "in"):
        return or_(*(_related_to(v, embedded=k == "in") for v in vals))
    raise AssertionError(k)  # pragma: no cover


def _has_tag(tag: str, dialect: str) -> ColumnElement[bool]:
    """The item (a note) carries the tag (meta.note_tags), case-insensitively."""
    tag = tag.lower()
    if dialect == "sqlite":
        return exists(select(literal_column("1")).select_from(
            func.json_each(Item.meta, "$.note_tags").table_valued("value"))
            .where(func.lower(literal_column("value")) == tag))
    if dialect == "postgresql":
        tags = func.json_array_elements_text(
            func.cast(Item.meta, JSON)["note_tags"]).table_valued("value")
        return exists(select(literal_column("1")).select_from(tags)
                      .where(func.lower(literal_column("value")) == tag))
    return false()


def _notes_named(name: str, note) -> ColumnElement[bool]:
    """A note by its name (`Deep Q Learning`, `.md` implied) or a path glob."""
    low = like_escape(name.lower().rstrip("/"))
    forms = [low, low + ".md"] if not low.endswith(".md") else [low]
    if any(ch in name for ch in "*?"):
        forms = [glob_to_like(name.lower())]
    return or_(*(func.lower(note.path).like(f, escape="\\") for f in forms),
               *(func.lower(note.path).like("%/" + f, escape="\\") for f in forms))


def _related_to(name: str, embedded: bool) -> ColumnElement[bool]:
    """Items that a note named `name` embeds (embedded), or that link to it or that it
    links or embeds (the note itself left out: a note embedding itself is no neighbour)."""
    note = aliased(Item, name="note")
    to_note = (select(Relation.id).join(note, note.id == Relation.from_item)
               .where(Relation.to_item == Item.id, note.id != Item.id,
                      _notes_named(name, note)))
    if embedded:
        return exists(to_note.where(Relation.kind == "embed"))
    from_note = (select(Relation.id).join(note, note.id == Relation.to_item)
                 .where(Relation.from_item == Item.id, note.id != Item.id,
                        _notes_named(name, note)))
    return or_(exists(to_note), exists(from_note))
