"""E-mail (.eml): headers, the body (plain text, else HTML), and the text of attachments.

Attachments are extracted with the same extractors as files and appended as sections
headed "Attachment: NAME", so a hit inside a PDF attachment finds the e-mail; the
metadata lists every attachment (name, type, size, whether its text was indexed).
They are not separate items: the store has no parent/child link that the sync planner
could follow for renames, copies and deletions.
"""

from __future__ import annotations

import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError
from .base import Extracted, Section

if TYPE_CHECKING:
    from ..connectors.base import Blob

MAX_DEPTH = 3  # an e-mail attached to an e-mail attached to ...
_depth = threading.local()


def extract_eml(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    msg = BytesParser(policy=policy.default).parsebytes(blob.read())
    if not isinstance(msg, EmailMessage) or not (msg.keys() or msg.get_payload()):
        raise ExtractionError("not an e-mail message")
    headers = {k: str(msg[k]) for k in ("Subject", "From", "To", "Cc", "Date") if msg[k]}
    sections = [Section("\n".join(f"{k}: {v}" for k, v in headers.items()))] if headers else []
    if body := _body(msg):
        sections.append(Section(body))
    attachments = []
    for part in msg.iter_attachments():
        info, section = _attachment(part, ctx)
        attachments.append(info)
        if section is not None:
            sections.append(section)
    metadata: dict[str, Any] = {k.lower(): v for k, v in headers.items()}
    if attachments:
        metadata["attachments"] = attachments
    return Extracted(sections=sections, title=headers.get("Subject"), metadata=metadata)


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


def _attachment(part: EmailMessage, ctx) -> tuple[dict[str, Any], Section | None]:
    from ..connectors.base import Blob
    from . import extract

    name = part.get_filename() or "attachment"
    data = part.get_payload(decode=True) or b""
    info: dict[str, Any] = {"name": name, "media_type": part.get_content_type(),
                            "size": len(data), "indexed": False}
    depth = getattr(_depth, "value", 0)
    if not data or depth >= MAX_DEPTH:
        return info, None
    _depth.value = depth + 1
    try:
        inner = extract(Blob.from_bytes(data, path=name), None, ctx)
    except ExtractionError as exc:
        info["error"] = str(exc)
        return info, None
    finally:
        _depth.value = depth
    if inner.modality != "text" or not inner.text.strip():
        return info, None
    info["indexed"] = True
    return info, Section(f"Attachment: {name}\n\n{inner.text}")
