"""Domain errors. The CLI maps each to a one-line message; the library raises them."""

from __future__ import annotations

from .masking import mask_uris_in  # each message masks the URIs it quotes


class AnyfindError(Exception):
    """Base class of every error anyfind raises on purpose."""


class ConfigError(AnyfindError):
    """A setting or option is invalid."""


class ServiceUnreachable(ConfigError):
    """A service of the index (Milvus) did not answer: may pass; unlike a refusal."""


class IndexNotFound(AnyfindError):
    """The named index does not exist."""


class ModelMismatch(AnyfindError):
    """The index was built with other models than the ones asked for."""


class MissingExtra(AnyfindError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, module: str):
        super().__init__(
            f"this needs the '{extra}' extra (module '{module}' is missing): "
            f"pip install 'anyfind[{extra}]'"
        )
        self.extra = extra
        self.module = module


class SourceError(AnyfindError):
    """A whole source could not be read this time (unreachable host, bad credentials,
    missing ref or table, malformed archive). Its items stay as they were; others sync."""


class ExtractionError(AnyfindError):
    """One item's content could not be read or parsed. Recorded per item; the run goes on."""


class IndexLocked(AnyfindError):
    """Another process is writing to this index."""


class ContentUnavailable(AnyfindError):
    """An item's bytes cannot be given back (its parent changed or cannot be read)."""


class QueryError(AnyfindError):
    """A query or filter expression is invalid."""


class ExecutorError(AnyfindError):
    """The encoding executor could not run (a Ray cluster unreachable, refused or failed).
    What earlier batches committed stays; the next run resumes."""


class IndexDamaged(AnyfindError):
    """The index's files or its metadata store are not what its config says (emptied,
    truncated, replaced, another index's): nothing is answered from it."""


class StorageError(AnyfindError):
    """The index could not be written (disk full, read-only, no permission). What was
    committed before stays; the index remains usable for searching."""


def require(module: str, extra: str):
    """Import an optional module, or raise MissingExtra naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtra(extra, module) from exc


MAX_ID = 2**62  # ids are SQLite/PostgreSQL integers: anything larger cannot be one


def check_id(value: object, what: str = "item") -> int:
    """An id a caller passed (library, CLI, API), as an int, or a QueryError."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value))
        except ValueError:
            raise QueryError(f"{what} id must be a whole number, not {value!r}") from None
    if not 1 <= value <= MAX_ID:
        raise QueryError(f"no {what} {value} ({what} ids run from 1 to {MAX_ID})")
    return value


def one_line(exc: BaseException, limit: int = 500) -> str:
    """The one way an exception becomes a message for a user (a per-item error, a failed
    source, a failed export): ours as they are, an OSError by its reason, anything else
    with its type; whitespace folded, at most `limit` characters."""
    if isinstance(exc, AnyfindError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{type(exc).__name__}: {exc.strerror}"
    else:
        message = str(exc)
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    text = mask_uris_in(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit - 3] + "..."
