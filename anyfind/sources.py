"""Persistent sources: what kind a URI is, the TOML config file, and building the
connector of a stored source with its credentials put back.

anyfind.toml (in the index folder, or given with --config):

    [sources.notes]
    uri = "~/notes"
    exclude = ["*.tmp"]

    [sources.crm]
    uri = "postgresql+psycopg://reader:${CRM_PASSWORD}@db.internal/crm"
    table = "tickets"
    id_column = "id"
    text_columns = ["subject", "body"]
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .secrets import (
    expand_env,
    mask_uri,
    restore_option_secrets,
    restore_uri_secrets,
    secret_values,
    split_option_secrets,
    split_uri_secrets,
)

CONFIG_NAME = "anyfind.toml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SQL_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle",
                         "mssql", "cockroachdb", "duckdb", "snowflake"})
OBJECT_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass
class SourceSpec:
    """A source as declared: name, kind, URI (may hold ${ENV} references) and options."""

    name: str
    uri: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    origin: str = "store"  # store | config file path


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigError(f"invalid source name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


def is_archive_path(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def infer_kind(uri: str, options: dict[str, Any] | None = None) -> str:
    """The connector kind a URI calls for (see README, "Sources and connectors")."""
    from .connectors import connectors

    options = options or {}
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    base = scheme.split("+", 1)[0]
    if scheme.startswith("git+") or uri.startswith("git@") or scheme in ("git", "ssh"):
        return "git"
    if base in SQL_SCHEMES:
        return "sql"
    if scheme in OBJECT_SCHEMES:
        return "objectstore"
    if scheme in ("zip", "tar"):
        return "archive"
    if scheme in ("http", "https"):
        if uri.rstrip("/").endswith(".git"):
            return "git"
        return "archive" if is_archive_path(uri.split("?", 1)[0]) else "web"
    if scheme and scheme != "file" and scheme in connectors.names():
        return scheme  # a third-party connector named after its scheme
    path = Path(uri[len("file://"):] if scheme == "file" else uri).expanduser()
    if path.is_file() and is_archive_path(path.name):
        return "archive"
    if path.is_dir() and (options.get("ref") or options.get("commits")) and (
            (path / ".git").exists() or (path / "HEAD").is_file() and (path / "objects").is_dir()):
        return "git"
    if scheme and scheme != "file":
        raise ConfigError(f"cannot tell what kind of source {mask_uri(uri)} is: pass --kind")
    return "filesystem"


def normalise_uri(kind: str, uri: str) -> str:
    """Absolute paths for local sources, so a source means the same from any folder."""
    if uri.startswith("${"):
        return uri  # an environment reference, resolved when the source syncs
    if "://" in uri or uri.startswith("git@"):
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            rest = uri[len("sqlite:///"):]
            if rest and not rest.startswith(":memory:"):
                return "sqlite:///" + str(Path(rest).expanduser().absolute())
        return uri
    return str(Path(uri).expanduser().absolute())


# -- the TOML file -------------------------------------------------------------------------
def load_config(path: str | os.PathLike) -> dict[str, SourceSpec]:
    """Sources declared in a TOML file, by name."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise ConfigError(f"{path}: [sources] must be a table of tables")
    specs: dict[str, SourceSpec] = {}
    for name, body in sources.items():
        check_name(name)
        if not isinstance(body, dict) or not isinstance(body.get("uri"), str):
            raise ConfigError(f"{path}: source '{name}' needs a uri = \"...\"")
        body = dict(body)
        uri = body.pop("uri")
        kind = body.pop("kind", None) or infer_kind(expand_env(uri), body)
        specs[name] = SourceSpec(name, normalise_uri(kind, uri), kind, body, origin=str(path))
    return specs


# -- stored form and runtime form ----------------------------------------------------------
def stored_form(spec: SourceSpec) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(uri, options) safe for the store, plus the literal secrets taken out of them."""
    uri, uri_found = split_uri_secrets(spec.uri)
    options, opt_found = split_option_secrets(spec.options)
    found = {f"uri.{k}": v for k, v in uri_found.items()}
    found |= {f"opt.{k}": v for k, v in opt_found.items()}
    return uri, options, found


def runtime_form(uri: str, options: dict[str, Any], found: dict[str, str]
                 ) -> tuple[str, dict[str, Any], list[str]]:
    """(uri, options) with secrets put back and ${ENV} expanded, and the secret values."""
    uri = restore_uri_secrets(uri, {k[4:]: v for k, v in found.items() if k.startswith("uri.")})
    options = restore_option_secrets(
        options, {k[4:]: v for k, v in found.items() if k.startswith("opt.")})
    uri, options = expand_env(uri), expand_env(options)
    if "***" in uri or _has_mask(options):
        raise ConfigError("a credential of this source is masked and not known here: give it "
                          "again with `anyfind sources add --replace`, or as ${ENV_VAR}")
    return uri, options, secret_values(uri, options)


def _has_mask(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_mask(v) for v in value)
    return value == "***"
