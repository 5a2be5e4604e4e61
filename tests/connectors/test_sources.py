"""Persistent sources: kind inference, the CLI, the TOML config file, and secrets."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from connector_helpers import git, write

from anyfind import Index
from anyfind.cli import cli
from anyfind.errors import ConfigError
from anyfind.secrets import expand_env, mask_uri, restore_uri_secrets, split_uri_secrets
from anyfind.sources import infer_kind

WORKTREE = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("uri,options,kind", [
    ("sqlite:////tmp/x.db", {}, "sql"),
    ("postgresql+psycopg://u:p@h/db", {}, "sql"),
    ("s3://bucket/prefix", {}, "objectstore"),
    ("gs://bucket", {}, "objectstore"),
    ("az://container/x", {}, "objectstore"),
    ("https://example.org/sitemap.xml", {}, "web"),
    ("https://example.org/page", {}, "web"),
    ("https://example.org/repo.git", {}, "git"),
    ("git+https://example.org/repo", {}, "git"),
    ("git@example.org:team/repo.git", {}, "git"),
    ("https://example.org/data.tar.gz", {}, "archive"),
    ("zip:///tmp/a.zip", {}, "archive"),
])
def test_kind_inference(uri, options, kind):
    assert infer_kind(uri, options) == kind


def test_kind_inference_on_disk(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    assert infer_kind(str(repo), {}) == "filesystem"  # the working tree, as `anyfind index`
    assert infer_kind(str(repo), {"ref": "main"}) == "git"
    (tmp_path / "a.tar.gz").write_bytes(b"")
    assert infer_kind(str(tmp_path / "a.tar.gz"), {}) == "archive"
    with pytest.raises(ConfigError, match="--kind"):
        infer_kind("weird://thing", {})


def test_masking_and_env_references():
    uri = "postgresql+psycopg://bob:s3cr%40t@db:5432/crm?sslmode=require&password=two"
    masked, found = split_uri_secrets(uri)
    assert masked == "postgresql+psycopg://bob:***@db:5432/crm?sslmode=require&password=***"
    assert found == {"password": "s3cr%40t", "query.password": "two"}
    assert restore_uri_secrets(masked, found) == uri
    ref = "postgresql://bob:${PGPASS}@db/crm"
    assert mask_uri(ref) == ref  # a reference is not a secret
    assert expand_env(ref, {"PGPASS": "x"}) == "postgresql://bob:x@db/crm"
    with pytest.raises(ConfigError, match="PGPASS is not set"):
        expand_env(ref, {})
    assert mask_uri("file:///tmp/x") == "file:///tmp/x"


def run_cli(*args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_sources_add_list_sync_search_remove(tmp_path):
    idx = str(tmp_path / "idx")
    notes = tmp_path / "notes"
    write(notes, {"bees.md": "Honey bees dance to show where the flowers are."})
    db = tmp_path / "crm.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT, tag TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 'Bees make honey from nectar.', 'x')"))
    engine.dispose()

    code, out = run_cli("sources", "add", "notes", str(notes), "-i", idx)
    assert code == 0 and "added source notes (filesystem)" in out
    code, out = run_cli("sources", "add", "crm", f"sqlite:///{db}", "--table", "t",
                        "--text-column", "body", "-o", "label=tickets", "-i", idx)
    assert code == 0, out
    code, out = run_cli("sources", "add", "broken", f"sqlite:///{tmp_path / 'none.db'}",
                        "--table", "t", "-i", idx)
    assert code == 0
    code, out = run_cli("sources", "add", "crm", "/tmp", "-i", idx)
    assert code != 0 and "exists" in out

    code, out = run_cli("sync", "-i", idx, "-q")
    assert code == 1  # one source failed; the other two synced
    assert out.startswith("2 added") and "broken" in out and "does not exist" in out

    code, out = run_cli("search", "honey bees", "--source", "crm", "--json", "-i", idx)
    hits = [json.loads(line) for line in out.splitlines()]
    assert [h["source"] for h in hits] == ["crm"] and hits[0]["path"] == "tickets#1"
    code, out = run_cli("search", "honey bees", "-i", idx, "--json")
    assert {json.loads(line)["source"] for line in out.splitlines()} == {"crm", "notes"}
    code, out = run_cli("search", "bees", "--source", "nope", "-i", idx)
    assert code != 0 and "no source named 'nope'" in out

    code, out = run_cli("sources", "list", "--json", "-i", idx)
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert rows["crm"]["items"] == 1 and rows["crm"]["options"]["text_columns"] == ["body"]
    assert rows["broken"]["state"]["last_error"]

    code, out = run_cli("sources", "remove", "notes", "-i", idx)
    assert code == 0 and "1 items" in out
    code, out = run_cli("search", "dancing bees", "-i", idx, "--json")
    assert {json.loads(line)["source"] for line in out.splitlines()} == {"crm"}
    code, out = run_cli("sources", "remove", "broken", "-i", idx)
    assert run_cli("sync", "-i", idx, "-q")[0] == 0


def test_toml_config_declares_sources(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, {"guide.md": "Knots: a bowline makes a fixed loop at the end of a rope."})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Knots")
    monkeypatch.setenv("REPO_DIR", str(repo))
    config = tmp_path / "sources.toml"
    config.write_text(f'''
[sources.knots]
uri = "${{REPO_DIR}}"
ref = "main"

[sources.folder]
uri = "{tmp_path / "notes"}"
exclude = ["*.tmp"]
''')
    write(tmp_path / "notes", {"a.md": "Rivers carve canyons over millions of years.",
                               "b.tmp": "scratch"})
    with Index.open(tmp_path / "idx") as idx:
        idx.use_config(config)
        listed = {s["name"]: s for s in idx.sources()}
        assert listed["knots"]["kind"] == "git" and listed["knots"]["uri"] == "${REPO_DIR}"
        assert listed["knots"]["origin"] == str(config)
        report = idx.sync()
        assert report.added == 2 and not report.failed_sources
        assert idx.search("tying a fixed loop", k=1)[0].source == "knots"
        with pytest.raises(ConfigError, match="config file"):
            idx.remove_source("knots")
    # anyfind.toml inside the index folder is read without --config
    (tmp_path / "idx" / "anyfind.toml").write_text(config.read_text())
    with Index.open(tmp_path / "idx") as idx:
        assert idx.sync().unchanged == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[sources.x]\nkind = 'git'\n")
    with Index.open(tmp_path / "idx") as idx, pytest.raises(ConfigError, match="needs a uri"):
        idx.use_config(bad)


def test_secrets_never_stored_and_masked_everywhere(tmp_path, site, monkeypatch, caplog):
    site.pages["/doc"] = b"<html><body><p>Volcanoes erupt molten basalt lava.</p></body></html>"
    monkeypatch.setenv("SITE_TOKEN", "env-token-777")
    idx_path = tmp_path / "idx"
    literal = site.base.replace("http://", "http://reader:hunter2-pw@") + "/doc?token=tok-991"
    with Index.open(idx_path) as idx:
        info = idx.add_source("site", literal)
        assert "hunter2" not in json.dumps(info) and "tok-991" not in json.dumps(info)
        idx.add_source("envsite", site.base + "/doc?token=${SITE_TOKEN}&v=1")
        caplog.set_level(logging.INFO, logger="anyfind")
        report = idx.sync()
        assert report.added == 2 and not report.failed_sources
        hits = idx.search("volcano lava", k=5)
        assert all("hunter2" not in h.uri and "tok-991" not in h.uri for h in hits)
        assert "env-token-777" not in json.dumps([h.to_dict() for h in hits])
        assert "tok-991" not in json.dumps(idx.status(), default=str)
    logs = caplog.text
    assert "syncing source site" in logs and "hunter2" not in logs and "tok-991" not in logs
    stored = b"".join(p.read_bytes() for p in idx_path.glob("meta.db*"))
    for secret in (b"hunter2", b"tok-991", b"env-token-777"):
        assert secret not in stored
    assert b"${SITE_TOKEN}" in stored  # the reference is what is kept
    secrets_file = idx_path / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert "hunter2-pw" in secrets_file.read_text()

    # a new process finds the credential again; a missing env variable is a source error
    monkeypatch.delenv("SITE_TOKEN")
    with Index.open(idx_path) as idx:
        report = idx.sync()
        assert report.failed_sources == ["envsite"] and report.unchanged == 1
        assert "SITE_TOKEN is not set" in report.errors[0]["error"]
    code, out = run_cli("sources", "list", "-i", str(idx_path))
    assert "reader:***@" in out and "hunter2" not in out and "token=***" in out


def test_help_is_instant_and_imports_no_backend():
    code = ("import sys, anyfind.cli; "
            "bad = [m for m in ('sqlalchemy.dialects.postgresql', 'fsspec', 'torch', 'pptx') "
            "if m in sys.modules]; print(bad)")
    done = subprocess.run([sys.executable, "-c", code], cwd=WORKTREE, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(WORKTREE)})
    assert done.stdout.strip() == "[]"
    help_out = subprocess.run([sys.executable, "-m", "anyfind", "sources", "add", "--help"],
                              cwd=WORKTREE, capture_output=True, text=True, timeout=60)
    assert "--updated-column" in help_out.stdout and "--ref" in help_out.stdout
