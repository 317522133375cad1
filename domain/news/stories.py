"""A story: the copies of one piece of news, and the item they make together.

A copy is one provider's raw item; the same item polled again (equal but for its ingest
time) is one copy, with the earlier ingest time. The story's item is a function of its set
of copies alone, whatever order they came in:

- representative: the copy first by :func:`copy_order` (earliest published, then smaller
  canonical URL, then provider, then the item's text form); its headline, URL, canonical
  URL and time are the story's, and its id is ``story_id(its canonical URL)``;
- summary, publisher, language, overall sentiment: the first copy in that order that has one;
  a symbol's sentiment and relevance likewise, symbol by symbol;
- providers and symbols: the sorted union; ``ts_ingest``: the earliest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.news.headlines import Headline, tokens
from schemas.news import NewsItem, story_id


@dataclass(frozen=True, slots=True)
class Copy:
    """One provider's item with what matching needs of it; ``key`` is the item's text form
    without its ingest time, the same for every poll of an unchanged item."""

    item: NewsItem
    provider: str
    headline: Headline
    symbols: frozenset[str]
    key: str


def copy_of(item: NewsItem) -> Copy:
    """A raw item as a copy (its first provider is the one that carried it)."""
    provider = item.providers[0] if item.providers else ""
    key = repr(dataclasses.replace(item, ts_ingest=0))
    return Copy(item, provider, tokens(item.headline), frozenset(item.symbols), key)


def copy_order(copy: Copy) -> tuple[int, str, str, str]:
    """Earliest published first, then canonical URL, provider and the item's text form."""
    return (copy.item.published_us, copy.item.canonical_url, copy.provider, copy.key)


@dataclass
class Story:
    """The copies of one story, when one was last polled, and the item last written."""

    copies: dict[str, Copy] = field(default_factory=dict)
    last_ingest: int = 0
    written: NewsItem | None = None

    @property
    def id(self) -> str:
        """Its id now (see the module's docstring)."""
        return story_id(min(self.copies.values(), key=copy_order).item.canonical_url)

    def add(self, copy: Copy) -> None:
        """Take a copy; a held copy of the same item keeps the earlier ingest time."""
        held = self.copies.get(copy.key)
        if held is None or copy.item.ts_ingest < held.item.ts_ingest:
            self.copies[copy.key] = copy
        self.last_ingest = max(self.last_ingest, copy.item.ts_ingest)

    def item(self, replaces: Iterable[str] = ()) -> NewsItem:
        """The story's item (see the module's docstring)."""
        ordered = [copy.item for copy in sorted(self.copies.values(), key=copy_order)]
        first = ordered[0]
        sentiment: dict[str, float] = {}
        relevance: dict[str, float] = {}
        for item in reversed(ordered):
            sentiment.update(item.symbol_sentiment)
            relevance.update(item.symbol_relevance)
        return NewsItem(
            story_id(first.canonical_url),
            first.headline,
            next((i.summary for i in ordered if i.summary is not None), None),
            first.url,
            first.canonical_url,
            next((i.publisher for i in ordered if i.publisher is not None), None),
            first.published_us,
            min(item.ts_ingest for item in ordered),
            sorted({copy.provider for copy in self.copies.values()} - {""}),
            sorted({symbol for item in ordered for symbol in item.symbols}),
            next((i.sentiment for i in ordered if i.sentiment is not None), None),
            dict(sorted(sentiment.items())),
            dict(sorted(relevance.items())),
            next((i.language for i in ordered if i.language is not None), None),
            sorted(set(replaces)),
        )
