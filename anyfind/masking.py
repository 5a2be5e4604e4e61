"""Credentials inside URIs: the grammar that finds them, masking them for display, and
splitting them out (for secrets.json) and back. No anyfind import: every layer may use it,
errors.one_line included (each message masks the URIs it quotes).

Logins are read as database drivers read them, not with urlsplit: a password may hold a
raw "/", "#" or "@" and a token a raw "#" (SQLAlchemy's URL takes a password up to its
"@" and a query to its end); urlsplit would cut them there and leave the tail printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

MASK = "***"
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEY = re.compile(
    r"pass(word|wd)?$|secret|token|credential|api_?key|access_?key|private_?key|"
    r"account_?key|^key$|^sig$|^sas$|signature",
    re.I,
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def is_reference(value: str) -> bool:
    """True when the value is made only of ${VAR} references (nothing literal to hide)."""
    return bool(value) and not REFERENCE.sub("", value)


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


def parse_uri(uri: str) -> _URI | None:
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


def query_pairs(query: str) -> list[tuple[str, str, str | None]]:
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
    return {f"query.{key}": unquote_plus(raw) for _, key, raw in query_pairs(query or "")
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
    parts = parse_uri(uri)
    if parts is None:
        base, _, query = uri.partition("?")
        return base, {unquote_plus(k): unquote_plus(v or "") for _, k, v in query_pairs(query)
                      if k} if query else {}
    base = _join(_URI(parts.scheme, parts.user, parts.password, parts.rest, None, None),
                 parts.password, None)
    return base, {key: unquote_plus(raw) for _, key, raw in query_pairs(parts.query or "")
                  if key and raw is not None}


def without_login(uri: str) -> str:
    parts = parse_uri(uri)
    if parts is None or parts.user is None:
        return uri
    return _join(_URI(parts.scheme, None, None, parts.rest, parts.query, parts.fragment),
                 None, parts.query)


def uri_password(uri: str) -> str | None:
    parts = parse_uri(uri)
    return parts.password if parts else None


def mask_uri(uri: str) -> str:
    """The URI safe to print or store: literal passwords and secret query values -> ***."""
    parts = parse_uri(uri)
    if parts is None:
        return uri
    password = parts.password
    if password is not None and not is_reference(password):
        password = MASK
    query = parts.query
    if query:
        query = "&".join(f"{raw_key}={MASK}" if _secret_value(key, raw) else
                         raw_key if raw is None else f"{raw_key}={raw}"
                         for raw_key, key, raw in query_pairs(query))
    return _join(parts, password, query)


def split_uri_secrets(uri: str) -> tuple[str, dict[str, str]]:
    """(masked uri, {"password": ..., "query.<key>": ...}) for literal secrets in a URI:
    the password as written, a query value decoded (restore_uri_secrets quotes it)."""
    parts = parse_uri(uri)
    if parts is None:
        return uri, {}
    found: dict[str, str] = {}
    if parts.password is not None and not is_reference(parts.password):
        found["password"] = parts.password
    found.update(_query_secrets(parts.query))
    return mask_uri(uri), found


def restore_uri_secrets(uri: str, found: dict[str, str]) -> str:
    parts = parse_uri(uri)
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
            for raw_key, key, raw in query_pairs(query))
    return _join(parts, password, query)


# A URI inside a message (a driver's error, a library's repr): up to whitespace or a quote.
_URI_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")


def mask_uris_in(text: str) -> str:
    """Every URI written inside a text, masked (the safety net under each message)."""
    if "://" not in text:
        return text
    return _URI_IN_TEXT.sub(lambda m: mask_uri(m.group(0)), text)
