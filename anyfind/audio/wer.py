"""Word error rate, for judging transcripts against a known script."""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _number_words(n: int) -> list[str]:
    """English words for 0..999999; larger numbers stay as digits."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [_ONES[hundreds], "hundred"] + (_number_words(rest) if rest else [])
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        return _number_words(thousands) + ["thousand"] + (_number_words(rest) if rest else [])
    return [str(n)]


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation; digit runs spelled out ("42" -> forty two)."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    words: list[str] = []
    for word in _WORD.findall(text):
        words += _number_words(int(word)) if word.isdigit() else [word]
    return words


def wer(reference: str, hypothesis: str) -> float:
    """Word-level edit distance / reference length, after normalize_words on both."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i]
        for j, h in enumerate(hyp, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1] / len(ref)
