"""Against a real uvicorn on a loopback port: search, HTTP Range (206, several seeks,
suffix and multi-range, 416), HEAD, a connector-served item, and the serve command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server.server_fixtures import HAS_ESPEAK, PHOTOS, free_socket, ids_by_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def http(live_server):
    with httpx.Client(base_url=live_server, timeout=60) as c:
        yield c


def test_search_over_http(http):
    body = http.get("/api/search", params={"q": "espresso", "k": 3}).json()
    assert Path(body["results"][0]["path"]).name == "coffee.jpg"
    assert http.get("/healthz").json() == {"status": "ok"}
    assert "text/html" in http.get("/").headers["content-type"]


def test_range_requests_seek_anywhere(http):
    ids = ids_by_name(http)
    url = f"/api/items/{ids['rocket.jpg']}/content"
    data = (PHOTOS / "rocket.jpg").read_bytes()
    size = len(data)
    for start, end in ((0, 0), (0, 99), (1000, 1999), (size // 2, size // 2 + 4095), (size - 10, size - 1)):
        resp = http.get(url, headers={"Range": f"bytes={start}-{end}"})
        assert resp.status_code == 206
        assert resp.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert resp.content == data[start:end + 1]
        assert int(resp.headers["content-length"]) == end - start + 1
    open_ended = http.get(url, headers={"Range": f"bytes={size - 300}-"})
    assert open_ended.status_code == 206 and open_ended.content == data[-300:]
    suffix = http.get(url, headers={"Range": "bytes=-128"})
    assert suffix.status_code == 206 and suffix.content == data[-128:]
    whole = http.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"


def test_multiple_ranges_and_unsatisfiable(http):
    ids = ids_by_name(http)
    url = f"/api/items/{ids['rocket.jpg']}/content"
    data = (PHOTOS / "rocket.jpg").read_bytes()
    multi = http.get(url, headers={"Range": "bytes=0-9,100-109"})
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges")
    assert data[0:10] in multi.content and data[100:110] in multi.content
    bad = http.get(url, headers={"Range": f"bytes={len(data) + 10}-{len(data) + 20}"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"


def test_head_gives_size_and_type(http):
    ids = ids_by_name(http)
    resp = http.head(f"/api/items/{ids['report.pdf']}/content")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
    assert int(resp.headers["content-length"]) > 500 and not resp.content


@pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
def test_audio_seeks_like_a_player(http, corpus):
    """A player's sequence: probe, jump to the passage, jump back, read to the end."""
    ids = ids_by_name(http)
    url = f"/api/items/{ids['meeting.flac']}/content"
    data = (corpus["folder"] / "meeting.flac").read_bytes()
    probe = http.get(url, headers={"Range": "bytes=0-"})
    assert probe.status_code == 206 and probe.headers["content-type"] == "audio/flac"
    assert probe.content == data
    for start in (len(data) // 3, 42, len(data) * 2 // 3, 0):
        resp = http.get(url, headers={"Range": f"bytes={start}-{start + 8191}"})
        assert resp.status_code == 206 and resp.content == data[start:start + 8192]


def test_connector_items_are_served_through_their_connector(tmp_path):
    """An item whose bytes live behind a connector (not a local file) is opened through
    it and spooled, with Range support all the same."""
    from fastapi.testclient import TestClient

    from anyfind import Index
    from anyfind.connectors import Blob, Connector, ItemRef, connectors
    from anyfind.server import create_app

    payload = (PHOTOS / "camera.jpg").read_bytes()

    class MemoryConnector(Connector):
        kind = "memory"

        def scan(self):
            yield ItemRef(uri="mem://photos/camera.jpg", path="photos/camera.jpg",
                          size=len(payload), mtime=1.0, fingerprint="v1")

        def open(self, ref):
            import io

            return Blob(ref, lambda: io.BytesIO(payload))

    connectors.register("memory", MemoryConnector)
    path = tmp_path / "index"
    with Index.open(path, transcriber=None) as idx:
        idx.add_source("mem", "mem://photos", kind="memory")
        report = idx.sync(["mem"])
        assert report.added == 1
    with TestClient(create_app(path, warm=False)) as c:
        item_id = c.get("/api/search", params={"q": "tripod"}).json()["results"][0]["item_id"]
        whole = c.get(f"/api/items/{item_id}/content")
        assert whole.status_code == 200 and whole.content == payload
        assert whole.headers["content-type"] == "image/jpeg"
        part = c.get(f"/api/items/{item_id}/content", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == payload[10:20]


def test_serve_command_runs_uvicorn(index_path):
    """`python -m anyfind serve` in a subprocess: up, answering, stopped on SIGTERM."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "ANYFIND_TOKEN": "cli-token", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "anyfind", "serve", "--index", str(index_path),
                             "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:  # bounded wait for start-up (models load first)
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/status").status_code == 401
        st = httpx.get(f"{base}/api/status", headers={"Authorization": "Bearer cli-token"})
        assert st.status_code == 200 and st.json()["server"]["token"] is True
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert "serving" in out and "token required" in out
