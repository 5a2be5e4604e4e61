r"""open_clip's SimpleTokenizer without torch: same cleaning, same byte-level BPE, same ids.

The exported CLIP text tower takes exactly the (n, context_length) int64 ids that
open_clip.tokenizer.SimpleTokenizer makes; a `tokenizers` BPE cannot reproduce its ftfy +
html cleaning, so this is a small re-implementation reading the merges the export saved.

Start-up (it is on a cold text search's path): the vocabulary and merge ranks are built
with C-level string splits and dict(zip(...)) instead of per-line tuples, and a plain
ASCII text (no control characters, no '&') is cleaned and split without importing ftfy
(~130 ms) or the `regex` module: ftfy.fix_text returns such a text unchanged and, on
ASCII, \p{L} is [A-Za-z] and \p{N} is [0-9] (tests compare both paths with open_clip).
"""

from __future__ import annotations

import gzip
import html
import re
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


def write_merges(path: Path, merges: list[tuple[str, str]]) -> None:
    data = "\n".join(f"{a} {b}" for a, b in merges).encode()
    Path(path).write_bytes(gzip.compress(data, mtime=0))  # mtime=0: same bytes, same sha256


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """Token -> id exactly as SimpleTokenizer builds it: bytes, bytes+'</w>', merges, specials."""
    base = list(bytes_to_unicode().values())
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + [SOT, EOT]
    return {tok: i for i, tok in enumerate(vocab)}


# Printable ASCII, tab and newline, but not '&': ftfy.fix_text is the identity on these
# texts (nothing to unescape, decode, uncurl, widen or normalise), so ftfy is not needed.
_PLAIN = re.compile(r"[\t\n\x20-\x25\x27-\x7e]*")


def is_plain_ascii(text: str) -> bool:
    return _PLAIN.fullmatch(text) is not None


def _fix_text(text: str) -> str:
    if is_plain_ascii(text):
        return text
    import ftfy  # the same fixer open_clip runs; imported only for a text that needs it

    return ftfy.fix_text(text)


def _clean(text: str, how: str) -> str:
    text = html.unescape(html.unescape(_fix_text(text))).strip()
    if how == "canonicalize":
        text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation))
        return " ".join(text.lower().split()).strip()
    text = " ".join(text.split()).strip()
    return text.lower() if how == "lower" else text


_SPLIT = rf"{SOT}|{EOT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+"
# The same split for an ASCII text, with the stdlib re (no `regex` import).
_SPLIT_ASCII = re.compile(
    rf"{SOT}|{EOT}|'s|'t|'re|'ve|'m|'ll|'d|[A-Za-z]+|[0-9]|[^\sA-Za-z0-9]+",
    re.IGNORECASE | re.ASCII)


class ClipTokenizer:
    """Texts -> (n, context_length) int64 ids: [sot] + bpe + [eot], zero padded; a text
    over the budget is cut and its last id replaced by eot (as open_clip does)."""

    def __init__(self, merges_file: Path, context_length: int = 77, clean: str = "lower"):
        if clean not in CLEANERS:
            raise ValueError(f"unknown CLIP text cleaning {clean!r}")
        raw = Path(merges_file).read_bytes()
        text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
        lines = text.strip("\n").split("\n")  # write_merges: no blank lines; C-level checks
        if "" in lines or text.count(" ") != len(lines) or text.count("\t"):
            lines = [line for line in text.split("\n") if line.strip()]
            if any(len(line.split()) != 2 or line.count(" ") != 1 for line in lines):
                raise ValueError(f"{merges_file}: a merge is not one 'a b' pair")
        # rank of the pair 'a b' (the merges file's own line), and the vocabulary as
        # build_vocab makes it: bytes, bytes + '</w>', the merged pairs, the two specials
        self.ranks = dict(zip(lines, range(len(lines)), strict=True))
        base = list(bytes_to_unicode().values())
        vocab = base + [v + "</w>" for v in base]
        vocab += "\n".join(lines).replace(" ", "").split("\n") + [SOT, EOT]
        self.encoder = dict(zip(vocab, range(len(vocab)), strict=True))
        self.sot, self.eot = self.encoder[SOT], self.encoder[EOT]
        self.context_length = context_length
        self.clean = clean
        self.byte_encoder = bytes_to_unicode()
        self.cache: dict[str, str] = {SOT: SOT, EOT: EOT}
        self._pattern = None

    @property
    def pattern(self):
        """The open_clip split for any text (imports `regex`: \\p{L} classes)."""
        if self._pattern is None:
            import regex

            self._pattern = regex.compile(_SPLIT, regex.IGNORECASE)
        return self._pattern

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        ranks = self.ranks
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            best, best_rank = -1, len(ranks)
            for i in range(len(word) - 1):
                rank = ranks.get(f"{word[i]} {word[i + 1]}", best_rank)
                if rank < best_rank:
                    best, best_rank = i, rank
            if best < 0:
                break
            first, second = word[best], word[best + 1]
            merged: list[str] = []
            i = 0
            while i < len(word):  # every occurrence of the best pair, left to right
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        text = _clean(text, self.clean)
        pattern = _SPLIT_ASCII if text.isascii() else self.pattern
        for token in pattern.findall(text):
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
