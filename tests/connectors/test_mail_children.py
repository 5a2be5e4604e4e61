"""E-mail attachments as child items: real .eml files built with Python's email library
holding a PDF, a DOCX, a text file and a nested e-mail (which has an attachment of its
own), indexed, searched, re-synced after edits, renames, copies and deletions, served,
checked and migrated, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import functools
import shutil
import sqlite3
import tempfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from makers import make_docx, make_pdf
from sqlalchemy import Index as SqlIndex
from sqlalchemy import MetaData, Table, UniqueConstraint, func, insert, inspect, select, text

from anyfind import Index
from anyfind.connectors.base import Blob
from anyfind.extract import extract
from anyfind.store.metadata import ItemRecord, MetadataStore, NewChild, make_engine
from anyfind.store.migrations import LATEST, MIGRATIONS, current_version
from anyfind.store.schema import Base, Chunk, Embedding, Item, Meta, Source

INVOICE = "Invoice 77: three crates of oranges, forty-five euros, paid by bank transfer."
TERMS = "Deliveries arrive at the harbour warehouse before noon on weekdays."
PACKING = "Packing list: twelve red kayaks and four carbon paddles."
LIGHTHOUSE = "The lighthouse keeper trims the lamp at midnight and winds the clock."
FOGHORN = "Fog horn schedule: one blast every thirty seconds in dense fog."
BODY = "Hi Bo,\n\nThe oranges ship on Monday from Valencia.\n\nAna"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CHILDREN = ["invoice.pdf", "terms.docx", "packing.txt", "Lighthouse notes.eml"]


def make_mail(work: Path, *, invoice: str = INVOICE, body: str = BODY,
              broken: bool = False) -> bytes:
    """An e-mail with a PDF, a DOCX, a text file and a forwarded e-mail (itself holding a
    text file); with `broken`, also a PDF attachment whose bytes are not a PDF."""
    work.mkdir(parents=True, exist_ok=True)
    pdf, docx = _pdf(invoice), _docx(TERMS)  # the same text gives the same bytes
    (work / "invoice.pdf").write_bytes(pdf)
    (work / "terms.docx").write_bytes(docx)
    inner = EmailMessage()
    inner["Subject"], inner["From"] = "Lighthouse notes", "keeper@example.org"
    inner.set_content(LIGHTHOUSE)
    inner.add_attachment(FOGHORN.encode(), maintype="text", subtype="plain",
                         filename="foghorn.txt")
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "Order update", "ana@example.org", "bo@example.org"
    msg.set_content(body)
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="invoice.pdf")
    msg.add_attachment(docx, maintype="application", subtype=DOCX_TYPE.split("/")[1],
                       filename="terms.docx")
    msg.add_attachment(PACKING.encode(), maintype="text", subtype="plain",
                       filename="packing.txt")
    msg.add_attachment(inner)  # message/rfc822, no file name: named after its subject
    if broken:
        msg.add_attachment(b"%PDF-1.7\n" + b"\x00\xff garbage, not a PDF body " * 40,
                           maintype="application", subtype="pdf", filename="broken.pdf")
    return bytes(msg)


@functools.cache
def _pdf(text: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return make_pdf(Path(d) / "a.pdf", [text]).read_bytes()


@functools.cache
def _docx(text: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return make_docx(Path(d) / "a.docx", "Delivery terms", [text]).read_bytes()


@pytest.fixture
def mailbox(tmp_path) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "order.eml").write_bytes(make_mail(tmp_path / "work"))
    return folder


def items(index: Index) -> list[dict]:
    with index.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(Item.id, Item.path, Item.parent_id, Item.status, Item.error,
                   Item.media_type).order_by(Item.id)).mappings()]


def vector_count(index: Index) -> int:
    with index.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Embedding)).scalar_one()


def top(index: Index, query: str):
    results = index.search(query, k=3)
    assert results, query
    return results[0]


def name(path: str) -> str:
    return path.rsplit(" › ", 1)[-1].rsplit("/", 1)[-1]


# -- extraction -----------------------------------------------------------------------------
def test_extractor_gives_attachments_as_children(tmp_path):
    data = make_mail(tmp_path / "work")
    out = extract(Blob.from_bytes(data, path="order.eml"))
    assert out.title == "Order update" and "ship on Monday" in out.text
    assert "Attachments: invoice.pdf, terms.docx, packing.txt, Lighthouse notes.eml" in out.text
    assert "crates of oranges" not in out.text and "harbour" not in out.text
    assert [c.name for c in out.children] == CHILDREN
    assert [c.media_type for c in out.children] == [
        "application/pdf", DOCX_TYPE, "text/plain", "message/rfc822"]
    assert out.children[0].data == (tmp_path / "work" / "invoice.pdf").read_bytes()
    assert out.children[2].data == PACKING.encode()
    nested = extract(Blob.from_bytes(out.children[3].data, path=out.children[3].name))
    assert nested.title == "Lighthouse notes" and "trims the lamp" in nested.text
    assert [(c.name, c.data) for c in nested.children] == [("foghorn.txt", FOGHORN.encode())]
    assert [a["name"] for a in out.metadata["attachments"]] == CHILDREN


# -- indexing and search --------------------------------------------------------------------
def test_attachments_are_items_found_with_their_parent(index, mailbox):
    report = index.add([mailbox])
    assert (report.added, report.attachments, report.failed) == (1, 5, 0), report.errors
    rows = items(index)
    mail = next(r for r in rows if r["parent_id"] is None)
    assert mail["path"] == str(mailbox / "order.eml")
    by_name = {name(r["path"]): r for r in rows if r["parent_id"] is not None}
    assert set(by_name) == {*CHILDREN, "foghorn.txt"}
    assert {by_name[n]["parent_id"] for n in CHILDREN} == {mail["id"]}
    assert by_name["foghorn.txt"]["parent_id"] == by_name["Lighthouse notes.eml"]["id"]
    assert by_name["invoice.pdf"]["path"] == f"{mail['path']} › invoice.pdf"
    assert all(r["status"] == "ok" for r in rows)
    assert by_name["terms.docx"]["media_type"] == DOCX_TYPE

    # Each attachment is embedded like a file: every chunk has a vector in every space.
    with index.store.engine.connect() as conn:
        for space in index.spaces:
            missing = conn.execute(select(func.count()).select_from(Chunk).where(
                ~select(Embedding.chunk_id).where(Embedding.chunk_id == Chunk.id,
                                                  Embedding.space == space).exists())).scalar()
            assert missing == 0
        per_item = dict(conn.execute(select(Chunk.item_id, func.count())
                                     .group_by(Chunk.item_id)).all())
    assert all(per_item.get(r["id"]) for r in rows)

    hit = top(index, "three crates of oranges invoice")
    assert name(hit.path) == "invoice.pdf" and hit.page == 1
    assert hit.parent == {"id": mail["id"], "path": mail["path"]}
    assert name(top(index, "harbour warehouse deliveries").path) == "terms.docx"
    assert name(top(index, "red kayaks and carbon paddles").path) == "packing.txt"
    fog = top(index, "fog horn blast every thirty seconds")
    assert name(fog.path) == "foghorn.txt"
    assert fog.parent["id"] == by_name["Lighthouse notes.eml"]["id"]
    own = top(index, "oranges ship on Monday from Valencia")
    assert own.item_id == mail["id"] and own.parent is None
    assert index.search("crates of oranges", filters="ext:pdf", k=3)[0].item_id == \
        by_name["invoice.pdf"]["id"]

    shown = index.item(mail["id"])
    assert shown["parent"] is None
    assert [c["name"] for c in shown["children"]] == CHILDREN
    assert index.item(by_name["invoice.pdf"]["id"])["parent"] == {"id": mail["id"],
                                                                  "path": mail["path"]}
    assert index.attachment(by_name["invoice.pdf"]["id"]).data.startswith(b"%PDF-")
    assert index.attachment(by_name["foghorn.txt"]["id"]).data == FOGHORN.encode()

    again = index.add([mailbox])  # nothing changed: nothing extracted, nothing embedded
    assert (again.unchanged, again.added, again.attachments, again.chunks) == (1, 0, 0, 0)
    assert items(index) == rows


def test_an_e_mail_and_its_attachments_are_related_and_share_a_card(index, mailbox):
    """Containment is one more relation: `related` lists the e-mail of an attachment and
    the attachments of an e-mail; the grouped view puts matching attachments on their
    e-mail's card, as a note's screenshots are on the note's."""
    index.add([mailbox])
    rows = items(index)
    mail = next(r for r in rows if r["parent_id"] is None)
    invoice = next(r for r in rows if name(r["path"]) == "invoice.pdf")
    assert [(x["id"], x["reason"]) for x in index.related(invoice["id"]) if x["score"] is None
            ] == [(mail["id"], "attached to")]
    held = {name(x["path"]) for x in index.related(mail["id"]) if x["reason"] == "attachment"}
    assert held == set(CHILDREN)
    cards = index.search_grouped("oranges invoice crates shipped from Valencia", k=5,
                                 floor=False)
    card = next(c for c in cards if c.note and c.note["id"] == mail["id"])
    assert {r.item_id for r in card.results} >= {mail["id"], invoice["id"]}
    assert sum(1 for c in cards for r in c.results if r.item_id == invoice["id"]) == 1


def test_edit_replaces_children_and_delete_removes_them(index, mailbox, tmp_path):
    index.add([mailbox])
    before = items(index)
    mail = mailbox / "order.eml"
    mail.write_bytes(make_mail(tmp_path / "work2", invoice="Invoice 78: nine sacks of lemons.",
                               body="Hi Bo,\n\nThe lemons ship on Tuesday.\n\nAna"))
    report = index.add([mailbox])
    assert (report.updated, report.attachments, report.failed) == (1, 5, 0)
    after = items(index)
    assert len(after) == len(before) == 6
    assert not {r["id"] for r in before} & {r["id"] for r in after}  # replaced, not kept
    assert name(top(index, "sacks of lemons").path) == "invoice.pdf"
    assert all("crates of oranges" not in r.text for r in index.search("crates of oranges"))

    # Only the body changes: the attachments are replaced too, but what is indexed already
    # (same bytes) costs no model; the forwarded e-mail, which has a child, is read again.
    mail.write_bytes(make_mail(tmp_path / "work2", invoice="Invoice 78: nine sacks of lemons.",
                               body="Hi Bo,\n\nThe lemons ship on Wednesday instead.\n\nAna"))
    report = index.add([mailbox])
    assert (report.updated, report.attachments, report.failed) == (1, 5, 0)
    rows = {name(r["path"]): r for r in items(index)}
    with index.store.engine.connect() as conn:
        per_item = dict(conn.execute(select(Chunk.item_id, func.count())
                                     .group_by(Chunk.item_id)).all())
    assert report.chunks == per_item[rows["order.eml"]["id"]] + per_item[
        rows["Lighthouse notes.eml"]["id"]]
    assert name(top(index, "sacks of lemons").path) == "invoice.pdf"
    assert top(index, "lemons ship on Wednesday").item_id == rows["order.eml"]["id"]
    assert index.check().ok

    mail.unlink()
    report = index.add([mailbox])
    assert report.removed == 1
    assert items(index) == [] and vector_count(index) == 0
    assert index.search("harbour warehouse") == []


def test_rename_and_copy_move_children_without_embedding(index, mailbox):
    index.add([mailbox])
    before = {r["id"]: r for r in items(index)}
    vectors = vector_count(index)
    (mailbox / "archive").mkdir()
    shutil.move(mailbox / "order.eml", mailbox / "archive" / "order-2024.eml")
    report = index.add([mailbox])
    assert (report.renamed, report.chunks, report.attachments) == (1, 0, 0)
    moved = {r["id"]: r for r in items(index)}
    assert set(moved) == set(before) and vector_count(index) == vectors
    new_path = str(mailbox / "archive" / "order-2024.eml")
    assert all(r["path"].startswith(new_path) for r in moved.values())
    hit = top(index, "fog horn blast every thirty seconds")
    assert hit.path == f"{new_path} › Lighthouse notes.eml › foghorn.txt"
    assert index.attachment(hit.item_id).data == FOGHORN.encode()

    shutil.copy(mailbox / "archive" / "order-2024.eml", mailbox / "copy.eml")
    report = index.add([mailbox])
    assert (report.copied, report.chunks) == (1, 0)
    rows = items(index)
    assert len(rows) == 12 and vector_count(index) == 2 * vectors
    copy = next(r for r in rows if r["path"] == str(mailbox / "copy.eml"))
    kids = [r for r in rows if r["parent_id"] == copy["id"]]
    assert sorted(name(r["path"]) for r in kids) == sorted(CHILDREN)
    hits = index.search("harbour warehouse deliveries", k=5)
    assert {h.parent["path"] for h in hits if name(h.path) == "terms.docx"} == {
        new_path, str(mailbox / "copy.eml")}

    # The copy's children go with it; the original's stay.
    (mailbox / "copy.eml").unlink()
    index.add([mailbox])
    assert {r["id"] for r in items(index)} == set(before)


def test_attachment_and_file_with_the_same_bytes_share_vectors(index, mailbox, tmp_path):
    index.add([mailbox])
    # A saved copy of the attachment is a file like any other, copied with no model.
    (mailbox / "saved-invoice.pdf").write_bytes(_pdf(INVOICE))
    report = index.add([mailbox])
    assert (report.added, report.copied, report.chunks) == (1, 1, 0)
    saved = index.item(max(r["id"] for r in items(index)))
    assert saved["path"] == str(mailbox / "saved-invoice.pdf")
    assert saved["parent"] is None and "attachment" not in saved["meta"]
    assert {name(r.path) for r in index.search("three crates of oranges", k=5)} >= {
        "invoice.pdf", "saved-invoice.pdf"}
    # A new e-mail carrying files indexed already embeds only what is new to the index.
    other = tmp_path / "other"
    other.mkdir()
    msg = EmailMessage()
    msg["Subject"] = "Resent invoice"
    msg.set_content("Resending the invoice you asked about.")
    msg.add_attachment(_pdf(INVOICE), maintype="application", subtype="pdf",
                       filename="invoice-again.pdf")
    (other / "resent.eml").write_bytes(bytes(msg))
    report = index.add([other])
    assert (report.added, report.attachments, report.failed) == (1, 1, 0)
    resent = {name(r["path"]): r for r in items(index)}
    assert report.chunks == len(index.item(resent["resent.eml"]["id"])["chunks"])
    again = index.item(resent["invoice-again.pdf"]["id"])
    assert again["chunks"] and again["meta"]["attachment"] == {"index": 1,
                                                               "name": "invoice-again.pdf"}
    assert again["parent"]["id"] == resent["resent.eml"]["id"]
    assert index.check().ok


def test_corrupt_attachment_is_an_error_on_the_child_only(index, tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "order.eml").write_bytes(make_mail(tmp_path / "work", broken=True))
    report = index.add([folder])
    assert (report.added, report.attachments, report.failed) == (1, 6, 1)
    assert [e["path"] for e in report.errors] == [str(folder / "order.eml") + " › broken.pdf"]
    rows = {name(r["path"]): r for r in items(index)}
    assert rows["broken.pdf"]["status"] == "error" and rows["broken.pdf"]["error"]
    assert rows["order.eml"]["status"] == "ok" and rows["order.eml"]["error"] is None
    assert all(r["status"] == "ok" for n, r in rows.items() if n != "broken.pdf")
    assert name(top(index, "three crates of oranges").path) == "invoice.pdf"
    assert [e["path"] for e in index.errors()] == [str(folder / "order.eml") + " › broken.pdf"]
    assert index.check().ok
    again = index.add([folder])  # the e-mail did not change: nothing retried, no new error
    assert (again.unchanged, again.failed, again.chunks) == (1, 0, 0)
    # Asked to retry errors, the e-mail is read again: the attachment fails again, alone,
    # and its healthy siblings cost no model.
    retried = index.sync(retry_errors=True)
    assert (retried.updated, retried.attachments, retried.failed) == (1, 6, 1)
    assert [e["path"] for e in index.errors()] == [str(folder / "order.eml") + " › broken.pdf"]


def test_nesting_stops_at_the_depth_limit(index, tmp_path):
    from anyfind.indexer.prepare import MAX_DEPTH

    msg = EmailMessage()
    msg["Subject"] = "level 5"
    msg.set_content("The innermost note mentions a walrus.")
    for level in range(4, -1, -1):
        outer = EmailMessage()
        outer["Subject"] = f"level {level}"
        outer.set_content(f"Wrapper number {level}.")
        outer.add_attachment(msg)
        msg = outer
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "deep.eml").write_bytes(bytes(msg))
    report = index.add([folder])
    assert report.failed == 0 and report.attachments == MAX_DEPTH
    rows = items(index)
    assert len(rows) == MAX_DEPTH + 1
    deepest = rows[-1]
    assert deepest["path"].count(" › ") == MAX_DEPTH
    assert "children_not_indexed" in index.item(deepest["id"])["meta"]


# -- content, show, check -------------------------------------------------------------------
def test_server_item_and_content_of_an_attachment(tmp_path, mailbox):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from anyfind.server import create_app

    with Index.open(tmp_path / "idx") as index:
        index.add([mailbox])
        rows = {name(r["path"]): r for r in items(index)}
    with TestClient(create_app(tmp_path / "idx", warm=False)) as client:
        mail = client.get(f"/api/items/{rows['order.eml']['id']}").json()
        assert mail["parent"] is None
        assert [c["name"] for c in mail["children"]] == CHILDREN
        pdf_id = rows["invoice.pdf"]["id"]
        item = client.get(f"/api/items/{pdf_id}").json()
        assert item["parent"] == {"id": rows["order.eml"]["id"],
                                  "path": str(mailbox / "order.eml")}
        assert item["children"] == [] and item["chunk_count"] >= 1
        resp = client.get(f"/api/items/{pdf_id}/content")
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
        assert resp.content == (tmp_path / "work" / "invoice.pdf").read_bytes()
        assert 'filename="invoice.pdf"' in resp.headers["content-disposition"]
        part = client.get(f"/api/items/{pdf_id}/content", headers={"Range": "bytes=0-4"})
        assert part.status_code == 206 and part.content == b"%PDF-"
        fog = client.get(f"/api/items/{rows['foghorn.txt']['id']}/content")
        assert fog.content == FOGHORN.encode() and fog.headers["content-type"].startswith(
            "text/plain")
        body = client.get("/api/search", params={"q": "harbour warehouse deliveries"}).json()
        first = body["results"][0]
        assert first["parent"]["id"] == rows["order.eml"]["id"]

        # The e-mail changed on disk since it was indexed: no stale bytes are served.
        (mailbox / "order.eml").write_bytes(make_mail(tmp_path / "w3", invoice="Other."))
        assert client.get(f"/api/items/{pdf_id}/content").status_code == 404


def test_cli_show_and_search_mark_attachments(tmp_path, mailbox):
    from click.testing import CliRunner

    from anyfind.cli import cli

    idx = str(tmp_path / "idx")
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(mailbox), "--index", idx, "-q"]).exit_code == 0
    out = runner.invoke(cli, ["search", "harbour warehouse deliveries", "--index", idx, "-k",
                              "1"])
    assert out.exit_code == 0, out.output
    assert "order.eml › terms.docx" in out.output
    assert f"attachment of {mailbox / 'order.eml'}" in out.output
    with Index.open(idx) as index:
        rows = {name(r["path"]): r for r in items(index)}
    shown = runner.invoke(cli, ["show", str(rows["order.eml"]["id"]), "--index", idx])
    for child in CHILDREN:
        assert child in shown.output
    assert "attachment " in shown.output
    shown = runner.invoke(cli, ["show", str(rows["terms.docx"]["id"]), "--index", idx])
    assert f"#{rows['order.eml']['id']} {mailbox / 'order.eml'}" in shown.output


def test_check_finds_and_repairs_orphan_children(index, mailbox):
    index.add([mailbox])
    rows = {name(r["path"]): r for r in items(index)}
    assert index.check().ok
    # A tool that deletes the e-mail row with foreign keys off leaves its attachments.
    db = sqlite3.connect(index.path / "meta.db")
    db.execute("PRAGMA foreign_keys=OFF")
    with db:
        db.execute("DELETE FROM items WHERE id = ?", (rows["order.eml"]["id"],))
    db.close()
    report = index.check()
    assert not report.ok
    orphan = next(f for f in report.findings if f.code == "orphan-children")
    assert orphan.count == 5  # four attachments and the forwarded e-mail's attachment
    repaired = index.check(repair=True)
    assert repaired.ok and all(f.repaired for f in repaired.findings)
    assert "orphan-children" in {f.code for f in repaired.findings}
    assert items(index) == []
    assert index.check().ok
    assert index.search("harbour warehouse") == []


def test_repair_re_embeds_a_child_through_its_parent(index, mailbox):
    index.add([mailbox])
    rows = {name(r["path"]): r for r in items(index)}
    fog = rows["foghorn.txt"]["id"]  # two levels down
    with index.store.engine.begin() as conn:
        lost = conn.execute(select(Embedding.chunk_id).join(Chunk, Chunk.id == Embedding.chunk_id)
                            .where(Chunk.item_id == fog)).scalars().all()
        conn.execute(Embedding.__table__.delete().where(Embedding.chunk_id.in_(lost)))
    assert lost
    assert "missing-vectors" in index.check().codes()
    repaired = index.check(repair=True)
    assert repaired.resync == 3  # the child, its e-mail and the top e-mail: marked
    report = index.add([mailbox])
    assert report.updated == 1 and report.failed == 0
    assert index.check().ok
    assert name(top(index, "fog horn blast every thirty seconds").path) == "foghorn.txt"


def test_store_deletes_descendants_itself_with_foreign_keys_off(tmp_path):
    import numpy as np
    from sqlalchemy import event

    from anyfind.store.metadata import ChunkRecord

    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    store.engine.dispose()
    event.listen(store.engine, "connect",
                 lambda conn, _: conn.execute("PRAGMA foreign_keys=OFF"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    store.ensure_space("text", 2)
    sid = store.ensure_source("s", "filesystem", "/s")

    def rec(uri: str) -> ItemRecord:
        return ItemRecord(sid, uri, uri, "text", "text/plain", 1, 1.0, "f", uri)

    def chunk(words: str) -> list[ChunkRecord]:
        return [ChunkRecord(0, "text", words, vectors={"text": np.ones(2, np.float32)})]

    tree = NewChild(rec("m#attachment/1/fwd.eml"), chunk("forwarded"),
                    [NewChild(rec("m#attachment/1/fwd.eml#attachment/1/a.txt"), chunk("deep"))])
    (mail,), _ = store.write_items([(rec("m"), chunk("mail"), None, [tree])])
    (other,), _ = store.write_items([(rec("n"), chunk("other"), None)])
    assert len(store.items_of_source(sid, children=True)) == 4
    store.delete_items([mail])
    assert set(store.items_of_source(sid, children=True)) == {"n"}
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Chunk)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(Embedding)).scalar() == 1
    assert [cid for cid, _ in store.lexical.search(["deep"], 10)] == []
    store.close()


# -- schema: migration from v2 with data, SQLite and PostgreSQL ------------------------------
def _v2_store(url: str) -> None:
    """A store as schema v2 left it: the items table without parent_id."""
    old = MetaData()
    for table in Base.metadata.sorted_tables:
        if table.name != "items":
            table.to_metadata(old)
            continue
        Table("items", old, *[c._copy() for c in table.columns if c.name != "parent_id"],
              UniqueConstraint("source_id", "uri", name="uq_items_source_uri"),
              SqlIndex("ix_items_content_hash", "content_hash"), sqlite_autoincrement=True)
    engine = make_engine(url)
    with engine.begin() as conn:
        old.create_all(conn)
        MIGRATIONS[1](conn)
        conn.execute(insert(Meta).values(key="schema_version", value="2"))
        sid = conn.execute(insert(Source).values(name="s", kind="filesystem", uri="/s",
                                                 options={}, created_at=0.0, state={})
                           ).inserted_primary_key[0]
        iid = conn.execute(insert(old.tables["items"]).values(
            source_id=sid, uri="file:///s/old.eml", path="/s/old.eml", status="ok", meta={},
            indexed_at=0.0, fingerprint="f", content_hash="h1",
            media_type="message/rfc822")).inserted_primary_key[0]
        conn.execute(insert(old.tables["items"]).values(
            source_id=sid, uri="file:///s/a.txt", path="/s/a.txt", status="ok", meta={},
            indexed_at=0.0, fingerprint="f", content_hash="h2", media_type="text/plain"))
        conn.execute(insert(Chunk).values(item_id=iid, ordinal=0, modality="text",
                                          text="An old message about walrus tusks."))
    engine.dispose()


def _upgraded(url: str) -> None:
    store = MetadataStore(url)
    try:
        with store.engine.connect() as conn:
            assert current_version(conn) == LATEST >= 3  # and every later step ran
            assert {"vector_outbox", "index_files"} <= set(inspect(conn).get_table_names())
            assert "parent_id" in {c["name"] for c in inspect(conn).get_columns("items")}
            assert "ix_items_parent" in {i["name"] for i in inspect(conn).get_indexes("items")}
        old = store.items_of_source(1)["file:///s/old.eml"]
        # An e-mail indexed before v3 is read again by the next sync (to get its children);
        # nothing else is.
        assert (old.fingerprint, old.content_hash) == ("", None)
        kept = store.items_of_source(1)["file:///s/a.txt"]
        assert (kept.fingerprint, kept.content_hash) == ("f", "h2")
        assert [c["text"] for c in store.chunks_of_item(old.id)] == [
            "An old message about walrus tusks."]
        assert [cid for cid, _ in store.lexical.search(["walrus"], 10)] == [1]
        # The upgraded store takes children, and deleting the parent takes them along.
        record = ItemRecord(1, "file:///s/new.eml", "/s/new.eml", "text", "message/rfc822",
                            1, 1.0, "g", "h")
        child = ItemRecord(1, "file:///s/new.eml#attachment/1/a.txt", "/s/new.eml › a.txt",
                           "text", "text/plain", 1, 1.0, "c", "c")
        (new_id,), _ = store.write_items([(record, [], None, [NewChild(child, [])])])
        assert [c["path"] for c in store.children_of(new_id)] == ["/s/new.eml › a.txt"]
        assert set(store.items_of_source(1)) == {"file:///s/old.eml", "file:///s/a.txt",
                                                 "file:///s/new.eml"}
        store.delete_items([new_id])
        assert set(store.items_of_source(1, children=True)) == {"file:///s/old.eml",
                                                                "file:///s/a.txt"}
    finally:
        store.close()


def test_migration_v3_adds_parent_id_to_a_v2_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    _v2_store(url)
    _upgraded(url)


def test_migration_v3_on_postgresql(postgres_url):
    _v2_store(postgres_url)
    _upgraded(postgres_url)
    engine = make_engine(postgres_url)
    with engine.connect() as conn:  # a real foreign key with ON DELETE CASCADE
        rule = conn.execute(text(
            "SELECT confdeltype FROM pg_constraint WHERE conrelid = 'items'::regclass "
            "AND contype = 'f' AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE "
            "attrelid = 'items'::regclass AND attname = 'parent_id')]::smallint[]")).scalar()
    engine.dispose()
    assert rule == "c"


def test_attachments_on_a_postgresql_store(tmp_path, mailbox, postgres_url):
    with Index.open(tmp_path / "idx", store_url=postgres_url) as index:
        report = index.add([mailbox])
        assert (report.added, report.attachments, report.failed) == (1, 5, 0), report.errors
        hit = top(index, "fog horn blast every thirty seconds")
        assert name(hit.path) == "foghorn.txt" and hit.parent is not None
        shutil.move(mailbox / "order.eml", mailbox / "renamed.eml")
        report = index.add([mailbox])
        assert (report.renamed, report.chunks) == (1, 0)
        assert top(index, "harbour warehouse").path == f"{mailbox / 'renamed.eml'} › terms.docx"
        (mailbox / "renamed.eml").unlink()
        assert index.add([mailbox]).removed == 1
        assert items(index) == [] and vector_count(index) == 0
        assert index.check().ok


HOSTILE = b"""From: a@example.org
Subject: odd parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/plain

The body talks about a marmalade recipe.
--XX
Content-Type: message/rfc822
Content-Disposition: attachment

--XX
Content-Type: application/pdf
Content-Disposition: attachment; filename="../../etc/passwd
 evil.pdf"
Content-Transfer-Encoding: base64

!!!notbase64@@@
--XX
Content-Type: text/plain
Content-Disposition: attachment; filename="empty.txt"

--XX
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''%E2%9C%93%20check.bin
Content-Transfer-Encoding: base64

%(binary)s
--XX
Content-Type: text/plain
Content-Disposition: attachment

A nameless note about quince jelly.
--XX--
""".replace(b"%(binary)s", base64.encodebytes(bytes(range(256)) * 8).strip())


def test_odd_attachments_never_fail_the_e_mail(index, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "odd.eml").write_bytes(HOSTILE)
    report = index.add([folder])
    assert (report.added, report.attachments) == (1, 5)
    rows = {name(r["path"]): r for r in items(index)}
    assert set(rows) == {"odd.eml", "message.eml", ".._.._etc_passwd evil.pdf", "empty.txt",
                         "✓ check.bin", "attachment-5.txt"}
    assert rows["odd.eml"]["status"] == "ok"
    assert rows["message.eml"]["status"] == "error"
    assert rows[".._.._etc_passwd evil.pdf"]["status"] == "error"
    assert (rows["empty.txt"]["status"], rows["empty.txt"]["error"]) == ("skipped", "empty")
    assert rows["✓ check.bin"]["status"] == "skipped"
    assert rows["attachment-5.txt"]["status"] == "ok"
    assert report.failed == 2 and report.skipped == 2
    assert top(index, "marmalade recipe").item_id == rows["odd.eml"]["id"]
    hit = top(index, "quince jelly")
    assert hit.item_id == rows["attachment-5.txt"]["id"] and hit.parent["id"] == rows[
        "odd.eml"]["id"]
    assert index.check().ok


def _docx_bomb() -> bytes:
    """A DOCX whose document.xml claims to unpack to 120 MB (nearly all spaces)."""
    import io
    import zipfile

    good = _docx("x")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(
            out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                zf.writestr(info.filename, src.read(info.filename))
        with zf.open("word/document.xml", "w") as member:
            member.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.'
                         b'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>')
            block = b" " * (1 << 20)
            for _ in range(120):
                member.write(block)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return out.getvalue()


def test_zip_bomb_attachment_is_refused_on_the_child(index, tmp_path):
    msg = EmailMessage()
    msg["Subject"] = "Spring catalogue"
    msg.set_content("The spring catalogue lists garden gnomes.")
    msg.add_attachment(_docx_bomb(), maintype="application", subtype=DOCX_TYPE.split("/")[1],
                       filename="catalogue.docx")
    msg.add_attachment(PACKING.encode(), maintype="text", subtype="plain", filename="packing.txt")
    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "catalogue.eml").write_bytes(bytes(msg))
    report = index.add([folder])
    assert (report.added, report.attachments, report.failed) == (1, 2, 1)
    rows = {name(r["path"]): r for r in items(index)}
    assert rows["catalogue.eml"]["status"] == "ok"
    assert rows["catalogue.docx"]["status"] == "error"
    assert "zip bomb" in rows["catalogue.docx"]["error"]
    assert name(top(index, "red kayaks and carbon paddles").path) == "packing.txt"


def test_photo_and_recording_attachments_in_every_space(tmp_path):
    """A photo and a spoken recording attached to an e-mail are indexed like files: the
    photo in the CLIP space (with a thumbnail), the recording transcribed, and every text
    chunk in both spaces."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    pytest.importorskip("open_clip")
    from makers import speak

    from tests.support.clip_fixtures import make_tiny_clip_checkpoint

    photos = Path(__file__).parent.parent / "fixtures" / "images"
    arch, ckpt = make_tiny_clip_checkpoint(tmp_path / "clip")
    speak("The ferry to the island leaves at seven in the morning.", tmp_path / "memo.wav")
    msg = EmailMessage()
    msg["Subject"] = "Trip plans"
    msg.set_content("Photo of the launch and a voice memo, as promised.")
    msg.add_attachment((photos / "rocket.jpg").read_bytes(), maintype="image", subtype="jpeg",
                       filename="launch.jpg")
    msg.add_attachment((tmp_path / "memo.wav").read_bytes(), maintype="audio", subtype="wav",
                       filename="memo.wav")
    msg.add_attachment(_pdf(INVOICE), maintype="application", subtype="pdf",
                       filename="invoice.pdf")
    folder = tmp_path / "trip"
    folder.mkdir()
    (folder / "trip.eml").write_bytes(bytes(msg))
    with Index.open(tmp_path / "idx", clip_config=str(tmp_path / "clip" / "configs" /
                                                       f"{arch}.json"),
                    clip_weights=str(ckpt), tagger=False) as index:
        report = index.add([folder])
        assert (report.added, report.attachments, report.failed) == (1, 3, 0), report.errors
        rows = {name(r["path"]): r for r in items(index)}
        photo, memo = index.item(rows["launch.jpg"]["id"]), index.item(rows["memo.wav"]["id"])
        assert (photo["modality"], memo["modality"]) == ("image", "audio")
        assert index.thumbnail(photo["id"]) is not None
        assert memo["meta"]["transcript"] and memo["chunks"][0]["start_s"] is not None
        with index.store.engine.connect() as conn:
            spaces = {}
            for item_id, modality, space in conn.execute(
                    select(Chunk.item_id, Chunk.modality, Embedding.space)
                    .join(Embedding, Embedding.chunk_id == Chunk.id)):
                spaces.setdefault((item_id, modality), set()).add(space)
        assert spaces[(photo["id"], "image")] == {"vision"}  # no tags: no text-space vector
        for key in [(memo["id"], "audio"), (rows["invoice.pdf"]["id"], "text"),
                    (rows["trip.eml"]["id"], "text")]:
            assert spaces[key] == {"text", "vision"}, key
        hit = index.search("ferry to the island leaves at seven", k=1)[0]
        assert hit.item_id == memo["id"] and hit.start is not None
        assert hit.parent["id"] == rows["trip.eml"]["id"]
        by_example = index.search(image=str(photos / "rocket.jpg"), k=1)[0]
        assert by_example.item_id == photo["id"] and by_example.parent is not None
