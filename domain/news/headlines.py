"""The near-duplicate headline rule: two headlines tell the same story.

A headline's tokens (:func:`tokens`): a trailing ticker tag list (``" - Star Equity Hldgs
( NASDAQ:STRR )"``, which Benzinga appends) is cut; the text is NFKC-normalized and case
folded; apostrophes go (``Apple's`` is ``apple``); the tokens are the runs of letters and
digits, a number keeping its ``.``/``,`` separators (``2.8``, ``95,000`` read as ``95000``);
the words of :data:`STOPWORDS` are left out.

Headlines ``a`` and ``b`` are near-duplicates (:func:`similar`) when all of:
  1. Jaccard similarity ``|A & B| / |A | B|`` of their token sets is at least the threshold;
  2. their numbers agree: the tokens with a digit are the same set in both, or one has none;
  3. their directions agree: no word of :data:`UP` is only in one while a word of
     :data:`DOWN` is only in the other ("shares rise after earnings beat" is not "shares
     fall after earnings miss").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# fmt: off
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it",
    "its", "of", "on", "or", "that", "the", "this", "to", "was", "with",
})
UP = frozenset({
    "above", "beat", "beats", "bullish", "buy", "climb", "climbs", "gain", "gains", "higher",
    "increase", "increases", "jump", "jumps", "profit", "raise", "raises", "rallies", "rally",
    "rise", "rises", "rose", "soar", "soars", "surge", "surges", "up", "upgrade", "upgrades",
})
DOWN = frozenset({
    "below", "bearish", "cut", "cuts", "decline", "declines", "decrease", "decreases", "down",
    "downgrade", "downgrades", "drop", "drops", "fall", "falls", "fell", "lose", "loses",
    "loss", "lower", "miss", "misses", "plunge", "plunges", "sell", "sink", "sinks", "slump",
    "slumps", "tumble", "tumbles",
})
# fmt: on
_TICKER_TAG = re.compile(r"\(\s*[A-Z]+:\s*[A-Z0-9.\-]+\s*\)")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:\.[^\W\d_]+)*")
_APOSTROPHES = re.compile(r"['\u2019\u2018`]s\b|['\u2019\u2018`]")


@dataclass(frozen=True, slots=True)
class Headline:
    """A headline's tokens, and those of them that are numbers."""

    tokens: frozenset[str]
    numbers: frozenset[str]


def tokens(headline: str) -> Headline:
    """The tokens the rule compares (see the module's docstring)."""
    head, dash, tail = headline.rpartition(" - ")
    if dash and tail.rstrip().endswith(")") and _TICKER_TAG.search(tail):
        headline = head
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", headline).casefold())
    found = frozenset(
        token.replace(",", "") if token[0].isdigit() else token
        for token in _TOKEN.findall(text)
        if token not in STOPWORDS
    )
    return Headline(found, frozenset(token for token in found if token[0].isdigit()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """``|a & b| / |a | b|``; 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def similar(a: Headline, b: Headline, threshold: float) -> bool:
    """Whether two headlines are near-duplicates (rules 1 to 3 of the module's docstring)."""
    if jaccard(a.tokens, b.tokens) < threshold:
        return False
    if a.numbers and b.numbers and a.numbers != b.numbers:
        return False
    only_a, only_b = a.tokens - b.tokens, b.tokens - a.tokens
    return not ((only_a & UP and only_b & DOWN) or (only_a & DOWN and only_b & UP))
