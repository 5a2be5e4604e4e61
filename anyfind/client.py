"""`anyfind search --server URL`: the query answered by a running `anyfind serve`.

A warm server has its models loaded and its vector files in memory, so a search costs
one HTTP round trip. Only the standard library is used (urllib), so the CLI imports
nothing heavy on this path either. Text goes to GET /api/search, an image or a spoken
clip to POST /api/search (multipart); the results come back as the `search --json`
objects and are printed exactly as a local search prints them.

The server must serve the index this command would search: each response names its
index, compared with the one resolved here (a different one is an error, never a
quietly different answer).
"""

from __future__ import annotations

import json
import mimetypes
import os
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from .errors import AnyfindError, QueryError
from .search.results import Result, Results

TOKEN_ENV = "ANYFIND_TOKEN"
TIMEOUT_S = 30.0
MAX_K = 100  # the API's limit on k


class ServerError(AnyfindError):
    """The server could not be reached, refused the request, or serves another index."""


def configured_server(index_path: Path) -> str | None:
    """`[search] server = "http://..."` in the index's anyfind.toml, if any."""
    file = index_path / "anyfind.toml"
    if not file.is_file():
        return None
    import tomllib

    try:
        data = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None  # `anyfind sources` reports a broken file; a search just goes local
    server = (data.get("search") or {}).get("server")
    return server if isinstance(server, str) and server.strip() else None


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = TIMEOUT_S):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ServerError(f"--server needs an http(s) URL like http://127.0.0.1:8000, "
                              f"not {url!r}")
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.timeout = timeout

    # -- HTTP ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None,
                 content_type: str | None = None) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + path, data=body, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(
                f"cannot reach the anyfind server at {self.url} ({reason}): start it with "
                "`anyfind serve`, or search locally with --local") from None
        try:
            return json.loads(payload)
        except ValueError:
            raise ServerError(f"{self.url} did not answer like an anyfind server "
                              "(not JSON)") from None

    def _http_error(self, exc) -> AnyfindError:
        try:
            detail = json.loads(exc.read()).get("detail")
        except (ValueError, AttributeError, OSError):
            detail = None
        if isinstance(detail, list):  # FastAPI validation errors
            detail = "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, dict))
        if exc.code == 401:
            return ServerError(f"the server at {self.url} needs a token: set {TOKEN_ENV}")
        if exc.code == 404:
            return ServerError(f"{self.url} has no /api/search: is it an anyfind server?")
        if exc.code in (400, 413, 415, 422):
            return QueryError(f"the server refused the query: {detail or exc.reason}")
        return ServerError(f"the server at {self.url} answered {exc.code}: "
                           f"{detail or exc.reason}")

    # -- search ----------------------------------------------------------------------------
    def search(self, index_path: Path, text: str | None = None, *, image: str | None = None,
               audio: str | None = None, k: int = 10, offset: int = 0, mode: str = "hybrid",
               filters: str | None = None, chunks: bool = False, floor: bool = True
               ) -> Results:
        """Results as a local Index.search would return them, from the server."""
        if image is not None and audio is not None:
            raise QueryError("give an image or an audio clip, not both")
        if (image is not None or audio is not None) and text is not None:
            raise QueryError("with --server, give either words or --image/--audio, not both")
        if not 1 <= k <= MAX_K:
            raise QueryError(f"with --server, -k is between 1 and {MAX_K}")
        if image is not None or audio is not None:
            if chunks:
                raise QueryError("with --server, --chunks works with words only")
            data = self._example_bytes(image if image is not None else audio)
            name = Path(urlsplit(str(image)).path if image is not None else str(audio)).name
            form = {"k": str(k), "offset": str(offset), "mode": mode}
            if filters:
                form["filters"] = filters
            if not floor:
                form["all"] = "true"
            body, ctype = multipart(form, "file", name or "query", data)
            answer = self._request("POST", "/api/search", body, ctype)
        else:
            params: dict[str, Any] = {"q": text, "k": k, "offset": offset, "mode": mode}
            if filters:
                params["filters"] = filters
            if chunks:
                params["chunks"] = "true"
            if not floor:
                params["all"] = "true"
            answer = self._request("GET", "/api/search?" + urlencode(params))
        self._check_index(answer, index_path)
        return Results([to_result(r) for r in answer.get("results", [])],
                       hidden=int(answer.get("hidden") or 0))

    def _example_bytes(self, where: str) -> bytes:
        from .fetch import read_example

        return read_example(where)

    def _check_index(self, answer: dict[str, Any], index_path: Path) -> None:
        served = answer.get("index")
        if served is None:  # a server from before responses named their index
            served = self._request("GET", "/api/status").get("index")
        if served is None or not same_path(served, index_path):
            raise ServerError(f"the server at {self.url} serves the index {served}, not "
                              f"{index_path}: pass --index {served} (or search locally with "
                              "--local)")


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def to_result(data: dict[str, Any]) -> Result:
    known = {f.name for f in fields(Result)}
    return Result(**{k: v for k, v in data.items() if k in known})


def multipart(form: dict[str, str], file_field: str, filename: str, data: bytes
              ) -> tuple[bytes, str]:
    """A multipart/form-data body with text fields and one file, and its content type."""
    boundary = f"anyfind-{uuid.uuid4().hex}"
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    ctype = mimetypes.guess_type(safe_name)[0] or "application/octet-stream"
    out = bytearray()
    for key, value in form.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
                f"{value}\r\n").encode()
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{safe_name}"\r\nContent-Type: {ctype}\r\n\r\n').encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
