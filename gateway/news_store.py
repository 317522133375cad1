"""What the gateway knows of the news: the latest stories of each symbol, as ``fiml.news``
holds them under that symbol's key.

A symbol keeps its ``NEWS_KEPT`` most recently published stories, each in its latest state;
a story that ``replaces`` others removes them. A new subscription gets the last
``NEWS_SNAPSHOT`` of each of its symbols, then every story written since, new or updated
(a later state of the same id), in the order they arrived. :meth:`NewsStore.page` serves
``GET /v1/news`` from the same stories.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from gateway.items import news_item
from schemas.news import NewsItem

if TYPE_CHECKING:
    from gateway.subscription import Subscription

NEWS_KEPT = 500
NEWS_SNAPSHOT = 20

Order = tuple[int, str, str]
"""Where a story sorts in a page: published time, symbol, id."""


@dataclass
class _Story:
    published_us: int
    version: int
    json: str
    entry: dict[str, object]


@dataclass
class _Symbol:
    stories: dict[str, _Story] = field(default_factory=dict)
    version: int = 0


class NewsStore:
    """Per symbol, its latest stories (see the module's docstring)."""

    def __init__(self) -> None:
        self.symbols: dict[str, _Symbol] = {}
        self.version = 0

    def forget(self, symbol: str) -> None:
        """Drop the stories of ``symbol``."""
        self.symbols.pop(symbol, None)

    def update(self, symbol: str, item: NewsItem) -> None:
        """Take the state of a story written under ``symbol``."""
        held = self.symbols.setdefault(symbol, _Symbol())
        for old in item.replaces:
            held.stories.pop(old, None)
        self.version += 1
        held.version = self.version
        entry = news_item(symbol, item)
        held.stories[item.id] = _Story(
            item.published_us, self.version, orjson.dumps(entry).decode(), entry
        )
        if len(held.stories) > NEWS_KEPT:
            oldest = min(held.stories.items(), key=lambda kept: (kept[1].published_us, kept[0]))
            del held.stories[oldest[0]]

    def collect(self, subscription: Subscription) -> list[str]:
        """The snapshot for a new subscription, then what was written since its cursor."""
        cursors = subscription.cursors
        items: list[str] = []
        for symbol in subscription.symbols:
            held = self.symbols.get(symbol)
            cursor = cursors.get(symbol)
            if held is None:
                cursors.setdefault(symbol, 0)
                continue
            if held.version == cursor:
                continue
            if cursor is None:
                newest = sorted(held.stories.values(), key=lambda s: (s.published_us, s.version))
                items.extend(story.json for story in newest[-NEWS_SNAPSHOT:])
            else:
                fresh = sorted(
                    (story for story in held.stories.values() if story.version > cursor),
                    key=lambda story: story.version,
                )
                items.extend(story.json for story in fresh)
            cursors[symbol] = held.version
        return items

    def page(
        self, symbols: list[str], start_us: int, end_us: int, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]:
        """Stories of ``symbols`` published from ``start_us`` to ``end_us``, oldest first,
        at most ``limit`` after the cursor, and the cursor of the next page (None: no more).
        ValueError if the cursor is not one :meth:`page` made."""
        after = decode_news_cursor(cursor)
        found = sorted(
            ((story.published_us, symbol, story_id), story.entry)
            for symbol in symbols
            for story_id, story in self.symbols.get(symbol, _Symbol()).stories.items()
            if start_us <= story.published_us <= end_us
        )
        rest = [(order, entry) for order, entry in found if after is None or order > after]
        page = rest[:limit]
        more = len(rest) > limit
        return [entry for _, entry in page], encode_news_cursor(page[-1][0]) if more else None


def encode_news_cursor(order: Order) -> str:
    """The opaque cursor after the story at ``order``."""
    return base64.urlsafe_b64encode(orjson.dumps(list(order))).decode()


def decode_news_cursor(cursor: str | None) -> Order | None:
    """Where a cursor resumes; ValueError if it is not one this server made."""
    if cursor is None:
        return None
    try:
        published, symbol, story_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if (
            type(published) is not int
            or not isinstance(symbol, str)
            or not isinstance(story_id, str)
        ):
            raise TypeError(cursor)
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        raise ValueError("the cursor is not one this server made") from None
    return published, symbol, story_id
