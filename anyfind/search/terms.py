"""Query text -> the terms that go to the lexical index and to highlighting.

User text never reaches a full-text query language raw: it is cut into word tokens
(letters and digits, any script), lower-cased and stripped of common English function
words. Each term is then quoted by the backend, so quotes, `*`, `:`, `NEAR`, `AND`,
parentheses ... are just words or separators.

Repeated words are kept: BM25 sums over query terms, so a word said twice in a long
question weighs twice (the query-term-frequency factor of BM25 with k3 = infinity).
"""

from __future__ import annotations

import re

MAX_QUERY_CHARS = 8_000  # longer queries are cut (an encoder reads ~256 tokens anyway)
MAX_TERMS = 128

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Function words that carry no topic. Removed from the lexical query only (the dense
# encoder sees the whole text), and kept when a query has nothing else.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each either else
ever few for from further get gets had has have having he her here hers herself him
himself his how however i if in into is it its itself just let me more most my myself
neither no nor not now of off on once only or other ought our ours ourselves out over own
per same shall she should so some such than that the their theirs them themselves then
there these they this those through thus to too under until up upon us very via was we
were what when where whether which while who whom whose why will with within without
would yet you your yours yourself yourselves
""".split())


def words(text: str) -> list[str]:
    """Lower-cased word tokens, in order (duplicates kept)."""
    return [m.group(0).lower() for m in _WORD.finditer(text[:MAX_QUERY_CHARS])]


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, lower-cased word) of every word token of a passage."""
    return [(m.start(), m.end(), m.group(0).lower()) for m in _WORD.finditer(text)]


def query_terms(text: str) -> list[str]:
    """The content words of a query, in order, repeats kept; stop words only if nothing
    else is left."""
    tokens = words(text)
    return ([t for t in tokens if t not in STOP_WORDS] or tokens)[:MAX_TERMS]


def has_words(text: str) -> bool:
    return _WORD.search(text[:MAX_QUERY_CHARS]) is not None
