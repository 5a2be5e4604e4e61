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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from .errors import ConfigError

MASK = "***"
SECRETS_FILE = "secrets.json"
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEY = re.compile(
    r"pass(word|wd)?$|secret|token|credential|api_?key|access_?key|private_?key|"
    r"account_?key|^key$|^sig$|^sas$|signature",
    re.I,
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def is_reference(value: str) -> bool:
    """True when the value is made only of ${VAR} references (nothing literal to hide)."""
    return bool(value) and not _REF.sub("", value)


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

        return _REF.sub(sub, value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


# -- URIs ----------------------------------------------------------------------------------
# Credentials are split out by hand, not by urlsplit: a password may hold a raw "/" or "#"
# and a token a raw "#" (as database drivers read them: SQLAlchemy's URL takes a password
# up to its "@" and a query to the end), and urlsplit would cut them there and leave the
# tail printed. Only web URLs have fragments.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_WEB = {"http", "https", "ftp", "ftps"}
# What follows a user-info's "@": a host[:port] (empty for a Unix socket or a local path).
_HOST = re.compile(r"[A-Za-z0-9._~%\[\]:-]*")


@dataclass(frozen=True)
class _URI:
    scheme: str
    user: str | None  # raw text, as written
    password: str | None
    rest: str  # host, port and path, raw
    query: str | None  # raw, without its "?"
    fragment: str | None  # web URLs only


def _userinfo_end(after: str, web: bool) -> int | None:
    """Where the user-info ends (its "@"), or None. As database drivers read URLs, a
    password may hold any character, "@" too (in a web URL not "/": an "@" after one is a
    path's; a raw "?" or "#" there is masked all the same): the user-info ends at the
    first "@" followed by a host, whose
    user part holds no "/", "?" or "#" (else the "@" is in a path or a query) and whose
    password does not hold a query (`?key=`: then the "@" is in a query value)."""
    at = after.find("@")
    while at >= 0:
        user, colon, password = after[:at].partition(":")
        if any(c in user for c in "/?#"):
            return None
        if web and "/" in password:  # a path's "@" (a "/" in a password is %2F there)
            return None
        tail = re.split(r"[/?#]", after[at + 1:], maxsplit=1)[0]
        if _HOST.fullmatch(tail) and not re.search(r"\?[^=&]*=", password):
            return at
        at = after.find("@", at + 1)
    return None


def _split(uri: str) -> _URI | None:
    scheme, sep, after = uri.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    user = password = None
    at = _userinfo_end(after, scheme.lower() in _WEB)
    if at is not None:
        info, after = after[:at], after[at + 1:]
        user, colon, pw = info.partition(":")
        password = pw if colon else None
    fragment = None
    if scheme.lower() in _WEB:
        after, hash_, frag = after.partition("#")
        fragment = frag if hash_ else None
    rest, q, query = after.partition("?")
    return _URI(scheme, user, password, rest, query if q else None, fragment)


def _pairs(query: str) -> list[tuple[str, str, str | None]]:
    """(raw key, decoded key, raw value or None for a bare key) of each query part."""
    out = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        out.append((key, unquote_plus(key), value if eq else None))
    return out


def _secret_value(key: str, raw: str | None) -> bool:
    return raw is not None and is_secret_key(key) and not is_reference(unquote_plus(raw)) \
        and not _masked_already(raw)


def _masked_already(raw: str) -> bool:
    """A value masked before, as a message quotes it ("...?token=***: refused"): masking
    the message again keeps its punctuation."""
    return raw.startswith(MASK) and not raw[len(MASK):].strip(":,.;)]")


def _query_secrets(query: str | None) -> dict[str, str]:
    return {f"query.{key}": unquote_plus(raw) for _, key, raw in _pairs(query or "")
            if _secret_value(key, raw)}


def _join(parts: _URI, password: str | None, query: str | None) -> str:
    out = f"{parts.scheme}://"
    if parts.user is not None:
        out += f"{parts.user}:{password}@" if password is not None else f"{parts.user}@"
    out += parts.rest
    if query is not None:
        out += f"?{query}"
    if parts.fragment is not None:
        out += f"#{parts.fragment}"
    return out


def query_params(uri: str) -> tuple[str, dict[str, str]]:
    """(the URI without its query, the query's parameters decoded), read with the
    grammar that masks it: a "?" in a password does not start the query."""
    parts = _split(uri)
    if parts is None:
        base, _, query = uri.partition("?")
        return base, {unquote_plus(k): unquote_plus(v or "") for _, k, v in _pairs(query)
                      if k} if query else {}
    base = _join(_URI(parts.scheme, parts.user, parts.password, parts.rest, None, None),
                 parts.password, None)
    return base, {key: unquote_plus(raw) for _, key, raw in _pairs(parts.query or "")
                  if key and raw is not None}


def without_login(uri: str) -> str:
    parts = _split(uri)
    if parts is None or parts.user is None:
        return uri
    return _join(_URI(parts.scheme, None, None, parts.rest, parts.query, parts.fragment),
                 None, parts.query)


def uri_password(uri: str) -> str | None:
    parts = _split(uri)
    return parts.password if parts else None


def mask_uri(uri: str) -> str:
    """The URI safe to print or store: literal passwords and secret query values -> ***."""
    parts = _split(uri)
    if parts is None:
        return uri
    password = parts.password
    if password is not None and not is_reference(password):
        password = MASK
    query = parts.query
    if query:
        query = "&".join(f"{raw_key}={MASK}" if _secret_value(key, raw) else
                         raw_key if raw is None else f"{raw_key}={raw}"
                         for raw_key, key, raw in _pairs(query))
    return _join(parts, password, query)


def split_uri_secrets(uri: str) -> tuple[str, dict[str, str]]:
    """(masked uri, {"password": ..., "query.<key>": ...}) for literal secrets in a URI:
    the password as written, a query value decoded (restore_uri_secrets quotes it)."""
    parts = _split(uri)
    if parts is None:
        return uri, {}
    found: dict[str, str] = {}
    if parts.password is not None and not is_reference(parts.password):
        found["password"] = parts.password
    found.update(_query_secrets(parts.query))
    return mask_uri(uri), found


def restore_uri_secrets(uri: str, found: dict[str, str]) -> str:
    parts = _split(uri)
    if parts is None or not found:
        return uri
    password = parts.password
    if password == MASK and "password" in found:
        password = found["password"]
    query = parts.query
    if query and any(k.startswith("query.") for k in found):
        query = "&".join(
            f"{raw_key}={quote(found[f'query.{key}'], safe='${}')}"
            if raw == MASK and f"query.{key}" in found else
            raw_key if raw is None else f"{raw_key}={raw}"
            for raw_key, key, raw in _pairs(query))
    return _join(parts, password, query)


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
    parts = _split(uri)
    if parts is not None:
        if parts.password:
            values += [parts.password, unquote(parts.password)]
        for _, key, raw in _pairs(parts.query or ""):
            if raw and is_secret_key(key):
                values += [raw, unquote_plus(raw)]
    return sorted({v for v in values if v and v != MASK and len(v) >= 3}, key=len, reverse=True)


# A URI inside a message (a driver's error, a library's repr): up to whitespace or a quote.
_URI_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")


def mask_uris_in(text: str) -> str:
    """Every URI written inside a text, masked (the safety net under each message)."""
    if "://" not in text:
        return text
    return _URI_IN_TEXT.sub(lambda m: mask_uri(m.group(0)), text)


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
