"""The records ingest writes of what the providers report, and the counts of them.

A news item becomes one :class:`NewsCopy` per symbol it names; :class:`IngestCounters`
counts what was reported, written and dropped, and keeps the metrics of it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from ingest.providers import Batch
from runtime.metrics import INGEST_DROPPED, NEWS_IN, count_ingested
from schemas import ProviderStatus, RawTick
from schemas.books import BookEvent
from schemas.news import NewsItem

log = logging.getLogger("fiml.ingest")

DROP_LOG_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class NewsCopy:
    """A raw news item to be written under one of its symbols."""

    symbol: str
    item: NewsItem

    @property
    def provider(self) -> str:
        """The provider that carried the item."""
        return self.item.providers[0] if self.item.providers else ""


Record = RawTick | ProviderStatus | BookEvent | NewsCopy


def as_records(reported: Batch) -> Sequence[Record]:
    """The records to write of what a provider reported: a news item becomes one record per
    symbol it names."""
    if not any(isinstance(record, NewsItem) for record in reported):
        return cast(Sequence[Record], reported)
    records: list[Record] = []
    for record in reported:
        if isinstance(record, NewsItem):
            records.extend(NewsCopy(symbol, record) for symbol in record.symbols)
        else:
            records.append(record)
    return records


@dataclass
class IngestCounters:
    """What the providers reported so far (records), what was written of it, what dropped;
    the rest is still buffered."""

    reported: int = 0
    ticks: int = 0
    statuses: int = 0
    books: int = 0
    dropped: int = 0
    news: int = 0
    _dropped_since_log: Counter[str] = field(default_factory=Counter, repr=False)
    _drop_logged_at: float = field(default=float("-inf"), repr=False)

    def written(self, delivered: Sequence[Record]) -> None:
        """Count records Kafka acknowledged."""
        ticks = sum(isinstance(record, RawTick) for record in delivered)
        books = sum(isinstance(record, BookEvent) for record in delivered)
        news = [record for record in delivered if isinstance(record, NewsCopy)]
        self.ticks += ticks
        self.books += books
        self.news += len(news)
        self.statuses += len(delivered) - ticks - books - len(news)
        count_ingested([record for record in delivered if not isinstance(record, NewsCopy)])
        for copy in news:
            NEWS_IN.labels(copy.provider).inc()

    def drop(self, records: Sequence[Record], reason: str) -> None:
        """Count records that will never be written, and log them (at most every few s)."""
        if not records:
            return
        for record in records:
            INGEST_DROPPED.labels(record.provider, reason).inc()
        self.dropped += len(records)
        self._dropped_since_log[reason] += len(records)
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_EVERY_S or reason != "buffer_full":
            self._drop_logged_at = now
            summary = ", ".join(f"{n} {why}" for why, n in sorted(self._dropped_since_log.items()))
            log.warning(
                "dropped records that will never reach Kafka: %s (%d dropped in all)",
                summary,
                self.dropped,
            )
            self._dropped_since_log.clear()
