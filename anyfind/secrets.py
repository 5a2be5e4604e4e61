"""Credentials in source URIs and options: expanded from the environment, masked when
shown, and kept out of the metadata store.

- `${NAME}` anywhere in a URI or a string option is replaced by the environment
  variable NAME when the connector is built; the reference itself is what gets stored.
- A literal password (in a URI's user-info, in a secret-looking query parameter or
  option such as `password`, `secret`, `token`) is replaced by `***` before the URI or
  options are stored or printed. The literal goes to `secrets.json` (mode 0600) inside
  the index folder, or stays in the TOML config file it came from.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

from .errors import ConfigError
from .masking import (  # noqa: F401 (the URI half of credentials, used from here too)
    MASK,
    REFERENCE,
    is_reference,
    is_secret_key,
    mask_uri,
    mask_uris_in,
    parse_uri,
    query_pairs,
    query_params,
    restore_uri_secrets,
    split_uri_secrets,
    uri_password,
    without_login,
)

SECRETS_FILE = "secrets.json"


# -- environment references ----------------------------------------------------------------
def expand_env(value: Any, env: dict[str, str] | None = None) -> Any:
    """Replace ${NAME} in strings (recursively in lists and dicts) by the environment."""
    env = os.environ if env is None else env
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name not in env:
                raise ConfigError(f"environment variable {name} is not set (referenced as ${{{name}}})")
            return env[name]

        return REFERENCE.sub(sub, value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


# -- options -------------------------------------------------------------------------------
def _walk(options: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(options, dict):
        for k, v in options.items():
            path = f"{prefix}{k}"
            if isinstance(v, str) and is_secret_key(str(k)):
                yield path, v
            elif isinstance(v, dict):
                yield from _walk(v, path + ".")


def mask_options(options: dict[str, Any]) -> dict[str, Any]:
    def mask(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: mask(v, str(k)) for k, v in value.items()}
        if isinstance(value, str):
            if is_secret_key(key) and not is_reference(value):
                return MASK
            return mask_uri(value) if "://" in value else value
        if isinstance(value, list):
            return [mask(v, key) for v in value]
        return value

    return mask(options)


def split_option_secrets(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    found = {path: v for path, v in _walk(options) if not is_reference(v)}
    return mask_options(options), found


def restore_option_secrets(options: dict[str, Any], found: dict[str, str]) -> dict[str, Any]:
    out = json.loads(json.dumps(options))
    for path, value in found.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        if node.get(leaf) == MASK:
            node[leaf] = value
    return out


def secret_values(uri: str, options: dict[str, Any]) -> list[str]:
    """Every credential in an expanded URI and options, for redacting error messages."""
    values = [v for _, v in _walk(options)]
    parts = parse_uri(uri)
    if parts is not None:
        if parts.password:
            values += [parts.password, unquote(parts.password)]
        for _, key, raw in query_pairs(parts.query or ""):
            if raw and is_secret_key(key):
                values += [raw, unquote_plus(raw)]
    return sorted({v for v in values if v and v != MASK and len(v) >= 3}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return mask_uris_in(text)


# -- the per-index secrets file ------------------------------------------------------------
class SecretFile:
    """`secrets.json` in the index folder (0600): literal credentials given on the
    command line or to the API, keyed by source name. Never in the metadata store."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / SECRETS_FILE

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} is unreadable: {exc}") from exc

    def get(self, key: str) -> dict[str, str]:
        return dict(self._load().get(key, {}))

    def put(self, key: str, values: dict[str, str]) -> None:
        data = self._load()
        if values:
            data[key] = values
        elif key in data:
            del data[key]
        else:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(self.path.with_suffix(".tmp"), self.path)
