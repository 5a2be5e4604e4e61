"""What a note says about other files: links, embeds, tags, aliases (notes vaults).

Obsidian's conventions, which Foam and most Markdown vaults share:

- wikilinks `[[Note]]`, `[[Note|alias]]`, `[[Note#Heading]]`, `[[Note#^block]]`, and
  embeds `![[image.png|400]]`, `![[Note#Heading]]`, `![[talk.mp3]]`;
- standard links and images to local files, `[text](../notes/x.md)`,
  `![alt](../images/x%20y.png)` (URL-encoded; web links are not relations);
- YAML front matter: `tags`, `aliases`, `title` (a list or a comma-separated string);
- inline `#tags` (not inside code, not a heading's `#`) and `Tags: [[x]]` lines (a
  wikilink there is also a tag).

Logseq pages (`[[page]]`, `#tag`, `tags::`) parse as the same links and tags; its
`key:: value` properties other than tags are not read. Parsing goes through
markdown-it-py's tokens, so nothing inside code spans or fenced blocks counts; each
relation keeps its character offset in the note and the heading it sits under. Bounded:
at most MAX_LINKS per note (a note of 100,000 links costs one pass over its text).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

MAX_LINKS = 5_000
MAX_TAGS = 500
_WIKI = re.compile(r"(!?)\[\[([^\[\]\n|#^]*)(?:#\^?([^\[\]\n|]*))?(?:\|([^\[\]\n]*))?\]\]")
_TAG = re.compile(r"(?<![\w/&#])#([^\W\d][\w/-]*)", re.U)
_TAGS_LINE = re.compile(r"^\s*tags\s*::?\s*(.+)$", re.I | re.M)
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


@dataclass
class Link:
    target: str  # as written, decoded: "Note", "../images/x y.png"
    kind: str  # link | embed
    offset: int  # character offset of the link in the note
    heading: str = ""  # the note's heading the link sits under
    anchor: str = ""  # the target's heading or block (#Heading, #^block)
    alias: str = ""  # the text shown for it (|alias, [text](...), ![alt](...))
    wiki: bool = False  # [[...]] (resolved by name) rather than a path

    def to_json(self) -> dict[str, Any]:
        keep = ("target", "kind", "offset")  # always there; the rest when it says something
        return {k: v for k, v in asdict(self).items() if k in keep or v not in ("", False)}


def front_matter(text: str) -> tuple[dict[str, Any], int]:
    """The note's YAML front matter (an empty dict when none or unreadable) and where its
    body starts."""
    m = _FRONT.match(text)
    if not m:
        return {}, 0
    import yaml

    try:
        data = yaml.safe_load(m.group(1) or "") or {}
    except yaml.YAMLError:
        data = {}
    return (data if isinstance(data, dict) else {}), m.end()


def _names(value: Any, split: str = r"[,\s]+") -> list[str]:
    """A front-matter list or a separated string, as clean names."""
    if isinstance(value, str):
        value = re.split(split, value)
    if not isinstance(value, list):
        return []
    return [str(v).strip().lstrip("#") for v in value if str(v).strip().lstrip("#")]


def _local(href: str) -> str | None:
    """A standard link's local target (decoded), None for a web link or an anchor."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    return unquote(parts.path)


def parse(text: str) -> dict[str, Any]:
    """{"links": [Link...], "tags": [...], "aliases": [...], "title": str | None}."""
    from markdown_it import MarkdownIt

    meta, body_at = front_matter(text)
    tags = _names(meta.get("tags") or meta.get("tag"))
    aliases = _names(meta.get("aliases") or meta.get("alias"), r"\s*,\s*")
    title = meta.get("title") if isinstance(meta.get("title"), str) else None
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    links: list[Link] = []
    heading = ""
    tokens = MarkdownIt("commonmark").parse(text[body_at:])
    body_line = text.count("\n", 0, body_at)
    in_heading = False
    for token in tokens:
        if token.type == "heading_open":
            in_heading = True
            continue
        if token.type == "heading_close":
            in_heading = False
            continue
        if token.type != "inline" or token.map is None:
            continue
        line = body_line + token.map[0]
        start = line_starts[min(line, len(line_starts) - 1)]
        if in_heading:
            heading = token.content.strip()
        _inline(text, token, start, heading, links, tags)
        if len(links) >= MAX_LINKS:
            break
    for m in _TAGS_LINE.finditer(text[body_at:]):  # Tags: [[machine learning]], #rl
        for w in _WIKI.finditer(m.group(1)):
            tags.append(w.group(2).strip())
    seen: set[str] = set()
    tags = [t for t in tags if t and not (t.lower() in seen or seen.add(t.lower()))]
    return {"links": links[:MAX_LINKS], "tags": tags[:MAX_TAGS], "aliases": aliases,
            "title": title}


def _inline(text: str, token: Any, start: int, heading: str, links: list[Link],
            tags: list[str]) -> None:
    """Links and tags of one inline token (a paragraph, a heading, a list item)."""
    pending_link: str | None = None
    for child in token.children or ():
        if child.type == "code_inline":
            continue
        if child.type == "link_open":
            pending_link = _local(child.attrGet("href") or "")
            if pending_link is not None:
                at = text.find(child.attrGet("href") or "", start)
                links.append(Link(pending_link, "link", max(start, at), heading, wiki=False))
            continue
        if child.type == "image":
            target = _local(child.attrGet("src") or "")
            if target is not None:
                at = text.find(child.attrGet("src") or "", start)
                links.append(Link(target, "embed", max(start, at), heading,
                                  alias=child.content or "", wiki=False))
            continue
        if child.type == "link_close":
            pending_link = None
            continue
        if child.type != "text":
            continue
        content = child.content
        for m in _WIKI.finditer(content):
            target = m.group(2).strip()
            at = text.find(m.group(0), start)
            if not target:  # [[#Heading]]: a place in this note, not a relation
                continue
            alias = (m.group(4) or "").strip()
            if m.group(1) and re.fullmatch(r"\d+(x\d+)?", alias):
                alias = ""  # ![[image.png|400]]: a display width, not a name
            links.append(Link(target, "embed" if m.group(1) else "link", max(start, at),
                              heading, anchor=(m.group(3) or "").strip(), alias=alias,
                              wiki=True))
            if len(links) >= MAX_LINKS:
                return
        tags.extend(m.group(1) for m in _TAG.finditer(_WIKI.sub(" ", content)))
