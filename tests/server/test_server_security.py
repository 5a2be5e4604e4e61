"""Security: tokens, traversal, upload limits, binding, CORS, Host checks, no secrets out."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from anyfind.cli import cli
from anyfind.errors import ConfigError
from anyfind.server.binding import allowed_hosts, check_bind, is_loopback
from anyfind.server.security import mask_url
from tests.server.server_fixtures import PHOTOS, TOKEN, ids_by_name

AUTH = {"Authorization": f"Bearer {TOKEN}"}
API_ROUTES = ["/api/search?q=coffee", "/api/status", "/api/items/1", "/api/items/1/content",
              "/api/items/1/thumbnail", "/api/items/1/similar"]


@pytest.mark.parametrize("route", API_ROUTES)
def test_every_api_route_needs_the_token(secured_client, route):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
        resp = secured_client.get(route, headers=headers)
        assert resp.status_code == 401, (route, headers)
        assert resp.headers["www-authenticate"] == "Bearer"
    assert secured_client.get(route, headers=AUTH).status_code in (200, 404, 501)


def test_upload_needs_the_token(secured_client):
    files = {"file": ("cat.jpg", (PHOTOS / "chelsea.jpg").read_bytes(), "image/jpeg")}
    assert secured_client.post("/api/search", files=files).status_code == 401


def test_health_and_page_need_no_token(secured_client):
    assert secured_client.get("/healthz").json() == {"status": "ok"}
    assert secured_client.get("/").status_code == 200  # the page asks for the token itself
    assert secured_client.get("/static/app.js").status_code == 200


def test_session_cookie_stands_in_for_the_header(secured_client):
    secured_client.cookies.clear()
    assert secured_client.post("/api/session").status_code == 401
    resp = secured_client.post("/api/session", headers=AUTH)
    assert resp.status_code == 204
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    assert secured_client.get("/api/status").status_code == 200  # cookie only
    secured_client.cookies.clear()
    secured_client.cookies.set("anyfind_session", "forged")
    assert secured_client.get("/api/status").status_code == 401
    secured_client.cookies.clear()


@pytest.mark.parametrize("path", [
    "/api/items/..%2f..%2fetc%2fpasswd/content",
    "/api/items/../../etc/passwd/content",
    "/api/items/%2e%2e%2f%2e%2e%2fetc%2fpasswd/content",
    "/api/items/1%2f..%2f..%2fetc%2fpasswd/content",
    "/api/items/1.5/content",
    "/api/items/-1/content",
    "/api/items/0/content",
    "/api/items/99999999999999999999999/content",
    "/api/items/%00/content",
    "/api/items/1/content/../../../../etc/passwd",
    "/static/../../../../etc/passwd",
    "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
])
def test_traversal_attempts_never_serve_a_file(client, path):
    resp = client.get(path)
    assert resp.status_code in (400, 404, 422), (path, resp.status_code)
    assert b"root:" not in resp.content


def test_content_only_by_indexed_id(client):
    ids = ids_by_name(client)
    assert client.get(f"/api/items/{ids['chelsea.jpg']}/content").status_code == 200
    assert client.get("/api/items/987654/content").status_code == 404
    # No query parameter can name a path.
    resp = client.get(f"/api/items/{ids['chelsea.jpg']}/content", params={"path": "/etc/passwd"})
    assert resp.content == (PHOTOS / "chelsea.jpg").read_bytes()


def test_indexed_html_is_sandboxed(client):
    ids = ids_by_name(client)
    resp = client.get(f"/api/items/{ids['page.html']}/content")
    assert resp.status_code == 200 and "<script>" in resp.text
    assert resp.headers["content-security-policy"].startswith("sandbox")
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_oversize_upload_is_413(secured_client):
    big = b"\xff\xd8\xff\xe0" + b"\0" * (2 * 1024 * 1024)  # the limit here is 1 MiB
    resp = secured_client.post("/api/search", headers=AUTH,
                               files={"file": ("big.jpg", big, "image/jpeg")})
    assert resp.status_code == 413


def test_oversize_chunked_upload_is_413(secured_client):
    def body():  # no Content-Length: the stream itself is counted
        yield (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'
               b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0")
        for _ in range(40):
            yield b"\0" * 65536

    resp = secured_client.post(
        "/api/search", content=body(),
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b0undary"})
    assert resp.status_code == 413


def test_upload_just_under_the_limit_passes_the_size_check(secured_client):
    data = (PHOTOS / "coffee.jpg").read_bytes()
    assert len(data) < 1024 * 1024
    resp = secured_client.post("/api/search", headers=AUTH,
                               files={"file": ("coffee.jpg", data, "image/jpeg")})
    assert resp.status_code == 200


@pytest.mark.parametrize("name,data,ctype", [
    ("notes.jpg", b"just some text pretending to be a photo", "image/jpeg"),
    ("doc.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
    ("x.png", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/svg+xml"),
    ("archive.wav", b"PK\x03\x04" + b"\0" * 100, "audio/wav"),
])
def test_wrong_upload_type_is_415(client, name, data, ctype):
    resp = client.post("/api/search", files={"file": (name, io.BytesIO(data), ctype)})
    assert resp.status_code == 415, resp.text


def test_corrupt_image_is_422_and_empty_upload_400(client):
    truncated = (PHOTOS / "coffee.jpg").read_bytes()[:600]
    resp = client.post("/api/search", files={"file": ("c.jpg", truncated, "image/jpeg")})
    assert resp.status_code == 422
    assert client.post("/api/search", files={"file": ("e.jpg", b"", "image/jpeg")}).status_code == 400


def test_binding_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("example.org")
    check_bind("127.0.0.1", None, False)
    check_bind("0.0.0.0", "t0ken", False)
    check_bind("0.0.0.0", None, True)
    with pytest.raises(ConfigError, match="without a token"):
        check_bind("0.0.0.0", None, False)
    with pytest.raises(ConfigError, match="empty"):
        check_bind("127.0.0.1", "  ", False)
    assert "localhost" in allowed_hosts("127.0.0.1") and allowed_hosts("0.0.0.0") is None


def test_serve_refuses_a_public_host_without_a_token(index_path, monkeypatch):
    monkeypatch.delenv("ANYFIND_TOKEN", raising=False)
    out = CliRunner().invoke(cli, ["serve", "--index", str(index_path), "--host", "0.0.0.0"])
    assert out.exit_code != 0 and "without a token" in out.output


def test_host_header_checked_on_loopback(index_path):
    from fastapi.testclient import TestClient

    from anyfind.server import create_app

    app = create_app(index_path, allowed_hosts=allowed_hosts("127.0.0.1"), warm=False)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200
        # A DNS-rebinding page reaches 127.0.0.1 under its own name.
        assert c.get("/api/status", headers={"Host": "evil.example:8000"}).status_code == 400


def test_cors_off_by_default_and_on_when_configured(client, index_path):
    from fastapi.testclient import TestClient

    from anyfind.server import create_app

    origin = {"Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in client.get("/api/status", headers=origin).headers
    app = create_app(index_path, cors=["https://app.example"], warm=False)
    with TestClient(app) as c:
        resp = c.get("/api/status", headers={"Origin": "https://app.example"})
        assert resp.headers["access-control-allow-origin"] == "https://app.example"
        other = c.get("/api/status", headers=origin)
        assert "access-control-allow-origin" not in other.headers


def test_no_secrets_in_status(index_path):
    from fastapi.testclient import TestClient

    from anyfind import Index
    from anyfind.server import create_app

    with Index.open(index_path, create=False) as idx:
        idx.store.ensure_source("warehouse", "sql", "postgresql://reader:hunter2@db.local/sales",
                                {"password": "hunter2", "query": "select 1"})
    try:
        with TestClient(create_app(index_path, warm=False)) as c:
            text = c.get("/api/status").text
        assert "hunter2" not in text and "postgresql://reader:***@db.local/sales" in text
    finally:
        with Index.open(index_path, create=False) as idx:
            src = idx.store.source_by_name("warehouse")
            idx.store.delete_source(src["id"])


def test_mask_url():
    assert mask_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url("s3://bucket/key?access_key=AK&secret_key=SK&region=eu") == \
        "s3://bucket/key?access_key=***&secret_key=***&region=eu"
    assert mask_url("https://user@host/x") == "https://user@host/x"
    assert mask_url("/plain/path") == "/plain/path"


def test_security_headers(client):
    page = client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    api = client.get("/api/status")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["cross-origin-resource-policy"] == "same-origin"
    assert "server" not in {k.lower() for k in api.headers} or "uvicorn" not in api.headers["server"]
