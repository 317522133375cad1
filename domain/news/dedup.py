"""Deduplication of raw news items into stories: pure, deterministic from the log.

A raw item (a copy, see :mod:`domain.news.stories`) joins every held story that has a
copy which either has the same canonical URL, or is a near-duplicate of it: published at
most ``window_us`` apart, sharing a symbol (or both without one), and with a similar
headline (:func:`domain.news.headlines.similar` at ``threshold``). Joining several
stories merges them into one. So the stories are the connected components of "same URL or
near-duplicate" over the copies held, and they, their items and their ids do not depend
on the order the copies came in, as long as none was forgotten.

Each :meth:`StoryWindow.add` returns the story's item when it is new or changed (the same id
is an update; a new id lists the ids it ``replaces``), or None when the copy changed nothing
(an item seen again by a later poll).

Memory is bounded by the log, not the wall clock: a story whose latest copy was ingested
more than ``retention_us`` before the latest ingest time read is forgotten, a window holds at
most ``max_stories`` (the least recently ingested, then the smallest id, go first), a story
at most ``max_copies`` copies (later new copies are ignored), and a
:class:`NewsDeduplicator` at most ``max_keys`` windows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from domain.news.headlines import similar
from domain.news.stories import Copy, Story, copy_of, copy_order
from schemas.news import NewsItem
from schemas.times import check_micros

HOUR_US = 3_600_000_000


def check_item(item: NewsItem) -> None:
    """Raise ValueError unless the raw item's times are times a date can show: an ingest time
    that is not would expire every story of its window from then on."""
    check_micros(item.published_us)
    check_micros(item.ts_ingest)


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """The near-duplicate threshold and window, and the memory bounds."""

    threshold: float = 0.6
    window_us: int = 12 * HOUR_US
    retention_us: int = 48 * HOUR_US
    max_stories: int = 1000
    max_copies: int = 16


class StoryWindow:
    """The stories of one stream of raw items (one symbol key of the raw news topic)."""

    def __init__(self, config: DedupConfig = DedupConfig()) -> None:
        self.config = config
        self.stories: list[Story] = []
        self.watermark = 0

    def add(self, item: NewsItem) -> NewsItem | None:
        """Take one raw item; the story's item if it is new or changed, else None."""
        copy = copy_of(item)
        self.watermark = max(self.watermark, item.ts_ingest)
        horizon = self.watermark - self.config.retention_us
        self.stories = [story for story in self.stories if story.last_ingest >= horizon]
        matched = [story for story in self.stories if self.matches(story, copy)]
        replaced = {story.id for story in matched}
        story = matched[0] if matched else Story()
        for other in matched[1:]:
            self.absorb(story, other)
            self.stories.remove(other)
        if not matched:
            self.stories.append(story)
        if copy.key in story.copies or len(story.copies) < self.config.max_copies:
            story.add(copy)
        if len(self.stories) > self.config.max_stories:
            self.stories.remove(min(self.stories, key=lambda held: (held.last_ingest, held.id)))
        current = story.item(replaced - {story.id})
        if not current.replaces and current == story.written:
            return None
        story.written = dataclasses.replace(current, replaces=[])
        return current

    def matches(self, story: Story, copy: Copy) -> bool:
        """Whether ``copy`` belongs to ``story`` (see the module's docstring)."""
        config = self.config
        for held in story.copies.values():
            if held.item.canonical_url == copy.item.canonical_url:
                return True
            close = abs(held.item.published_us - copy.item.published_us) <= config.window_us
            shared = bool(held.symbols & copy.symbols) or not (held.symbols or copy.symbols)
            if close and shared and similar(held.headline, copy.headline, config.threshold):
                return True
        return False

    def absorb(self, story: Story, other: Story) -> None:
        """Move the copies of ``other`` into ``story``, in copy order while there is room."""
        for copy in sorted(other.copies.values(), key=copy_order):
            if copy.key in story.copies or len(story.copies) < self.config.max_copies:
                story.add(copy)
        story.last_ingest = max(story.last_ingest, other.last_ingest)


class NewsDeduplicator:
    """One :class:`StoryWindow` per symbol key: the news topic is keyed by symbol, so each
    symbol's subscribers get every story of that symbol once, whatever other keys carried."""

    def __init__(self, config: DedupConfig = DedupConfig(), max_keys: int = 2000) -> None:
        self.config = config
        self.max_keys = max_keys
        self.windows: dict[str, StoryWindow] = {}

    def add(self, key: str, item: NewsItem) -> NewsItem | None:
        """Take one raw item of the symbol ``key``; see :meth:`StoryWindow.add`."""
        window = self.windows.pop(key, None) or StoryWindow(self.config)
        self.windows[key] = window
        if len(self.windows) > self.max_keys:
            del self.windows[next(iter(self.windows))]
        return window.add(item)
