"""SQL sources on SQLite and on a real PostgreSQL server: rows as items, inserts, updates
and deletes between syncs, NULLs, blob columns, quoting, and bad input."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from connector_helpers import PG_PASSWORD

from anyfind import Index

T0 = dt.datetime(2024, 1, 1, 12, 0, 0)
ROWS = [
    (1, "Printer jam", "The office printer jams on every duplex print job.", "open"),
    (2, "VPN drops", "The VPN connection drops every evening around six.", "open"),
    (3, "Password reset", "A user cannot reset the password of their mailbox.", "closed"),
    (5, None, None, "empty"),  # nothing to index: skipped, never an error
]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return request.getfixturevalue("postgres_url")


def make_tickets(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE tickets (id INTEGER PRIMARY KEY, subject TEXT, "
                             "body TEXT, status TEXT, updated_at TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO tickets VALUES (:id, :s, :b, :st, :u)"),
                     [dict(id=i, s=s, b=b, st=st, u=T0) for i, s, b, st in ROWS])
    return engine


def change_tickets(engine: sa.Engine) -> None:
    later = T0 + dt.timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE tickets SET body = :b, updated_at = :u WHERE id = 2"),
                     dict(b="Bananas ripen faster next to apples because of ethylene gas.",
                          u=later))
        conn.execute(sa.text("DELETE FROM tickets WHERE id = 3"))
        conn.execute(sa.text("INSERT INTO tickets VALUES (4, 'Coffee machine', "
                             "'The espresso machine leaks water onto the counter.', 'open', :u)"),
                     dict(u=later))


@pytest.mark.parametrize("updated", [True, False], ids=["updated_column", "row_hash"])
def test_rows_sync_inserts_updates_deletes(tmp_path, db_url, updated):
    engine = make_tickets(db_url)
    with Index.open(tmp_path / "idx") as idx:
        idx.add_source("crm", db_url, table="tickets", text_columns=["subject", "body"],
                       updated_column="updated_at" if updated else None)
        first = idx.sync()
        assert (first.added, first.failed, first.failed_sources) == (3, 0, [])
        hit = idx.search("printer paper jam", k=1)[0]
        assert hit.source == "crm" and hit.path == "tickets#1"
        assert hit.uri.endswith("/tickets#1") and PG_PASSWORD not in hit.uri
        meta = idx.item(hit.item_id)["meta"]["row"]
        assert meta["status"] == "open" and meta["updated_at"].startswith("2024-01-01")

        change_tickets(engine)
        second = idx.sync(["crm"])
        assert (second.added, second.updated, second.removed, second.unchanged) == (1, 1, 1, 1)
        assert idx.search("ethylene ripening fruit", k=1)[0].path == "tickets#2"
        assert idx.search("leaking espresso machine", k=1)[0].path == "tickets#4"
        assert "tickets#3" not in [r.path for r in idx.search("mailbox password", k=10)]
        assert idx.sources()[0]["items"] == 3
    engine.dispose()


def test_metadata_change_updates_meta_without_reembedding(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_tickets(url)
    with Index.open(tmp_path / "idx") as idx:
        idx.add_source("crm", url, table="tickets", text_columns=["subject", "body"])
        idx.sync()
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE tickets SET status = 'closed' WHERE id = 1"))
        again = idx.sync()
        assert (again.unchanged, again.chunks) == (3, 0)
        hit = idx.search("printer jam", k=1)[0]
        assert idx.item(hit.item_id)["meta"]["row"]["status"] == "closed"


def test_query_source_and_blob_column(tmp_path):
    from makers import make_pdf

    url = f"sqlite:///{tmp_path / 'files.db'}"
    pdf = make_pdf(tmp_path / "r.pdf", ["Quarterly revenue grew by twelve percent."])
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE files (key TEXT PRIMARY KEY, caption TEXT, data BLOB)"))
        conn.execute(sa.text("INSERT INTO files VALUES ('r1', 'finance report', :d)"),
                     dict(d=pdf.read_bytes()))
        conn.execute(sa.text("CREATE TABLE notes (n INTEGER, txt TEXT, flag INTEGER)"))
        conn.execute(sa.text("INSERT INTO notes VALUES (7, 'Owls hunt at night using silent "
                             "feathers.', 1), (8, 'Hidden note', 0)"))
    with Index.open(tmp_path / "idx") as idx:
        idx.add_source("files", url, table="files", blob_column="data")
        idx.add_source("owls", url, query="SELECT n, txt FROM notes WHERE flag = 1",
                       id_column="n", label="visible_notes")
        report = idx.sync()
        assert report.added == 2 and report.failed == 0
        hit = idx.search("revenue growth percent", k=1)[0]
        assert hit.path == "files#r1" and hit.media_type == "application/pdf"
        assert idx.item(hit.item_id)["meta"]["row"]["caption"] == "finance report"
        owl = idx.search("nocturnal birds", k=1, sources=["owls"])[0]
        assert owl.path == "visible_notes#7"
        assert idx.search("nocturnal birds", k=5, sources=["files"],
                          floor=False)[0].source == "files"
    engine.dispose()


def test_identifiers_are_quoted_and_options_cannot_inject(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE TABLE "odd ""name""; x" ("row id" INTEGER PRIMARY KEY, '
                             '"the text" TEXT)'))
        conn.execute(sa.text('INSERT INTO "odd ""name""; x" VALUES (1, \'Glaciers carve '
                             'valleys over thousands of years.\')'))
        conn.execute(sa.text("CREATE TABLE victims (id INTEGER PRIMARY KEY, t TEXT)"))
        conn.execute(sa.text("INSERT INTO victims VALUES (1, 'still here')"))
    with Index.open(tmp_path / "idx") as idx:
        idx.add_source("odd", url, table='odd "name"; x', text_columns=["the text"])
        idx.add_source("inj1", url, table="victims; DROP TABLE victims")
        idx.add_source("inj2", url, table="victims", id_column='id" FROM victims; DROP TABLE '
                                                               'victims; --', text_columns=["t"])
        idx.add_source("inj3", url, table="victims", text_columns=["t) FROM victims; DELETE "
                                                                   "FROM victims; --"])
        report = idx.sync()
        assert sorted(report.failed_sources) == ["inj1", "inj2", "inj3"]
        errors = {e["source"]: e["error"] for e in report.errors}
        assert "does not exist" in errors["inj1"] and "not found" in errors["inj2"]
        assert idx.search("glacial valleys", k=1)[0].source == "odd"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT t FROM victims")).scalar() == "still here"
    engine.dispose()


def test_postgres_bad_credentials_and_unreachable_host(tmp_path, postgres_url):
    make_tickets(postgres_url).dispose()
    wrong = postgres_url.replace(PG_PASSWORD, "not-the-password")
    with Index.open(tmp_path / "idx") as idx:
        idx.add_source("good", postgres_url, table="tickets")  # text: every string column
        idx.add_source("badpw", wrong, table="tickets")
        idx.add_source("down", "postgresql+psycopg://u:pw-xyz@127.0.0.1:1/db", table="t")
        idx.add_source("notable", postgres_url, table="no_such_table")
        report = idx.sync()
        assert sorted(report.failed_sources) == ["badpw", "down", "notable"]
        errors = {e["source"]: e["error"] for e in report.errors}
        assert "password authentication failed" in errors["badpw"]
        assert "cannot connect" in errors["down"]
        assert "does not exist" in errors["notable"]
        assert "not-the-password" not in json.dumps(report.to_dict())
        assert report.added == 4  # the good source synced (row 5 has a status text)
    raw = (tmp_path / "idx" / "meta.db").read_bytes()
    assert PG_PASSWORD.encode() not in raw and b"not-the-password" not in raw


def test_metadata_store_on_postgresql(tmp_path, postgres_url, corpus):
    with Index.open(tmp_path / "idx", store_url=postgres_url) as idx:
        report = idx.add([corpus])
        assert report.added == 6 and report.failed == 0
        assert idx.search("chip shortage", k=1)[0].path.endswith("report.pdf")
        (corpus / "astro" / "moon.txt").write_text("Titan has a thick orange atmosphere.")
        assert idx.add([corpus]).updated == 1
    assert PG_PASSWORD not in (tmp_path / "idx" / "config.json").read_text()
    with Index.open(tmp_path / "idx", create=False) as idx:
        assert idx.store.engine.dialect.name == "postgresql"
        top = idx.search("orange atmosphere", k=1)[0]
        assert top.path.endswith("moon.txt") and top.source == "corpus"
        assert idx.status()["items"] == 6
