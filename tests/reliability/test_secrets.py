"""Credentials in every URI form are masked wherever they could show (messages, logs,
config.json, meta.db, status, the API) and kept whole in secrets.json: generated
credentials (hypothesis) over the URI forms anyfind takes, with an exact oracle (the URI
written with *** in the secret's place), then through the CLI with every file and
output grepped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote_plus

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from anyfind.secrets import MASK, mask_uri, mask_uris_in, restore_uri_secrets, split_uri_secrets

ROOT = Path(__file__).resolve().parents[2]

# What a person may type in a password or a token without thinking of URL rules: every
# printable character but whitespace, quotes and "$" (a ${ENV} reference is not literal).
# "@" and "&" end a user-info and a query value; a password holding "?k=" reads as a query.
_SAFE = "".join(chr(c) for c in range(33, 127) if chr(c) not in "\"'`<>$\\")
PASSWORD = st.text(alphabet=_SAFE.replace("@", ""), min_size=1, max_size=24).filter(
    lambda p: not __import__("re").search(r"\?[^=&]*=", p))
TOKEN = st.text(alphabet=_SAFE.replace("&", ""), min_size=1, max_size=24)
WEB_PASSWORD = st.text(alphabet=_SAFE.translate({ord(c): None for c in "@/"}),
                       min_size=1, max_size=24).filter(
    lambda p: not __import__("re").search(r"\?[^=&]*=", p))
WEB_SECRET = st.text(alphabet=_SAFE.translate({ord(c): None for c in "@&#"}),
                     min_size=1, max_size=24)

# {pw}: a password in the user-info; {tok}: a secret query value.
SERVICE_FORMS = [
    "postgresql+psycopg://anyfind:{pw}@db.internal:5432/anyfind",
    "postgresql+psycopg://anyfind:{pw}@/anyfind?host=/run/postgresql",
    "postgresql://anyfind:{pw}@db.internal/anyfind?sslmode=require&options=-csearch_path%3Da",
    "mysql+pymysql://reader:{pw}@127.0.0.1:3306/crm",
    "milvus://milvus.internal:19530?token={tok}&prefix=b_",
    "milvus+https://milvus.internal:443?prefix=b_&token={tok}",
    "milvus://root:{pw}@milvus.internal:19530",
    "milvus-lite://root:{pw}@/srv/anyfind/vectors.db",
    "s3://bucket/prefix?region=eu-west-1&secret_key={tok}",
]
WEB_FORMS = [
    "https://reader:{pw}@wiki.internal/space?page=1",
    "https://wiki.internal/export?api_key={tok}#section",
]


def _fill(form: str, pw: str, tok: str) -> str:
    return form.replace("{pw}", pw).replace("{tok}", tok)


def _check(form: str, pw: str, tok: str) -> None:
    uri = _fill(form, "Qz" + pw, "Qz" + tok)
    masked, found = split_uri_secrets(uri)
    assert masked == _fill(form, MASK, MASK)  # the exact oracle: nothing of it left
    assert mask_uri(uri) == masked
    said = "cannot reach {} (connection refused)"
    assert mask_uris_in(said.format(uri)) == said.format(masked)
    # a message that quotes the URI masked already keeps its punctuation when masked again
    said = "cannot reach {}: refused"
    assert mask_uris_in(said.format(masked)) == said.format(masked)
    # kept whole: restoring gives a URI with the same credentials, the same masked form
    restored = restore_uri_secrets(masked, found)
    assert split_uri_secrets(restored) == (masked, found)
    if "{pw}" in form:
        assert found["password"] == "Qz" + pw
    if "{tok}" in form:  # kept as the service reads a query value: decoded
        assert unquote_plus("Qz" + tok) in found.values()


@settings(max_examples=300, deadline=None)
@given(form=st.sampled_from(SERVICE_FORMS), pw=PASSWORD, tok=TOKEN)
def test_service_uris_are_masked_exactly_and_kept_whole(form, pw, tok):
    _check(form, pw, tok)


@settings(max_examples=100, deadline=None)
@given(form=st.sampled_from(WEB_FORMS), pw=WEB_PASSWORD, tok=WEB_SECRET)
def test_web_urls_are_masked_exactly_and_kept_whole(form, pw, tok):
    _check(form, pw, tok)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "anyfind", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


@settings(max_examples=2, deadline=None, phases=[Phase.generate],  # a shrink: minutes
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pw=PASSWORD, tok=TOKEN)
def test_no_file_or_output_of_an_index_holds_a_credential(tmp_path_factory, pw, tok):
    """The CLI with credentials in the store URL (a server that refuses), the vector
    store (Milvus Lite with a login) and a source (a host that does not answer): every
    output, every file of the index but secrets.json, `status --json`."""
    pw, tok = "Qz" + pw, "Qz" + tok
    tmp = tmp_path_factory.mktemp("secrets")
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Tides\n\nThe Moon raises the tides twice a day.")
    outputs = []
    # 1. a database that refuses: one line, masked
    done = _cli("index", str(docs), "--index", str(tmp / "refused"), "--store-url",
                f"postgresql+psycopg://anyfind:{pw}@127.0.0.1:9/anyfind", cwd=tmp)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    outputs.append(done.stdout + done.stderr)
    # 2. Milvus Lite with a login, and a web source with credentials that cannot be read
    idx = tmp / "idx"
    vectors = f"milvus-lite://root:{pw}@{tmp / 'lite' / 'v.db'}?token={tok}"
    done = _cli("index", str(docs), "--index", str(idx), "--vector-store", vectors, cwd=tmp)
    outputs.append(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    site = f"http://reader:{pw.replace('/', '')}x@127.0.0.1:9/wiki?token={tok}"
    for args in (["sources", "add", "wiki", site, "--kind", "web"], ["sync"],
                 ["status", "--json"], ["sources", "list"], ["check"]):
        done = _cli(*args, "--index", str(idx), cwd=tmp)
        outputs.append(done.stdout + done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
    status = json.loads(_cli("status", "--json", "--index", str(idx), cwd=tmp).stdout)
    assert status["sources"] and any(s["state"].get("last_error") for s in status["sources"]), status
    secrets = [pw, tok, pw.replace("/", "") + "x"]
    for text in outputs:
        for secret in secrets:
            assert secret not in text, text
    for folder in (tmp / "refused", idx):
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "secrets.json":
                data = path.read_bytes()
                for secret in secrets:
                    assert secret.encode() not in data, path
    kept = (idx / "secrets.json").read_text()
    assert json.dumps(pw)[1:-1] in kept  # whole, backslashes escaped as JSON writes them
