"""Web pages and sitemaps from a loopback HTTP server, and S3 buckets on moto's S3
server (the only object store tested; gs:// and az:// share the fsspec code path)."""

from __future__ import annotations

import pytest
from connector_helpers import free_port

from anyfind import Index


def page(title: str, text: str) -> bytes:
    return (f"<!doctype html><html><head><title>{title}</title></head><body><nav>Home</nav>"
            f"<main><h1>{title}</h1><p>{text}</p></main></body></html>").encode()


def sitemap(site, entries: list[tuple[str, str | None]]) -> bytes:
    urls = "".join(f"<url><loc>{site.base}{path}</loc>"
                   + (f"<lastmod>{mod}</lastmod>" if mod else "") + "</url>"
                   for path, mod in entries)
    return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns='
            f'"http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>').encode()


def test_sitemap_sync_adds_updates_removes(index, site):
    site.pages.update({
        "/tides": page("Tides", "The gravity of the Moon raises the ocean tides twice a day."),
        "/bread": page("Bread", "Sourdough bread rises slowly thanks to wild yeast."),
        "/bees": page("Bees", "Honey bees dance to tell each other where the flowers are."),
    })
    site.pages["/sitemap.xml"] = sitemap(site, [("/tides", "2024-05-01"), ("/bread", None),
                                                ("/bees", None)])
    index.add_source("site", f"{site.base}/sitemap.xml")
    assert index.sources()[0]["kind"] == "web"
    first = index.sync()
    assert (first.added, first.failed, first.failed_sources) == (3, 0, [])
    hit = index.search("why do bees dance", k=1)[0]
    assert hit.uri == f"{site.base}/bees" and hit.media_type == "text/html"
    assert "Home" not in hit.text  # page chrome removed by the HTML extractor

    site.pages["/bread"] = page("Bread", "Croissants are laminated with many layers of butter.")
    site.pages["/kites"] = page("Kites", "A kite flies best in a steady wind of twenty km/h.")
    site.pages["/sitemap.xml"] = sitemap(site, [("/tides", "2024-05-01"), ("/bread", None),
                                                ("/kites", None)])
    second = index.sync()
    assert (second.added, second.updated, second.removed, second.unchanged) == (1, 1, 1, 1)
    assert index.search("buttery laminated pastry", k=1)[0].uri.endswith("/bread")
    assert index.search("flying a kite in the wind", k=1)[0].uri.endswith("/kites")
    assert all(not r.uri.endswith("/bees") for r in index.search("honey bees", k=10))

    # a page failing with 500 keeps its indexed version; one answering 404 is gone
    site.pages["/bread"] = (500, b"<html><body>Internal Server Error</body></html>")
    site.pages.pop("/kites")
    third = index.sync()
    assert (third.removed, third.unchanged, third.failed_sources) == (1, 2, [])
    assert {e["error"].split(" from ")[0] for e in third.errors} == {"HTTP 500 Internal Server Error",
                                                                     "HTTP 404 Not Found"}
    assert index.search("croissant butter layers", k=1)[0].uri.endswith("/bread")


def test_single_url_and_bad_urls(index, site):
    site.pages["/guide"] = page("Guide", "Check the tyre pressure of your bicycle every week.")
    site.pages["/fake-sitemap.xml"] = page("Oops", "Something went wrong")
    # a large page arrives in many reads: the text at its very end must still be there
    padding = "<script>" + "var x = 1;\n" * 40_000 + "</script>"
    site.pages["/long"] = page("Pier", padding + "The lighthouse on the pier is painted red.")
    index.add_source("guide", f"{site.base}/guide")
    index.add_source("long", f"{site.base}/long")
    index.add_source("missing", f"{site.base}/nothing-here")
    index.add_source("htmlmap", f"{site.base}/fake-sitemap.xml")
    index.add_source("down", f"http://127.0.0.1:{free_port()}/x", retries=2, timeout=5)
    report = index.sync()
    assert report.added == 2 and sorted(report.failed_sources) == ["down", "htmlmap", "missing"]
    assert index.search("red lighthouse on the pier", k=1)[0].source == "long"
    errors = {e["source"]: e["error"] for e in report.errors}
    assert "HTTP 404" in errors["missing"]
    assert "not a sitemap" in errors["htmlmap"] and "HTML page" in errors["htmlmap"]
    assert "cannot connect" in errors["down"]
    assert index.search("bicycle tyre pressure", k=1)[0].source == "guide"


def test_s3_bucket_sync(tmp_path, s3, monkeypatch):
    endpoint, client = s3
    client.create_bucket(Bucket="docs")
    client.put_object(Bucket="docs", Key="notes/volcano.txt",
                      Body=b"Lava from the volcano cooled into black basalt columns.")
    client.put_object(Bucket="docs", Key="notes/tea.md",
                      Body=b"# Tea\n\nGreen tea should steep for two minutes at 80 degrees.")
    client.put_object(Bucket="docs", Key="notes/old.txt", Body=b"Obsolete fax instructions.")
    client.put_object(Bucket="docs", Key="other/skip.txt", Body=b"Outside the prefix.")
    monkeypatch.setenv("S3_SECRET", "testing")
    with Index.open(tmp_path / "idx") as idx:
        idx.add_source("bucket", "s3://docs/notes", endpoint_url=endpoint,
                       storage_options={"key": "testing", "secret": "${S3_SECRET}"})
        first = idx.sync()
        assert (first.added, first.failed, first.failed_sources) == (3, 0, [])
        hit = idx.search("volcanic rock", k=1)[0]
        assert hit.uri == "s3://docs/notes/volcano.txt" and hit.source == "bucket"
        assert idx.sources()[0]["options"]["storage_options"]["secret"] == "${S3_SECRET}"

        client.put_object(Bucket="docs", Key="notes/tea.md",
                          Body=b"# Coffee\n\nA French press needs four minutes and coarse grounds.")
        client.delete_object(Bucket="docs", Key="notes/old.txt")
        client.put_object(Bucket="docs", Key="notes/moss.txt",
                          Body=b"Moss grows on the shady north side of trees.")
        second = idx.sync()
        assert (second.added, second.updated, second.removed, second.unchanged) == (1, 1, 1, 1)
        assert idx.search("french press brewing time", k=1)[0].uri.endswith("tea.md")
        assert idx.search("moss on trees", k=1)[0].uri.endswith("moss.txt")

        idx.add_source("nobucket", "s3://no-such-bucket", endpoint_url=endpoint)
        idx.add_source("down", "s3://docs", endpoint_url=f"http://127.0.0.1:{free_port()}",
                       retries=1, timeout=3)
        third = idx.sync()
        assert sorted(third.failed_sources) == ["down", "nobucket"]
        assert "not found" in {e["source"]: e["error"] for e in third.errors}["nobucket"]
        assert third.unchanged == 3  # the bucket source itself is unchanged


@pytest.mark.parametrize("uri", ["gs://bucket/prefix", "az://container/prefix"])
def test_other_object_stores_are_recognised(index, uri):
    # Not reachable from the tests (no emulator): only kind inference is checked.
    assert index.add_source("cloud", uri)["kind"] == "objectstore"
