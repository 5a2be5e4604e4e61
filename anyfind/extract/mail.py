"""E-mail (.eml): headers and the body (plain text, else HTML) as the message's text;
every attachment as a child item.

The message's own text lists its attachments by name; each attachment (a nested e-mail
included) is handed back as a `Child` with its bytes, and the indexer extracts it through
the same path as a file, as an item of its own linked to the e-mail (see
indexer/pipeline.py). The metadata lists every attachment (name, type, size).
"""

from __future__ import annotations

import mimetypes
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError
from .base import Child, Extracted, Section
from .sniff import EML

if TYPE_CHECKING:
    from ..connectors.base import Blob

MAX_ATTACHMENTS = 1000  # more than this in one message: the rest are listed, not indexed


def extract_eml(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    msg = BytesParser(policy=policy.default).parsebytes(blob.read())
    if not isinstance(msg, EmailMessage) or not (msg.keys() or msg.get_payload()):
        raise ExtractionError("not an e-mail message")
    headers = {k: str(msg[k]) for k in ("Subject", "From", "To", "Cc", "Date") if msg[k]}
    sections = [Section("\n".join(f"{k}: {v}" for k, v in headers.items()))] if headers else []
    if body := _body(msg):
        sections.append(Section(body))
    children = attachments(msg)
    if children:
        sections.append(Section("Attachments: " + ", ".join(c.name for c in children)))
    metadata: dict[str, Any] = {k.lower(): v for k, v in headers.items()}
    if children:
        metadata["attachments"] = [{"name": c.name, "media_type": c.media_type,
                                    "size": len(c.data)} for c in children]
    return Extracted(sections=sections, title=headers.get("Subject"), metadata=metadata,
                     children=children[:MAX_ATTACHMENTS])


def attachments(msg: EmailMessage) -> list[Child]:
    """The message's attachments in order, each with a file name (made up when the
    message gives none, with an extension that says its type)."""
    out: list[Child] = []
    for n, part in enumerate(msg.iter_attachments(), start=1):
        declared = part.get_content_type()
        try:
            name = part.get_filename()
        except Exception:  # a malformed header: the attachment still counts
            name = None
        if declared == EML:
            data = _message_bytes(part)
            if not name:
                inner = part.get_payload(0) if part.is_multipart() else None
                subject = str(inner["Subject"] or "") if inner is not None else ""
                name = f"{subject.strip() or 'message'}.eml"
        else:
            data = part.get_payload(decode=True) or b""
        out.append(Child(_clean_name(name, declared, n), declared, data))
    return out


def _message_bytes(part: EmailMessage) -> bytes:
    """The bytes of an attached message (message/rfc822 holds a parsed message)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0].as_bytes(policy=policy.default)
    return part.get_payload(decode=True) or b""


def _clean_name(name: str | None, declared: str, n: int) -> str:
    """One line, no path separators; a missing name becomes attachment-N.EXT."""
    name = " ".join((name or "").replace("/", "_").replace("\\", "_").split())
    if not name:
        ext = ".eml" if declared == EML else (mimetypes.guess_extension(declared) or "")
        name = f"attachment-{n}{ext}"
    return name[:200]


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        from ..connectors.base import Blob
        from .html import extract_html

        data = content.encode() if isinstance(content, str) else content
        return extract_html(Blob.from_bytes(data, path="body.html"), "text/html").text
    return str(content).strip()
