"""open_clip's SimpleTokenizer without torch: same cleaning, same byte-level BPE, same ids.

The exported CLIP text tower takes exactly the (n, context_length) int64 ids that
open_clip.tokenizer.SimpleTokenizer makes; a `tokenizers` BPE cannot reproduce its ftfy +
html cleaning, so this is a small re-implementation reading the merges the export saved.
"""

from __future__ import annotations

import gzip
import html
import string
from functools import lru_cache
from pathlib import Path

import numpy as np

SOT, EOT = "<start_of_text>", "<end_of_text>"
CLEANERS = ("lower", "whitespace", "canonicalize")


@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """The reversible byte -> printable character table of GPT-2/CLIP BPE."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def read_merges(path: Path) -> list[tuple[str, str]]:
    """Merges, one 'a b' pair a line, in rank order (gzip or plain text)."""
    raw = Path(path).read_bytes()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    return [tuple(line.split()) for line in text.split("\n") if line.strip()]  # type: ignore[misc]


def write_merges(path: Path, merges: list[tuple[str, str]]) -> None:
    data = "\n".join(f"{a} {b}" for a, b in merges).encode()
    Path(path).write_bytes(gzip.compress(data, mtime=0))  # mtime=0: same bytes, same sha256


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """Token -> id exactly as SimpleTokenizer builds it: bytes, bytes+'</w>', merges, specials."""
    base = list(bytes_to_unicode().values())
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + [SOT, EOT]
    return {tok: i for i, tok in enumerate(vocab)}


def _clean(text: str, how: str) -> str:
    import ftfy  # the same fixer open_clip runs; imported only when a text is tokenized

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    if how == "canonicalize":
        text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation))
        return " ".join(text.lower().split()).strip()
    text = " ".join(text.split()).strip()
    return text.lower() if how == "lower" else text


class ClipTokenizer:
    """Texts -> (n, context_length) int64 ids: [sot] + bpe + [eot], zero padded; a text
    over the budget is cut and its last id replaced by eot (as open_clip does)."""

    def __init__(self, merges_file: Path, context_length: int = 77, clean: str = "lower"):
        if clean not in CLEANERS:
            raise ValueError(f"unknown CLIP text cleaning {clean!r}")
        import regex  # \p{L} classes: the stdlib re has none

        merges = read_merges(merges_file)
        self.encoder = build_vocab(merges)
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = self.encoder[SOT], self.encoder[EOT]
        self.context_length = context_length
        self.clean = clean
        self.byte_encoder = bytes_to_unicode()
        self.cache: dict[str, str] = {SOT: SOT, EOT: EOT}
        self.pattern = regex.compile(
            rf"{SOT}|{EOT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
            regex.IGNORECASE)

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:], strict=False))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == best[0] and word[i + 1] == best[1]:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for token in self.pattern.findall(_clean(text, self.clean)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot
            out[row, : len(ids)] = ids
        return out
