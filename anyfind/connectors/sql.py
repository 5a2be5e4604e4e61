"""SQL databases through SQLAlchemy: each row of a table (or of a SELECT) is an item.

Identifiers from options go through SQLAlchemy's quoting (reflected tables, `column()`
objects) and every value is a bound parameter, so options cannot inject SQL. With an
`updated_column` the fingerprint is that column's value; without it, a hash of the row.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError
from ..secrets import mask_uri
from .base import Blob, Connector, ItemRef, ScanError

CONNECT_TIMEOUT = 10
MAX_URL_BYTES = 200 * 1024 * 1024


def _columns(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def json_safe(value: Any) -> Any:
    """A column value as something JSON can hold (metadata is stored as JSON)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


class SQLConnector(Connector):
    """Options: table (with optional schema) or query; id_column (default: the table's
    primary key); text_columns (default: the table's string columns); title_column;
    blob_column (bytes: an image, audio, a PDF...) or url_column (a path or URL to fetch);
    updated_column (fingerprint without hashing rows); label (names a query in URIs)."""

    kind = "sql"
    option_names = frozenset({"table", "schema", "query", "id_column", "text_columns",
                              "title_column", "blob_column", "url_column", "updated_column",
                              "label", "retries"})

    def __init__(self, uri: str, **options: Any):
        super().__init__(uri, **options)
        self.table = options.get("table")
        self.schema = options.get("schema")
        self.query = options.get("query")
        if bool(self.table) == bool(self.query):
            raise ConfigError("a sql source needs exactly one of table or query")
        self.id_column = options.get("id_column")
        self.text_columns = _columns(options.get("text_columns"))
        self.title_column = options.get("title_column")
        self.blob_column = options.get("blob_column")
        self.url_column = options.get("url_column")
        self.updated_column = options.get("updated_column")
        if self.blob_column and self.url_column:
            raise ConfigError("give blob_column or url_column, not both")
        if self.query and not self.id_column:
            raise ConfigError("a sql query source needs id_column")
        self.retries = max(1, int(options.get("retries", 3)))
        self.label = str(options.get("label") or self.table or "query")
        self._engine = None
        self._sel = None
        self._ids: dict[str, Any] = {}  # item uri -> the id value as the database has it

    # -- connecting ----------------------------------------------------------------------
    def _make_engine(self):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.uri)
        except Exception as exc:
            raise SourceError(f"invalid database URL {self.describe()}: {exc}") from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            db = url.database or ""
            if db and db != ":memory:" and not db.startswith("file:") and not Path(db).is_file():
                raise SourceError(f"database file {db} does not exist")
            connect_args: dict[str, Any] = {"timeout": 30}
        elif backend in ("postgresql", "mysql", "mariadb"):
            connect_args = {"connect_timeout": CONNECT_TIMEOUT}
        else:
            connect_args = {}
        try:
            return create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            extra = "postgres" if backend == "postgresql" else "connectors"
            raise SourceError(f"no database driver for {url.drivername} ({exc.name} is not "
                              f"installed; try pip install 'anyfind[{extra}]')") from None
        except Exception as exc:
            raise SourceError(f"cannot use database URL {self.describe()}: {exc}") from None

    def _connect(self):
        from sqlalchemy.exc import DBAPIError

        if self._engine is None:
            self._engine = self._make_engine()
        for attempt in range(self.retries):
            try:
                return self._engine.connect()
            except DBAPIError as exc:
                if attempt + 1 == self.retries:
                    first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                    raise SourceError(f"cannot connect to {self.describe()}: {first}") from None
                time.sleep(0.5 * (attempt + 1))  # back off before the next try
        raise AssertionError("unreachable")

    # -- the selectable and its columns --------------------------------------------------
    def _selectable(self, conn):
        from sqlalchemy import MetaData, Table, column, text
        from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

        if self.table:
            try:
                table = Table(self.table, MetaData(), schema=self.schema, autoload_with=conn)
            except NoSuchTableError:
                where = f"{self.schema}.{self.table}" if self.schema else self.table
                raise SourceError(f"table {where!r} does not exist in {self.describe()}") from None
            if not self.id_column:
                pk = [c.name for c in table.primary_key.columns]
                if len(pk) != 1:
                    raise SourceError(f"table {self.table!r} has no single-column primary key: "
                                      "give id_column")
                self.id_column = pk[0]
            if not self.text_columns and not (self.blob_column or self.url_column):
                self.text_columns = [c.name for c in table.columns if _is_string(c)
                                     and c.name not in (self.id_column, self.updated_column)]
            return table
        try:
            result = conn.execute(text(self.query))
            keys = list(result.keys())
            result.close()
        except SQLAlchemyError as exc:
            raise SourceError(f"query failed: {_first_line(exc)}") from None
        if not self.text_columns and not (self.blob_column or self.url_column):
            self.text_columns = [k for k in keys if k not in (self.id_column, self.updated_column)]
        return text(self.query).columns(*[column(k) for k in keys]).subquery("anyfind_query")

    def _check_columns(self, sel) -> None:
        have = set(sel.c.keys())
        wanted = [self.id_column, *self.text_columns, self.title_column, self.blob_column,
                  self.url_column, self.updated_column]
        for name in wanted:
            if name and name not in have:
                raise SourceError(f"column {name!r} not found in {self.label} "
                                  f"(columns: {', '.join(sorted(have))})")
        if not self.text_columns and not (self.blob_column or self.url_column):
            raise SourceError(f"{self.label} has no text columns: give text_columns")

    # -- scanning ------------------------------------------------------------------------
    def scan(self) -> Iterator[ItemRef]:
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        with self._connect() as conn:
            self._sel = sel = self._selectable(conn)
            self._check_columns(sel)
            # The blob is read in scan only when it is the only way to see a change.
            skip = {self.blob_column} if self.blob_column and self.updated_column else set()
            cols = [c for c in sel.c if c.key not in skip]
            try:
                result = conn.execution_options(stream_results=True, yield_per=500).execute(
                    select(*cols))
                refs = [ref for row in result if (ref := self._ref(row._mapping)) is not None]
            except SQLAlchemyError as exc:
                raise SourceError(f"reading {self.label} failed: {_first_line(exc)}") from None
        yield from refs

    def _ref(self, row) -> ItemRef | None:
        key = row[self.id_column]
        if key is None:
            self.scan_errors.append(ScanError(f"{self.label}#NULL", "row with a NULL id skipped"))
            return None
        text = self._text(row)
        if not text and not (self.blob_column or self.url_column):
            return None  # every text column is NULL or empty: nothing to index
        uri = f"{self._base()}#{key}"
        self._ids[uri] = key
        if self.updated_column:
            fingerprint = f"u:{json_safe(row[self.updated_column])}"
        else:
            h = hashlib.blake2b(digest_size=16)
            for k in sorted(row.keys()):
                v = row[k]
                h.update(repr((k, bytes(v) if isinstance(v, memoryview) else v)).encode())
            fingerprint = f"h:{h.hexdigest()}"
        name = ""
        if self.url_column and row[self.url_column]:
            name = ":" + str(row[self.url_column]).rstrip("/").rsplit("/", 1)[-1]
        return ItemRef(
            uri=uri, path=f"{self.label}#{key}{name}",
            size=len(text.encode()) if not (self.blob_column or self.url_column) else None,
            fingerprint=fingerprint[:250],
            metadata=self._metadata(row),
        )

    def _base(self) -> str:
        return f"{mask_uri(self.uri)}/{self.label}"

    def _text(self, row) -> str:
        # A NUL in a value would make the text look like UTF-16 to the decoder.
        parts = [str(row[c]).replace("\x00", " ").strip() for c in self.text_columns
                 if row[c] is not None]
        return "\n\n".join(p for p in parts if p)

    def _metadata(self, row) -> dict[str, Any]:
        skip = {*self.text_columns, self.blob_column}
        meta = {k: json_safe(v) for k, v in row.items() if k not in skip}
        if self.blob_column or self.url_column:  # their text is the caption, kept as metadata
            meta.update({c: json_safe(row[c]) for c in self.text_columns})
        return {"table": self.label, "row": meta}

    # -- reading -------------------------------------------------------------------------
    def open(self, ref: ItemRef) -> Blob:
        from sqlalchemy import select

        sel = self._sel
        with self._connect() as conn:
            row = conn.execute(select(sel).where(sel.c[self.id_column] == self._ids[ref.uri])
                               ).mappings().first()
        if row is None:
            raise OSError(f"row {ref.path} is gone")
        if self.blob_column:
            value = row[self.blob_column]
            if value is None:
                raise OSError(f"{self.blob_column} is NULL")
            data = bytes(value)
        elif self.url_column:
            data = _fetch(row[self.url_column])
        else:
            data = self._text(row).encode()
        return Blob(ref, lambda: io.BytesIO(data))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _is_string(col) -> bool:
    try:
        return col.type.python_type is str
    except NotImplementedError:
        return False


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fetch(location: Any) -> bytes:
    """The bytes a path/URL column points at (local paths, file:// and fsspec URLs)."""
    if location is None:
        raise OSError("the path/URL column is NULL")
    location = str(location)
    if "://" not in location:
        path = Path(location).expanduser()
        if path.stat().st_size > MAX_URL_BYTES:
            raise OSError(f"{path} is larger than {MAX_URL_BYTES} bytes")
        return path.read_bytes()
    from .remote import read_url

    return read_url(location, MAX_URL_BYTES)


__all__ = ["SQLConnector", "json_safe"]
